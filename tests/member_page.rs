//! The members' own page: sign-in by a single-use link mailed to the alias, the mailings and
//! their states, acknowledging, editing contacts, changing the alias through the link to the
//! new one, and the attacker's tests: link reuse and expiry, enumeration, suspended members,
//! rate limits, and every member route refused to strangers, staff and other members.

use chrono::Utc;
use diesel::prelude::*;
use edl::accounts::Role;
use edl::db::schema::{audit_log, member_sessions, members, outbox, release_receipts, releases};
use edl::domain::{MemberStatus, OutboxStatus};
use edl::startup::route_table;
use edl::web::auth::Access;

use crate::helpers::smtp::SmtpServer;
use crate::helpers::{Backend, Browser, TestApp};
use crate::on_both_backends;
use crate::releases::{add_patch, approve, distribute, find, planned_on, setup_with, utc, Setup};

on_both_backends!(
    a_member_signs_in_by_link_and_acknowledges_what_it_was_mailed,
    a_member_edits_its_contacts_and_its_alias_changes_only_through_the_new_alias,
    a_sign_in_link_works_once_and_for_fifteen_minutes,
    an_address_that_is_no_members_gets_the_same_answer_and_no_mail,
    a_suspended_member_is_refused_and_its_open_session_stops,
    link_requests_are_limited_per_address_and_per_client,
    every_member_route_refuses_strangers_staff_and_other_members,
);

const PASSWORD: &str = "tangerine-kettle-orbit-42";
const SUBJECT: &str = "sign-in link";
const GENEROUS: [(&str, &str); 2] = [
    ("EDL_LOGIN_RATE_LIMIT", "1000/1m"),
    ("EDL_PUBLIC_POST_RATE_LIMIT", "1000/1m"),
];

async fn spawn(backend: Backend) -> Option<TestApp> {
    TestApp::spawn_with_smtp(backend, &GENEROUS).await
}

/// Asks for a link for `alias` and returns the path of the `nth` link mailed to it.
async fn ask_link(app: &TestApp, smtp: &SmtpServer, alias: &str, nth: usize) -> String {
    let browser = Browser::open(app).await;
    let response = browser.post("/member/sign-in", &[("alias", alias)]).await;
    assert_eq!(response.status(), 303);
    let mail = smtp.wait_for_nth(alias, SUBJECT, nth).await;
    mail.link("/member/sign-in/").expect("a sign-in link")
}

/// Follows a sign-in link in a fresh browser: the page's button starts the session.
async fn follow(app: &TestApp, link: &str) -> (Browser, u16) {
    let browser = Browser::open(app).await;
    let page = browser.get(link).await;
    if page.status() != 200 {
        return (browser, page.status().as_u16());
    }
    let status = browser.post(link, &[]).await.status().as_u16();
    (browser, status)
}

async fn signed_in(app: &TestApp, smtp: &SmtpServer, alias: &str, nth: usize) -> Browser {
    let link = ask_link(app, smtp, alias, nth).await;
    let (browser, status) = follow(app, &link).await;
    assert_eq!(status, 303, "the link signs in");
    browser
}

async fn page(browser: &Browser, path: &str) -> (u16, String) {
    let response = browser.get(path).await;
    let status = response.status().as_u16();
    (status, response.text().await.expect("a body"))
}

async fn audit(app: &TestApp, action: &'static str) -> Vec<(String, String)> {
    app.with_db(move |c| {
        Ok(audit_log::table
            .filter(audit_log::action.eq(action))
            .order(audit_log::seq.asc())
            .select((audit_log::actor, audit_log::subject))
            .load(c)?)
    })
    .await
}

/// Three releases mailed to each member; returns their ids in order.
async fn three_mailed_releases(s: &Setup) -> Vec<i64> {
    let mut ids = Vec::new();
    for title in ["Release Alpha", "Release Bravo", "Release Charlie"] {
        let id = planned_on(s, None, title, Utc::now()).await;
        add_patch(
            s,
            id,
            "0001-normalize-paths.patch",
            crate::releases::PROJECT_PATCH,
            None,
        )
        .await
        .expect("patch");
        approve(s, id, &s.approver).await.expect("approved");
        ids.push(id);
    }
    let r = find(s, ids[0]).await;
    distribute(
        s,
        utc(r.disclosure_at.expect("time")) + chrono::Duration::minutes(1),
    )
    .await;
    s.app.outbox_idle().await;
    ids
}

/// The embargoed mail of `release` to `member`.
async fn mail_of(app: &TestApp, release: i64, member: i64) -> i64 {
    app.with_db(move |c| {
        Ok(outbox::table
            .filter(outbox::release_id.eq(release))
            .filter(outbox::member_id.eq(member))
            .filter(outbox::template.eq("embargoed_release"))
            .select(outbox::id)
            .first(c)?)
    })
    .await
}

/// The member's representative's address and its alias, as stored.
async fn stored(app: &TestApp, id: i64) -> (String, String) {
    app.with_db(move |c| {
        Ok(members::table
            .filter(members::id.eq(id))
            .select((members::rep_email, members::security_alias))
            .first::<(String, String)>(c)?)
    })
    .await
}

fn row(html: &str, mail: i64) -> &str {
    let start = html
        .find(&format!("id=\"mail-{mail}\""))
        .unwrap_or_else(|| panic!("mail {mail} is listed"));
    let end = html[start..]
        .find("</tr>")
        .map_or(html.len(), |e| start + e);
    &html[start..end]
}

async fn a_member_signs_in_by_link_and_acknowledges_what_it_was_mailed(backend: Backend) {
    let Some(s) = setup_with(backend, &GENEROUS).await else {
        return;
    };
    let a = s
        .app
        .add_member("Alpha Org", "alpha.example", "active", 1)
        .await;
    let b = s
        .app
        .add_member("Bravo Org", "bravo.example", "active", 1)
        .await;
    let ids = three_mailed_releases(&s).await;
    let (sent, held, acked) = (
        mail_of(&s.app, ids[0], a).await,
        mail_of(&s.app, ids[1], a).await,
        mail_of(&s.app, ids[2], a).await,
    );
    // The second release was cancelled before its mail left: held, with the reason. The
    // third was acknowledged through the receipt link of its mail.
    let cancelled = ids[1];
    s.app
        .with_db(move |c| {
            diesel::update(outbox::table.filter(outbox::id.eq(held)))
                .set((
                    outbox::status.eq(OutboxStatus::Held),
                    outbox::held_reason.eq(Some("the release was cancelled")),
                    outbox::sent_at.eq(None::<chrono::NaiveDateTime>),
                ))
                .execute(c)?;
            diesel::update(releases::table.filter(releases::id.eq(cancelled)))
                .set(releases::cancelled_at.eq(Some(edl::db::now())))
                .execute(c)?;
            Ok(())
        })
        .await;
    let third = ids[2];
    s.app
        .with_db(move |c| {
            let revision = edl::releases::release::find(c, third)?
                .expect("release")
                .revision;
            edl::releases::release::acknowledge(c, third, a, revision)?;
            Ok(())
        })
        .await;

    let browser = signed_in(&s.app, &s.smtp, "security@alpha.example", 1).await;
    let (status, html) = page(&browser, "/member").await;
    assert_eq!(status, 200);
    assert!(html.contains("Alpha Org"));
    assert!(row(&html, sent).contains("data-state=\"sent\""));
    assert!(row(&html, sent).contains("Release Alpha"));
    let held_row = row(&html, held);
    assert!(held_row.contains("data-state=\"held\""));
    assert!(held_row.contains("Held: the release was cancelled"));
    assert!(
        !held_row.contains("Release Bravo"),
        "the title of a mail that never reached the member is not shown"
    );
    assert!(row(&html, acked).contains("data-state=\"acknowledged\""));
    // Metadata only: no advisory, no patch, and nothing of the other member's.
    for secret in [
        "CVE-2026-31337",
        "Authorization policy bypass",
        "0001-normalize-paths",
        "Bravo Org",
        "bravo.example",
    ] {
        assert!(!html.contains(secret), "the page shows {secret}");
    }
    // Only the mail that reached the member and was not acknowledged has the button.
    assert!(row(&html, sent).contains("Acknowledge receipt"));
    assert!(!held_row.contains("Acknowledge receipt"));

    // Acknowledging changes its state, audited with the member's alias.
    let mail = sent.to_string();
    let response = browser
        .post("/member/acknowledge", &[("mail", mail.as_str())])
        .await;
    assert_eq!(response.status(), 303);
    let (_, html) = page(&browser, "/member?done=acknowledged").await;
    assert!(row(&html, sent).contains("data-state=\"acknowledged\""));
    assert!(html.contains("the receipt is recorded"));
    let receipts = audit(&s.app, "release.receipt").await;
    assert!(receipts
        .iter()
        .any(|(actor, _)| actor == "security@alpha.example"));
    // The held mail cannot be acknowledged, nor can the other member's.
    let other = mail_of(&s.app, ids[0], b).await;
    for refused in [held, other] {
        let value = refused.to_string();
        let response = browser
            .post("/member/acknowledge", &[("mail", value.as_str())])
            .await;
        assert_eq!(response.status(), 404, "mail {refused}");
    }
    let b_receipts: i64 = s
        .app
        .with_db(move |c| {
            Ok(release_receipts::table
                .filter(release_receipts::member_id.eq(b))
                .count()
                .get_result(c)?)
        })
        .await;
    assert_eq!(b_receipts, 0);
    // Sign-in and sign-out are audited with the alias.
    assert_eq!(
        audit(&s.app, "member.sign-in-link-sent").await[0].0,
        "security@alpha.example"
    );
    assert_eq!(
        audit(&s.app, "member.signed-in").await[0].0,
        "security@alpha.example"
    );
    assert_eq!(browser.post("/member/sign-out", &[]).await.status(), 303);
    assert_eq!(
        audit(&s.app, "member.signed-out").await[0].0,
        "security@alpha.example"
    );
    let response = browser.get("/member").await;
    assert_eq!(response.status(), 303, "signed out");
    s.app.outbox_idle().await;
}

async fn a_member_edits_its_contacts_and_its_alias_changes_only_through_the_new_alias(
    backend: Backend,
) {
    let Some(app) = spawn(backend).await else {
        return;
    };
    let smtp = app.smtp();
    let id = app
        .add_member("Alpha Org", "alpha.example", "active", 1)
        .await;
    let browser = signed_in(&app, smtp, "security@alpha.example", 1).await;
    let (status, html) = page(&browser, "/member/contacts").await;
    assert_eq!(status, 200);
    assert!(html.contains("value=\"security@alpha.example\""));

    // A bad address comes back with what was typed and a message beside it.
    let response = browser
        .post(
            "/member/contacts",
            &[
                ("rep_name", "Alice Example"),
                ("rep_email", "not an address"),
                ("security_alias", "security@alpha.example"),
            ],
        )
        .await;
    assert_eq!(response.status(), 422);
    let html = response.text().await.expect("page");
    assert!(html.contains("f-rep_email-error"));
    assert!(html.contains("value=\"not an address\""));
    assert!(html.contains("value=\"Alice Example\""));

    let response = browser
        .post(
            "/member/contacts",
            &[
                ("rep_name", "Alice Example"),
                ("rep_email", "alice@alpha.example"),
                ("security_alias", "security@alpha.example"),
            ],
        )
        .await;
    assert_eq!(response.status(), 303);
    assert_eq!(stored(&app, id).await.0, "alice@alpha.example");
    assert_eq!(
        audit(&app, "member.edited").await,
        vec![("security@alpha.example".to_owned(), format!("member:{id}"))]
    );

    // A new alias changes nothing until the link mailed to it is used.
    let response = browser
        .post(
            "/member/contacts",
            &[
                ("rep_name", "Alice Example"),
                ("rep_email", "alice@alpha.example"),
                ("security_alias", "psirt@alpha.example"),
            ],
        )
        .await;
    assert_eq!(response.status(), 303);
    assert!(response
        .headers()
        .get("location")
        .and_then(|l| l.to_str().ok())
        .is_some_and(|l| l.ends_with("done=alias")));
    assert_eq!(stored(&app, id).await.1, "security@alpha.example");
    assert_eq!(
        audit(&app, "member.alias-change-requested").await[0].0,
        "security@alpha.example"
    );
    let (_, html) = page(&browser, "/member").await;
    assert!(html.contains("id=\"pending-alias\"") && html.contains("psirt@alpha.example"));
    let mail = smtp
        .wait_for("psirt@alpha.example", "Confirm psirt@alpha.example")
        .await;
    let link = mail.link("/members/alias/").expect("a confirmation link");
    assert_eq!(stored(&app, id).await.1, "security@alpha.example");
    let reader = Browser::open(&app).await;
    assert_eq!(reader.get(&link).await.status(), 200);
    assert_eq!(reader.post(&link, &[]).await.status(), 200);
    assert_eq!(stored(&app, id).await.1, "psirt@alpha.example");
    smtp.wait_for(
        "security@alpha.example",
        "security alias of Alpha Org was changed",
    )
    .await;
    app.outbox_idle().await;
}

async fn a_sign_in_link_works_once_and_for_fifteen_minutes(backend: Backend) {
    let Some(app) = spawn(backend).await else {
        return;
    };
    let smtp = app.smtp();
    app.add_member("Alpha Org", "alpha.example", "active", 1)
        .await;
    let link = ask_link(&app, smtp, "security@alpha.example", 1).await;
    let (first, status) = follow(&app, &link).await;
    assert_eq!(status, 303);
    assert_eq!(first.get("/member").await.status(), 200);
    // A second use, from anywhere, is refused and opens nothing.
    let second = Browser::open(&app).await;
    assert_eq!(second.get(&link).await.status(), 410);
    assert_eq!(second.post(&link, &[]).await.status(), 410);
    assert_eq!(second.get("/member").await.status(), 303);

    // A link not used within fifteen minutes does nothing.
    let late = ask_link(&app, smtp, "security@alpha.example", 2).await;
    app.advance(chrono::Duration::minutes(15) + chrono::Duration::seconds(1));
    let browser = Browser::open(&app).await;
    assert_eq!(browser.get(&late).await.status(), 410);
    assert_eq!(browser.post(&late, &[]).await.status(), 410);
    assert_eq!(browser.get("/member").await.status(), 303);
    // A made-up link is unknown.
    assert_eq!(
        browser
            .get(&format!("/member/sign-in/{}", "ab".repeat(32)))
            .await
            .status(),
        404
    );
    // The session itself ends after an hour without requests.
    app.advance(chrono::Duration::minutes(61));
    assert_eq!(first.get("/member").await.status(), 303);
    app.outbox_idle().await;
}

async fn an_address_that_is_no_members_gets_the_same_answer_and_no_mail(backend: Backend) {
    let Some(app) = spawn(backend).await else {
        return;
    };
    let smtp = app.smtp();
    app.add_member("Alpha Org", "alpha.example", "active", 1)
        .await;
    app.add_member("Gone Org", "gone.example", "removed", 1)
        .await;
    let browser = Browser::open(&app).await;
    let mut answers = Vec::new();
    for alias in [
        "security@alpha.example",
        "nobody@alpha.example",
        "security@gone.example",
    ] {
        let response = browser.post("/member/sign-in", &[("alias", alias)]).await;
        let status = response.status().as_u16();
        let location = response
            .headers()
            .get("location")
            .and_then(|l| l.to_str().ok())
            .map(str::to_owned);
        let page = browser
            .get(location.as_deref().unwrap_or("/"))
            .await
            .text()
            .await
            .expect("page");
        answers.push((status, location, page));
    }
    assert!(
        answers.windows(2).all(|w| w[0] == w[1]),
        "the answers differ: {answers:?}"
    );
    smtp.wait_for("security@alpha.example", SUBJECT).await;
    app.outbox_idle().await;
    assert!(smtp.to("nobody@alpha.example").is_empty());
    assert!(smtp.to("security@gone.example").is_empty());
    let rows = app.outbox_rows().await;
    assert_eq!(
        rows.iter()
            .filter(|r| r.template == "member_sign_in")
            .count(),
        1
    );
    // Nothing about the addresses that are no member's is audited.
    assert_eq!(audit(&app, "member.sign-in-link-sent").await.len(), 1);
}

async fn a_suspended_member_is_refused_and_its_open_session_stops(backend: Backend) {
    let Some(app) = spawn(backend).await else {
        return;
    };
    let smtp = app.smtp();
    let id = app
        .add_member("Alpha Org", "alpha.example", "active", 0)
        .await;
    let browser = signed_in(&app, smtp, "security@alpha.example", 1).await;
    let unused = ask_link(&app, smtp, "security@alpha.example", 2).await;
    assert_eq!(browser.get("/member").await.status(), 200);
    app.with_db(move |c| {
        edl::membership::members::set_status(c, id, MemberStatus::Suspended, "A leak.")
    })
    .await;
    // The open session shows nothing more, and changes nothing.
    let response = browser.get("/member").await;
    assert_eq!(response.status(), 303);
    assert!(!response
        .text()
        .await
        .unwrap_or_default()
        .contains("Alpha Org"));
    assert_eq!(browser.post("/member/policy", &[]).await.status(), 401);
    let sessions: i64 = app
        .with_db(move |c| {
            Ok(member_sessions::table
                .filter(member_sessions::member_id.eq(id))
                .count()
                .get_result(c)?)
        })
        .await;
    assert_eq!(sessions, 0, "the session row is gone");
    let policy: i32 = app
        .with_db(move |c| {
            Ok(members::table
                .filter(members::id.eq(id))
                .select(members::policy_version)
                .first(c)?)
        })
        .await;
    assert_eq!(policy, 0);
    // Its link is refused; a new request mails nothing.
    let (_, status) = follow(&app, &unused).await;
    assert_eq!(status, 403);
    let other = Browser::open(&app).await;
    assert_eq!(other.post(&unused, &[]).await.status(), 403);
    assert_eq!(other.get("/member").await.status(), 303);
    let again = other
        .post("/member/sign-in", &[("alias", "security@alpha.example")])
        .await;
    assert_eq!(again.status(), 303);
    app.outbox_idle().await;
    let links = smtp
        .to("security@alpha.example")
        .into_iter()
        .filter(|m| m.header("Subject").is_some_and(|s| s.contains(SUBJECT)))
        .count();
    assert_eq!(links, 2, "no link after the suspension");
}

async fn link_requests_are_limited_per_address_and_per_client(backend: Backend) {
    let Some(app) = TestApp::spawn_with_smtp(
        backend,
        &[
            ("EDL_LOGIN_RATE_LIMIT", "6/1m"),
            ("EDL_PUBLIC_POST_RATE_LIMIT", "1000/1m"),
        ],
    )
    .await
    else {
        return;
    };
    let smtp = app.smtp();
    app.add_member("Alpha Org", "alpha.example", "active", 1)
        .await;
    let browser = Browser::open(&app).await;
    // Per address: three links an hour, then the same answer and no mail.
    for _ in 0..4 {
        let response = browser
            .post("/member/sign-in", &[("alias", "security@alpha.example")])
            .await;
        assert_eq!(response.status(), 303);
    }
    smtp.wait_for_nth("security@alpha.example", SUBJECT, 3)
        .await;
    app.outbox_idle().await;
    let links = smtp
        .to("security@alpha.example")
        .into_iter()
        .filter(|m| m.header("Subject").is_some_and(|s| s.contains(SUBJECT)))
        .count();
    assert_eq!(links, 3);
    // Per client: the guard's limit, whatever the addresses.
    for alias in ["a@nowhere.example", "b@nowhere.example"] {
        let response = browser.post("/member/sign-in", &[("alias", alias)]).await;
        assert_eq!(response.status(), 303);
    }
    let response = browser
        .post("/member/sign-in", &[("alias", "c@nowhere.example")])
        .await;
    assert_eq!(response.status(), 429);
    app.outbox_idle().await;
}

/// Every member route, as the route table declares it: without a member session, with a
/// staff session only, and as member A with member B's ids wherever a form could carry one.
async fn every_member_route_refuses_strangers_staff_and_other_members(backend: Backend) {
    let Some(s) = setup_with(backend, &GENEROUS).await else {
        return;
    };
    let app = &s.app;
    let a = app
        .add_member("Alpha Org", "alpha.example", "active", 0)
        .await;
    let b = app
        .add_member("Bravo Org", "bravo.example", "active", 0)
        .await;
    let member_routes: Vec<(String, &'static str)> = route_table()
        .into_iter()
        .filter(|r| r.access == Access::Member)
        .map(|r| (r.method.to_string(), r.path))
        .collect();
    assert!(member_routes.len() >= 7, "{member_routes:?}");
    app.add_account("admin@wg.example", "Admin", &[Role::Admin], PASSWORD)
        .await;
    let staff = Browser::open(app).await;
    staff.sign_in("admin@wg.example", PASSWORD).await;
    let stranger = Browser::open(app).await;
    for (method, path) in &member_routes {
        for (who, browser) in [("stranger", &stranger), ("staff", &staff)] {
            let response = match method.as_str() {
                "GET" => browser.get(path).await,
                _ => browser.post(path, &[("mail", "1")]).await,
            };
            let status = response.status().as_u16();
            let location = response
                .headers()
                .get("location")
                .and_then(|l| l.to_str().ok())
                .map(str::to_owned);
            let body = response.text().await.unwrap_or_default();
            if method == "GET" {
                assert_eq!(status, 303, "{method} {path} as {who}");
                assert_eq!(location.as_deref(), Some("/member/sign-in"));
            } else {
                assert_eq!(status, 401, "{method} {path} as {who}");
            }
            assert!(!body.contains("Alpha Org") && !body.contains("Bravo Org"));
        }
    }

    // Member A, with B's mail, B's ids and B's alias in every form it can post.
    let id = planned_on(&s, None, "Release Alpha", Utc::now()).await;
    add_patch(
        &s,
        id,
        "0001-normalize-paths.patch",
        crate::releases::PROJECT_PATCH,
        None,
    )
    .await
    .expect("patch");
    approve(&s, id, &s.approver).await.expect("approved");
    // Members that accepted the current policy are mailed.
    app.with_db(move |c| {
        diesel::update(members::table)
            .set(members::policy_version.eq(1))
            .execute(c)?;
        Ok(())
    })
    .await;
    let r = find(&s, id).await;
    distribute(
        &s,
        utc(r.disclosure_at.expect("time")) + chrono::Duration::minutes(1),
    )
    .await;
    app.outbox_idle().await;
    app.with_db(move |c| {
        diesel::update(members::table)
            .set(members::policy_version.eq(0))
            .execute(c)?;
        Ok(())
    })
    .await;
    let b_mail = mail_of(app, id, b).await.to_string();
    let b_text = b.to_string();
    let member_a = signed_in(app, &s.smtp, "security@alpha.example", 1).await;
    let b_ids: Vec<(&str, &str)> = vec![
        ("member_id", b_text.as_str()),
        ("member", b_text.as_str()),
        ("id", b_text.as_str()),
    ];
    for (method, path) in &member_routes {
        let response = match method.as_str() {
            "GET" => member_a.get(&format!("{path}?member_id={b}&id={b}")).await,
            _ if *path == "/member/sign-out" => continue,
            _ if *path == "/member/acknowledge" => {
                let mut fields = b_ids.clone();
                fields.push(("mail", b_mail.as_str()));
                let response = member_a.post(path, &fields).await;
                assert_eq!(response.status(), 404, "B's mail is not A's to acknowledge");
                continue;
            }
            _ if *path == "/member/contacts" => {
                let mut fields = b_ids.clone();
                fields.extend([
                    ("rep_name", "Mallory"),
                    ("rep_email", "mallory@alpha.example"),
                    ("security_alias", "security@bravo.example"),
                ]);
                let response = member_a.post(path, &fields).await;
                let status = response.status().as_u16();
                assert!(
                    matches!(status, 409 | 422),
                    "B's alias cannot become A's: {status}"
                );
                let body = response.text().await.unwrap_or_default();
                assert!(!body.contains("Bravo Org"), "B's name is not shown");
                continue;
            }
            _ => member_a.post(path, &b_ids).await,
        };
        let status = response.status().as_u16();
        let body = response.text().await.unwrap_or_default();
        assert!(status < 500, "{method} {path}: {status}");
        assert!(
            !body.contains("Bravo Org") && !body.contains("bravo.example"),
            "{method} {path} shows B"
        );
    }
    // The key page it is sent to is its own key link.
    let response = member_a.get("/member/key").await;
    let location = response
        .headers()
        .get("location")
        .and_then(|l| l.to_str().ok())
        .expect("a redirect")
        .to_owned();
    let token = location.trim_start_matches("/members/key/");
    let now = app.state.ctx.clock.now().timestamp();
    assert_eq!(app.state.ctx.links.verify_key_link(token, now), Some(a));
    // Nothing of B's changed: not its policy, its contacts or its receipts; A's policy did.
    let (b_policy, b_rep, a_policy): (i32, String, i32) = app
        .with_db(move |c| {
            let (bp, br) = members::table
                .filter(members::id.eq(b))
                .select((members::policy_version, members::rep_name))
                .first::<(i32, String)>(c)?;
            let ap = members::table
                .filter(members::id.eq(a))
                .select(members::policy_version)
                .first::<i32>(c)?;
            Ok((bp, br, ap))
        })
        .await;
    assert_eq!((b_policy, b_rep.as_str()), (0, ""));
    assert_eq!(a_policy, 1);
    let b_receipts: i64 = app
        .with_db(move |c| {
            Ok(release_receipts::table
                .filter(release_receipts::member_id.eq(b))
                .count()
                .get_result(c)?)
        })
        .await;
    assert_eq!(b_receipts, 0);
    // A's own page lists only A's mail.
    let (_, html) = page(&member_a, "/member").await;
    let a_mail = mail_of(app, id, a).await;
    assert!(html.contains(&format!("id=\"mail-{a_mail}\"")));
    assert!(!html.contains(&format!("id=\"mail-{b_mail}\"")));
    app.outbox_idle().await;
}
