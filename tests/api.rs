//! The JSON API over HTTP, as release tooling and dashboards use it: tokens made on the account
//! page and refused when missing, wrong, expired, revoked, short of the scope or outlived by
//! the account's role; every token endpoint against every scope; nothing embargoed through the
//! public endpoints; writes audited with the token's name; problem documents, cursors and
//! rate limits. The OpenAPI document is checked against the route table here, and against an
//! independent validator and fuzzer in `api_validators.rs`.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use edl::accounts::api_tokens::{self, NewToken, Scope};
use edl::accounts::Role;
use edl::db::schema::audit_log;
use edl::domain::ReleaseKind;
use edl::releases::approval;
use edl::releases::distribution;
use edl::releases::release::{self, Actor, AdvisoryForm, Plan, ReleaseError};
use edl::web::auth::Access;
use serde_json::{json, Value};

use crate::helpers::{err, utc, Backend, Browser, TestApp, PATCH};
use crate::on_both_backends;

on_both_backends!(
    a_token_is_made_on_the_account_page_shown_once_and_revoked,
    tokens_are_refused_missing_wrong_expired_revoked_or_outgrown,
    every_token_endpoint_answers_only_its_scope,
    nothing_embargoed_is_reachable_through_any_endpoint,
    release_managers_plan_add_advisories_and_upload_patches,
    lists_are_paged_by_cursor_and_bad_input_is_a_problem,
    tokens_are_rate_limited_with_headers,
    a_nul_character_is_refused_with_a_reason_not_a_server_error,
);

const PASSWORD: &str = "tangerine-kettle-orbit-42";

/// Makes a token for an account directly, as the account page does.
pub async fn token_for(app: &TestApp, account: i64, email: &str, scopes: &[Scope]) -> String {
    let now = app.clock.now_naive();
    let email = email.to_owned();
    let scopes: Vec<String> = scopes.iter().map(|s| s.as_str().to_owned()).collect();
    app.with_db(move |c| {
        let roles = edl::accounts::roles_of(c, account)?;
        let token = NewToken::parse("test tool", &scopes, "30", &roles, now)
            .map_err(|e| err(format!("{e:?}")))?;
        Ok(api_tokens::create(c, account, &email, &token, now)?.1)
    })
    .await
}

/// A client of the API, with or without a token.
pub struct Api {
    client: reqwest::Client,
    base: String,
    token: Option<String>,
}

impl Api {
    pub fn new(app: &TestApp, token: Option<&str>) -> Self {
        Self {
            client: reqwest::Client::new(),
            base: app.address.clone(),
            token: token.map(str::to_owned),
        }
    }

    fn with_token(&self, request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match &self.token {
            Some(token) => request.bearer_auth(token),
            None => request,
        }
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.with_token(self.client.get(format!("{}{path}", self.base)))
            .send()
            .await
            .expect("the server answers")
    }

    pub async fn post(&self, path: &str, body: &Value) -> reqwest::Response {
        self.with_token(self.client.post(format!("{}{path}", self.base)))
            .json(body)
            .send()
            .await
            .expect("the server answers")
    }
}

/// The status and JSON of an answer; problem documents must say so in their media type.
pub async fn answer(response: reqwest::Response) -> (u16, Value) {
    let status = response.status().as_u16();
    let media = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    if status >= 400 {
        assert_eq!(media, "application/problem+json", "{status} {body}");
        assert_eq!(body["status"], status, "{body}");
    } else {
        assert!(media.starts_with("application/json"), "{media}");
    }
    (status, body)
}

/// The machine-readable kind of a problem document.
pub fn kind(problem: &Value) -> &str {
    problem["type"]
        .as_str()
        .and_then(|t| t.rsplit("problem-").next())
        .unwrap_or_default()
}

async fn a_token_is_made_on_the_account_page_shown_once_and_revoked(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    app.add_account(
        "rel@project.example",
        "Rel",
        &[Role::ReleaseManager],
        PASSWORD,
    )
    .await;
    let browser = Browser::open(&app).await;
    browser.sign_in("rel@project.example", PASSWORD).await;
    let page = browser
        .get("/account/tokens")
        .await
        .text()
        .await
        .expect("page");
    // Only the scopes a release manager's role allows are offered.
    assert!(page.contains("releases:write") && !page.contains("value=\"members:read\""));

    // A scope the role does not allow, typed in by hand, is refused beside the field, with the
    // name kept.
    let refused = browser
        .post(
            "/account/tokens",
            &[("name", "ci"), ("scopes", "members:read"), ("days", "30")],
        )
        .await;
    assert_eq!(refused.status(), 422);
    let text = refused.text().await.expect("page");
    assert!(text.contains("do not allow the scope members:read") && text.contains("value=\"ci\""));

    let made = browser
        .post(
            "/account/tokens",
            &[
                ("name", "release tooling"),
                ("scopes", "releases:read"),
                ("days", "30"),
            ],
        )
        .await;
    assert_eq!(made.status(), 201);
    let text = made.text().await.expect("page");
    let token = text
        .split("id=\"new-token\">")
        .nth(1)
        .and_then(|s| s.split('<').next())
        .expect("the token is shown")
        .to_owned();
    assert!(token.starts_with("edl_"));
    let api = Api::new(&app, Some(&token));
    let (status, _) = answer(api.get("/api/v1/manage/releases").await).await;
    assert_eq!(status, 200);
    // Listed after, never shown again; the database holds only its hash.
    let list = browser
        .get("/account/tokens")
        .await
        .text()
        .await
        .expect("page");
    assert!(list.contains("release tooling") && !list.contains(&token));
    let stored: Vec<String> = app
        .with_db(|c| {
            Ok(edl::db::schema::api_tokens::table
                .select(edl::db::schema::api_tokens::token_hash)
                .load(c)?)
        })
        .await;
    assert!(stored.iter().all(|h| !h.contains(&token[4..])));

    // Another account cannot revoke it by its id.
    app.add_account(
        "eve@project.example",
        "Eve",
        &[Role::ReleaseManager],
        PASSWORD,
    )
    .await;
    let eve = Browser::open(&app).await;
    eve.sign_in("eve@project.example", PASSWORD).await;
    let id: i64 = app
        .with_db(|c| {
            Ok(edl::db::schema::api_tokens::table
                .select(edl::db::schema::api_tokens::id)
                .first(c)?)
        })
        .await;
    let tried = eve.post(&format!("/account/tokens/{id}/revoke"), &[]).await;
    assert_eq!(
        tried.headers()["location"],
        "/account/tokens?notice=not-found"
    );
    assert_eq!(
        answer(api.get("/api/v1/manage/releases").await).await.0,
        200
    );
    // Without the CSRF token, nothing happens either.
    let forged = browser
        .post_raw(&format!("/account/tokens/{id}/revoke"), &[])
        .await;
    assert_eq!(forged.status(), 403);
    assert_eq!(
        answer(api.get("/api/v1/manage/releases").await).await.0,
        200
    );

    let revoked = browser
        .post(&format!("/account/tokens/{id}/revoke"), &[])
        .await;
    assert_eq!(
        revoked.headers()["location"],
        "/account/tokens?notice=revoked"
    );
    let (status, problem) = answer(api.get("/api/v1/manage/releases").await).await;
    assert_eq!((status, kind(&problem)), (401, "token-revoked"));

    let actions: Vec<(String, String)> = app
        .with_db(|c| {
            Ok(audit_log::table
                .filter(audit_log::action.like("api-token.%"))
                .order(audit_log::seq.asc())
                .select((audit_log::action, audit_log::actor))
                .load(c)?)
        })
        .await;
    assert_eq!(
        actions,
        vec![
            ("api-token.created".into(), "rel@project.example".into()),
            ("api-token.revoked".into(), "rel@project.example".into()),
        ]
    );
}

async fn tokens_are_refused_missing_wrong_expired_revoked_or_outgrown(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let rel = app
        .add_account(
            "rel@project.example",
            "Rel",
            &[Role::ReleaseManager],
            PASSWORD,
        )
        .await;
    app.add_account("root@project.example", "Root", &[Role::Admin], PASSWORD)
        .await;
    let token = token_for(&app, rel, "rel@project.example", &[Scope::ReleasesRead]).await;
    let path = "/api/v1/manage/releases";
    assert_eq!(
        answer(Api::new(&app, Some(&token)).get(path).await).await.0,
        200
    );

    for (presented, expected) in [
        (None, "token-missing"),
        (Some("edl_0000"), "token-invalid"),
        (Some("not-even-ours"), "token-invalid"),
        // The token with one character changed.
        (
            Some(&format!("{}x", &token[..token.len() - 1])[..]),
            "token-invalid",
        ),
    ] {
        let response = Api::new(&app, presented).get(path).await;
        assert_eq!(
            response.headers()["www-authenticate"],
            "Bearer realm=\"edl\""
        );
        let (status, problem) = answer(response).await;
        assert_eq!((status, kind(&problem)), (401, expected), "{presented:?}");
    }
    // A session cookie is no token: a signed-in browser gets the same 401.
    let browser = Browser::open(&app).await;
    browser.sign_in("rel@project.example", PASSWORD).await;
    let (status, problem) = answer(browser.get(path).await).await;
    assert_eq!((status, kind(&problem)), (401, "token-missing"));

    // The scope it lacks.
    let (status, problem) = answer(Api::new(&app, Some(&token)).post(path, &json!({})).await).await;
    assert_eq!((status, kind(&problem)), (403, "scope-missing"));

    // The role taken away: the token stops at once.
    app.with_db(move |c| {
        edl::accounts::set_roles(c, "root@project.example", rel, &[Role::Reviewer]).map_err(err)
    })
    .await;
    let (status, problem) = answer(Api::new(&app, Some(&token)).get(path).await).await;
    assert_eq!((status, kind(&problem)), (403, "forbidden"), "{problem}");
    app.with_db(move |c| {
        edl::accounts::set_roles(c, "root@project.example", rel, &[Role::ReleaseManager])
            .map_err(err)
    })
    .await;
    assert_eq!(
        answer(Api::new(&app, Some(&token)).get(path).await).await.0,
        200
    );

    // The account disabled.
    app.with_db(move |c| {
        edl::accounts::set_disabled(c, "root@project.example", rel, true).map_err(err)
    })
    .await;
    let (status, problem) = answer(Api::new(&app, Some(&token)).get(path).await).await;
    assert_eq!((status, kind(&problem)), (401, "token-invalid"));
    app.with_db(move |c| {
        edl::accounts::set_disabled(c, "root@project.example", rel, false).map_err(err)
    })
    .await;

    // An admin's password reset (a lost or stolen password) revokes the account's tokens.
    let hash = edl::accounts::password::hash("a-temporary-one-9f3k2m").expect("hash");
    app.with_db(move |c| {
        edl::accounts::set_password(
            c,
            "root@project.example",
            rel,
            &hash,
            true,
            None,
            "account.password-reset",
        )
        .map_err(err)
    })
    .await;
    let (status, problem) = answer(Api::new(&app, Some(&token)).get(path).await).await;
    assert_eq!((status, kind(&problem)), (401, "token-revoked"));

    // Thirty days on, across the turn of a year: expired.
    app.move_to("2027-12-20T12:00:00Z".parse().expect("instant"));
    let fresh = token_for(&app, rel, "rel@project.example", &[Scope::ReleasesRead]).await;
    app.advance(chrono::Duration::days(30) - chrono::Duration::seconds(1));
    assert_eq!(
        answer(Api::new(&app, Some(&fresh)).get(path).await).await.0,
        200
    );
    app.advance(chrono::Duration::seconds(1));
    let (status, problem) = answer(Api::new(&app, Some(&fresh)).get(path).await).await;
    assert_eq!((status, kind(&problem)), (401, "token-expired"));
}

/// Every API route of the route table that needs a token, with the scope it needs.
fn token_routes() -> Vec<(String, String, Scope)> {
    edl::startup::route_table()
        .into_iter()
        .filter_map(|r| match r.access {
            Access::Token(scope) => Some((r.method.to_string(), r.path.to_owned(), scope)),
            _ => None,
        })
        .collect()
}

async fn every_token_endpoint_answers_only_its_scope(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let everyone = app
        .add_account(
            "all@project.example",
            "All Roles",
            &[Role::Reviewer, Role::ReleaseManager, Role::Admin],
            PASSWORD,
        )
        .await;
    let routes = token_routes();
    assert!(routes.len() >= 9, "{routes:?}");
    for scope in Scope::ALL {
        let token = token_for(&app, everyone, "all@project.example", &[*scope]).await;
        let api = Api::new(&app, Some(&token));
        for (method, pattern, needs) in &routes {
            let path = pattern.replace("{id}", "1");
            let response = match method.as_str() {
                "GET" => api.get(&path).await,
                _ => api.post(&path, &json!({})).await,
            };
            let (status, problem) = answer(response).await;
            if needs == scope {
                // Reached the handler: whatever it says, it is not the guard's refusal.
                assert!(
                    ![401, 403].contains(&status) && status < 500,
                    "{method} {path} with {scope}: {status} {problem}"
                );
            } else {
                assert_eq!(
                    (status, kind(&problem)),
                    (403, "scope-missing"),
                    "{method} {path} with {scope}"
                );
            }
        }
    }
    // A reviewer's token cannot be given an admin's scope, even by a direct request.
    let reviewer = app
        .add_account("rita@project.example", "Rita", &[Role::Reviewer], PASSWORD)
        .await;
    let now = app.clock.now_naive();
    let refused = app
        .with_db(move |c| {
            let roles = edl::accounts::roles_of(c, reviewer)?;
            Ok(NewToken::parse("x", &["members:read".into()], "1", &roles, now).is_err())
        })
        .await;
    assert!(refused);
}

const CVE_PUBLISHED: &str = "CVE-2026-41001";
const CVE_ANNOUNCED: &str = "CVE-2026-41002";
const CVE_EMBARGOED: &str = "CVE-2026-41003";

/// Plans, fills and approves the Patch Tuesday release due after `now`.
async fn approved_release(
    app: &TestApp,
    planner: &Actor,
    approver: &Actor,
    title: &str,
    cve: &str,
    now: DateTime<Utc>,
) -> release::Release {
    let calendar = app.settings.calendar();
    let (planner, approver, title, cve) = (
        planner.clone(),
        approver.clone(),
        title.to_owned(),
        cve.to_owned(),
    );
    app.with_db(move |c| {
        let plan = Plan {
            kind: ReleaseKind::PatchTuesday,
            title,
            release_lines: vec!["1.9.5".into()],
            patch_tuesday: None,
            release_at: None,
            upstream_id: None,
            notice_hours: 0,
            members_may_deploy: false,
            notes: String::new(),
        };
        let e = |e: ReleaseError| err(e);
        let id = release::plan(c, &calendar, &plan, &planner, now).map_err(e)?;
        let advisory = AdvisoryForm {
            cve_id: cve,
            severity: "high".into(),
            cvss_vector: String::new(),
            summary: "Authorization policy bypass with crafted paths.".into(),
            affected_versions: "1.9.0 to 1.9.4".into(),
            fixed_versions: "1.9.5".into(),
        }
        .parse()
        .expect("a valid advisory");
        release::add_advisory(c, id, &advisory, &planner).map_err(e)?;
        let upload = release::Upload {
            filename: "0001-normalize-paths.patch".into(),
            bytes: PATCH.as_bytes().to_vec(),
            release_line: "1.9.5".into(),
            upstream_id: None,
            is_security_fix: true,
        };
        release::add_patch(c, id, &upload, &planner).map_err(e)?;
        approval::approve(c, id, &approver).map_err(e)?;
        Ok(release::find(c, id)?.expect("release"))
    })
    .await
}

async fn distribute(app: &TestApp, at: DateTime<Utc>) -> distribution::Tick {
    let ctx = app.state.ctx.clone();
    app.with_db(move |c| distribution::distribute(c, &ctx, at).map_err(err))
        .await
}

/// Three releases: one published, one announced, one still under embargo; returns their ids.
pub async fn three_releases(app: &TestApp) -> (i64, i64, i64) {
    let mut actors = Vec::new();
    for email in ["rm1@project.example", "rm2@project.example"] {
        let account_id = app
            .add_account(email, "Rel", &[Role::ReleaseManager], PASSWORD)
            .await;
        actors.push(Actor {
            account_id,
            email: email.into(),
        });
    }
    let (planner, approver) = (&actors[0], &actors[1]);
    let start = app.clock.now();
    let published =
        approved_release(app, planner, approver, "Release one", CVE_PUBLISHED, start).await;
    let at = utc(published.disclosure_at.expect("disclosure")) + chrono::Duration::minutes(1);
    assert_eq!(distribute(app, at).await.announced, 1);
    let at = utc(published.release_at) + chrono::Duration::minutes(1);
    assert_eq!(distribute(app, at).await.published, 1);
    let after = utc(published.release_at) + chrono::Duration::days(1);
    let announced =
        approved_release(app, planner, approver, "Release two", CVE_ANNOUNCED, after).await;
    let at = utc(announced.disclosure_at.expect("disclosure")) + chrono::Duration::minutes(1);
    assert_eq!(distribute(app, at).await.announced, 1);
    // Planned for the Patch Tuesday after that; its disclosure is weeks away.
    let later = utc(announced.release_at) + chrono::Duration::days(1);
    let embargoed = approved_release(
        app,
        planner,
        approver,
        "Release three",
        CVE_EMBARGOED,
        later,
    )
    .await;
    (published.id, announced.id, embargoed.id)
}

async fn nothing_embargoed_is_reachable_through_any_endpoint(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let (published, announced, embargoed) = three_releases(&app).await;
    app.add_member("Northwind", "northwind.example", "active", 1)
        .await;
    app.add_member("Gone Ltd", "gone.example", "removed", 1)
        .await;
    let public = Api::new(&app, None);

    let (status, list) = answer(public.get("/api/v1/releases").await).await;
    assert_eq!(status, 200);
    let ids: Vec<i64> = list["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|r| r["id"].as_i64().expect("id"))
        .collect();
    assert_eq!(
        ids,
        vec![announced, published],
        "newest first, no embargoed"
    );
    let text = list.to_string();
    assert!(!text.contains(CVE_ANNOUNCED) && !text.contains(CVE_EMBARGOED));
    assert!(!text.contains("Release three") && !text.contains("patch-tuesday"));
    assert_eq!(list["items"][0]["state"], "announced");
    assert_eq!(list["items"][0]["issue_count"], 1);
    assert_eq!(list["items"][1]["advisories"][0]["cve_id"], CVE_PUBLISHED);
    // A published release links its machine-readable documents; an announced one does not.
    assert_eq!(list["items"][0]["csaf_url"], Value::Null);
    assert_eq!(list["items"][0]["osv_url"], Value::Null);
    for link in [
        &list["items"][1]["csaf_url"],
        &list["items"][1]["osv_url"],
        &list["items"][1]["advisories"][0]["osv_url"],
    ] {
        let url = link.as_str().expect("a link");
        let path = &url[url.find("/releases/").expect("a release path")..];
        assert!(
            path.starts_with(&format!("/releases/{published}/")),
            "{url}"
        );
        assert_eq!(public.get(path).await.status(), 200, "{path}");
    }

    // The embargoed release answers exactly as an id that never existed.
    let (status, hidden) = answer(public.get(&format!("/api/v1/releases/{embargoed}")).await).await;
    let (_, never) = answer(public.get("/api/v1/releases/99999").await).await;
    assert_eq!((status, &hidden), (404, &never));
    let (_, one) = answer(public.get(&format!("/api/v1/releases/{announced}")).await).await;
    assert_eq!(one["advisories"], json!([]));

    for cve in [CVE_ANNOUNCED, CVE_EMBARGOED] {
        let (status, found) =
            answer(public.get(&format!("/api/v1/advisories?cve={cve}")).await).await;
        assert_eq!((status, found["items"].clone()), (200, json!([])), "{cve}");
    }
    let (_, advisories) = answer(public.get("/api/v1/advisories").await).await;
    assert_eq!(advisories["items"].as_array().map(Vec::len), Some(1));
    assert_eq!(advisories["items"][0]["cve_id"], CVE_PUBLISHED);
    assert_eq!(advisories["items"][0]["release_id"], published);

    let (_, roster) = answer(public.get("/api/v1/roster").await).await;
    assert_eq!(roster.as_array().map(Vec::len), Some(1), "{roster}");
    assert_eq!(roster[0]["org_name"], "Northwind");
    assert!(!roster.to_string().contains("security@"), "no aliases");

    // Tokens of every scope see no patch content, under any endpoint.
    let everyone = app
        .add_account(
            "all@project.example",
            "All",
            &[Role::Reviewer, Role::ReleaseManager, Role::Admin],
            PASSWORD,
        )
        .await;
    let token = token_for(&app, everyone, "all@project.example", Scope::ALL).await;
    let staff = Api::new(&app, Some(&token));
    let (status, detail) = answer(
        staff
            .get(&format!("/api/v1/manage/releases/{embargoed}"))
            .await,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(detail["advisories"][0]["cve_id"], CVE_EMBARGOED);
    assert_eq!(
        detail["patches"][0]["filename"],
        "0001-normalize-paths.patch"
    );
    assert!(
        !detail.to_string().contains("path.Clean"),
        "no patch content"
    );
    for (_, pattern, _) in token_routes().iter().filter(|(m, _, _)| m == "GET") {
        let path = pattern.replace("{id}", &embargoed.to_string());
        let body = staff.get(&path).await.text().await.expect("body");
        assert!(!body.contains("path.Clean"), "{path}");
        // And nothing of it without a token.
        let body = public.get(&path).await.text().await.expect("body");
        assert!(!body.contains(CVE_EMBARGOED), "{path}");
    }

    let last = data_encoding::BASE64URL_NOPAD.encode(format!("after:{}", i64::MAX).as_bytes());
    let (status, page) = answer(
        staff
            .get(&format!(
                "/api/v1/manage/releases/{published}/deliveries?cursor={last}"
            ))
            .await,
    )
    .await;
    assert_eq!((status, page["items"].clone()), (200, json!([])));

    // Once its release time has passed, the announced release is published with its advisory.
    let announced_at = app
        .with_db(move |c| Ok(release::find(c, announced)?.expect("release").release_at))
        .await;
    distribute(&app, utc(announced_at) + chrono::Duration::minutes(1)).await;
    let (_, found) = answer(
        public
            .get(&format!(
                "/api/v1/advisories?cve={}",
                CVE_ANNOUNCED.to_lowercase()
            ))
            .await,
    )
    .await;
    assert_eq!(found["items"][0]["release_id"], announced);

    // The calendar: the second Tuesday of each month, in the list's zone.
    let (status, calendar) = answer(public.get("/api/v1/calendar?months=14").await).await;
    assert_eq!(status, 200);
    let days = calendar.as_array().expect("days");
    assert_eq!(days.len(), 14);
    for day in days {
        let date = chrono::NaiveDate::parse_from_str(
            day["patch_tuesday"].as_str().expect("date"),
            "%Y-%m-%d",
        )
        .expect("a date");
        assert_eq!(date.weekday(), chrono::Weekday::Tue);
        assert!((8..=14).contains(&date.day()), "{date}");
    }
}

use chrono::Datelike;

async fn release_managers_plan_add_advisories_and_upload_patches(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let rel = app
        .add_account(
            "rel@project.example",
            "Rel",
            &[Role::ReleaseManager],
            PASSWORD,
        )
        .await;
    let token = token_for(
        &app,
        rel,
        "rel@project.example",
        &[Scope::ReleasesRead, Scope::ReleasesWrite],
    )
    .await;
    let api = Api::new(&app, Some(&token));

    // Values that are wrong: one message per field.
    let (status, problem) = answer(
        api.post(
            "/api/v1/manage/releases",
            &json!({ "kind": "someday", "title": "x", "release_lines": [] }),
        )
        .await,
    )
    .await;
    assert_eq!((status, kind(&problem)), (422, "invalid"));
    assert!(problem["errors"]["kind"].is_string(), "{problem}");
    // A field the API does not know is an error, not silently dropped.
    let (status, problem) = answer(
        api.post(
            "/api/v1/manage/releases",
            &json!({ "kind": "zero-day", "title": "x", "release_lines": ["1.9.5"], "approved": true }),
        )
        .await,
    )
    .await;
    assert_eq!((status, kind(&problem)), (400, "bad-request"), "{problem}");
    // Not JSON at all.
    let response = reqwest::Client::new()
        .post(format!("{}/api/v1/manage/releases", app.address))
        .bearer_auth(&token)
        .header("content-type", "text/plain")
        .body("kind=zero-day")
        .send()
        .await
        .expect("answer");
    let (status, problem) = answer(response).await;
    assert_eq!((status, kind(&problem)), (415, "unsupported-media-type"));

    let (status, planned) = answer(
        api.post(
            "/api/v1/manage/releases",
            &json!({
                "kind": "zero-day",
                "title": "Security release 1.9.6",
                "release_lines": ["1.9.6"],
                "release_at": "2028-02-29T17:00:00+01:00",
                "notice_hours": 24,
            }),
        )
        .await,
    )
    .await;
    assert_eq!(status, 201, "{planned}");
    let id = planned["id"].as_i64().expect("id");
    // The leap day, given in +01:00, stored and answered in UTC.
    assert_eq!(planned["release_at"], "2028-02-29T16:00:00Z");
    assert_eq!(planned["state"], "needs-approval", "{planned}");

    let (status, with_advisory) = answer(
        api.post(
            &format!("/api/v1/manage/releases/{id}/advisories"),
            &json!({
                "cve_id": "cve-2028-0001",
                "severity": "critical",
                "cvss_vector": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H",
                "summary": "Remote code execution in the admin listener.",
                "affected_versions": "1.9.0 to 1.9.5",
                "fixed_versions": "1.9.6",
            }),
        )
        .await,
    )
    .await;
    assert_eq!(status, 201, "{with_advisory}");
    assert_eq!(with_advisory["advisories"][0]["cve_id"], "CVE-2028-0001");
    assert_eq!(with_advisory["state"], "needs-approval");
    let (status, problem) = answer(
        api.post(
            &format!("/api/v1/manage/releases/{id}/advisories"),
            &json!({ "cve_id": "CVE-1", "severity": "bad", "summary": "", "affected_versions": "", "fixed_versions": "" }),
        )
        .await,
    )
    .await;
    assert_eq!((status, kind(&problem)), (422, "invalid"));
    assert!(problem["errors"]["cve_id"].is_string() && problem["errors"]["severity"].is_string());

    let content = data_encoding::BASE64.encode(PATCH.as_bytes());
    let (status, with_patch) = answer(
        api.post(
            &format!("/api/v1/manage/releases/{id}/patches"),
            &json!({
                "filename": "0001-normalize-paths.patch",
                "content_base64": content,
                "release_line": "1.9.6",
            }),
        )
        .await,
    )
    .await;
    assert_eq!(status, 201, "{with_patch}");
    let patch = &with_patch["patches"][0];
    assert_eq!(patch["may_redistribute"], true);
    assert_eq!(patch["sha256"].as_str().map(str::len), Some(64));
    assert!(!with_patch.to_string().contains("path.Clean"));
    let (status, problem) = answer(
        api.post(
            &format!("/api/v1/manage/releases/{id}/patches"),
            &json!({ "filename": "x.patch", "content_base64": content, "release_line": "2.0" }),
        )
        .await,
    )
    .await;
    assert_eq!((status, kind(&problem)), (422, "invalid"));
    assert!(problem["errors"]["release_line"].is_string(), "{problem}");
    let (status, _) = answer(
        api.post(
            "/api/v1/manage/releases/99999/advisories",
            &json!({ "cve_id": "CVE-2028-0002", "severity": "low", "summary": "s", "affected_versions": "1", "fixed_versions": "2" }),
        )
        .await,
    )
    .await;
    assert_eq!(status, 404);

    // There is no way to approve through the API.
    let (status, _) = answer(
        api.post(&format!("/api/v1/manage/releases/{id}/approve"), &json!({}))
            .await,
    )
    .await;
    assert_eq!(status, 404);

    // Every write is in the audit log with the token's name.
    let actors: Vec<(String, String)> = app
        .with_db(|c| {
            Ok(audit_log::table
                .filter(audit_log::action.like("release.%"))
                .select((audit_log::action, audit_log::actor))
                .load(c)?)
        })
        .await;
    assert!(actors.len() >= 3, "{actors:?}");
    assert!(
        actors
            .iter()
            .all(|(_, actor)| actor == "rel@project.example (API token \"test tool\")"),
        "{actors:?}"
    );
}

async fn lists_are_paged_by_cursor_and_bad_input_is_a_problem(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let root = app
        .add_account("root@project.example", "Root", &[Role::Admin], PASSWORD)
        .await;
    let mut expected = Vec::new();
    for n in 0..7 {
        expected.push(
            app.add_member(&format!("Org {n}"), &format!("org{n}.example"), "active", 1)
                .await,
        );
    }
    let token = token_for(&app, root, "root@project.example", &[Scope::MembersRead]).await;
    let api = Api::new(&app, Some(&token));
    let mut seen = Vec::new();
    let mut path = "/api/v1/members?limit=3".to_owned();
    let mut pages = 0;
    loop {
        let response = api.get(&path).await;
        let link = response
            .headers()
            .get("link")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let (status, page) = answer(response).await;
        assert_eq!(status, 200);
        pages += 1;
        seen.extend(
            page["items"]
                .as_array()
                .expect("items")
                .iter()
                .map(|m| m["id"].as_i64().expect("id")),
        );
        match page["next_cursor"].as_str() {
            Some(cursor) => {
                let next = link.expect("a Link to the next page");
                assert!(next.contains(cursor) && next.ends_with("rel=\"next\""));
                path = format!("/api/v1/members?limit=3&cursor={cursor}");
            }
            None => {
                assert!(link.is_none());
                break;
            }
        }
    }
    assert_eq!((seen, pages), (expected, 3));
    assert_eq!(
        answer(api.get("/api/v1/members").await).await.1["items"][0]["security_alias"],
        "security@org0.example"
    );

    for (path, expected) in [
        ("/api/v1/members?cursor=bm9wZQ", "invalid-cursor"),
        ("/api/v1/members?cursor=%00", "invalid-cursor"),
        ("/api/v1/members?limit=0", "invalid-parameter"),
        ("/api/v1/members?limit=101", "invalid-parameter"),
        ("/api/v1/members?limit=-1", "invalid-parameter"),
    ] {
        let (status, problem) = answer(api.get(path).await).await;
        assert_eq!((status, kind(&problem)), (400, expected), "{path}");
    }
    // A cursor at the very end of the numbers is an empty page, not an overflow.
    let last = data_encoding::BASE64URL_NOPAD.encode(format!("after:{}", i64::MAX).as_bytes());
    let (status, page) = answer(api.get(&format!("/api/v1/members?cursor={last}")).await).await;
    assert_eq!((status, page["items"].clone()), (200, json!([])));
    let (status, problem) = answer(api.get("/api/v1/nowhere").await).await;
    assert_eq!((status, kind(&problem)), (404, "not-found"));
    let (status, problem) = answer(api.get("/api/v1/applications/abc").await).await;
    assert_eq!(status, 403, "{problem}");
    let response = reqwest::Client::new()
        .delete(format!("{}/api/v1/releases", app.address))
        .send()
        .await
        .expect("answer");
    let (status, problem) = answer(response).await;
    assert_eq!((status, kind(&problem)), (405, "method-not-allowed"));
}

async fn tokens_are_rate_limited_with_headers(backend: Backend) {
    let Some(app) = TestApp::spawn_with(backend, &[("EDL_API_RATE_LIMIT", "3/1m")], None).await
    else {
        return;
    };
    let rel = app
        .add_account(
            "rel@project.example",
            "Rel",
            &[Role::ReleaseManager],
            PASSWORD,
        )
        .await;
    let token = token_for(&app, rel, "rel@project.example", &[Scope::ReleasesRead]).await;
    let other = token_for(&app, rel, "rel@project.example", &[Scope::ReleasesRead]).await;
    let api = Api::new(&app, Some(&token));
    for left in [2, 1, 0] {
        let response = api.get("/api/v1/manage/releases").await;
        assert_eq!(response.status(), 200);
        assert_eq!(response.headers()["ratelimit-policy"], "\"token\";q=3;w=60");
        assert_eq!(
            response.headers()["ratelimit"],
            format!("\"token\";r={left};t=60").as_str()
        );
    }
    let response = api.get("/api/v1/manage/releases").await;
    let wait: u64 = response.headers()["retry-after"]
        .to_str()
        .expect("ascii")
        .parse()
        .expect("seconds");
    assert!((1..=60).contains(&wait));
    let (status, problem) = answer(response).await;
    assert_eq!((status, kind(&problem)), (429, "rate-limited"));
    // Each token has its own count.
    assert_eq!(
        Api::new(&app, Some(&other))
            .get("/api/v1/manage/releases")
            .await
            .status(),
        200
    );
}

/// PostgreSQL cannot store a NUL in text; the fuzzer found one reaching it. Every way in
/// refuses it first, with a reason.
async fn a_nul_character_is_refused_with_a_reason_not_a_server_error(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let rel = app
        .add_account(
            "rel@project.example",
            "Rel",
            &[Role::ReleaseManager],
            PASSWORD,
        )
        .await;
    let token = token_for(&app, rel, "rel@project.example", &[Scope::ReleasesWrite]).await;
    let api = Api::new(&app, Some(&token));
    let (status, problem) = answer(
        api.post(
            "/api/v1/manage/releases",
            &json!({ "kind": "zero-day", "title": "Release\u{0}1.9.6", "release_lines": ["1.9.6"] }),
        )
        .await,
    )
    .await;
    assert_eq!((status, kind(&problem)), (422, "invalid"));
    assert!(problem["errors"]["title"].is_string(), "{problem}");
    let (status, problem) = answer(
        api.post(
            "/api/v1/manage/releases",
            &json!({ "kind": "zero-day", "title": "Release 1.9.6", "release_lines": ["1.9.\u{0}6"] }),
        )
        .await,
    )
    .await;
    assert_eq!((status, kind(&problem)), (422, "invalid"));
    assert!(problem["errors"]["release_lines"].is_string(), "{problem}");
    // Other control characters are refused in text that goes to members and the public.
    let (status, planned) = answer(
        api.post(
            "/api/v1/manage/releases",
            &json!({ "kind": "zero-day", "title": "Release 1.9.6", "release_lines": ["1.9.6"], "notice_hours": 1 }),
        )
        .await,
    )
    .await;
    assert_eq!(status, 201, "{planned}");
    let id = planned["id"].as_i64().expect("id");
    let (status, problem) = answer(
        api.post(
            &format!("/api/v1/manage/releases/{id}/advisories"),
            &json!({ "cve_id": "CVE-2026-50001", "severity": "low", "summary": "Bell\u{7} in text", "affected_versions": "1.9.5", "fixed_versions": "1.9.6" }),
        )
        .await,
    )
    .await;
    assert_eq!((status, kind(&problem)), (422, "invalid"));
    assert!(problem["errors"]["summary"]
        .as_str()
        .is_some_and(|m| m.contains("control characters")));

    // A web form with a NUL is a 400 with a sentence, on every backend.
    let browser = Browser::open(&app).await;
    browser.sign_in("rel@project.example", PASSWORD).await;
    let response = browser
        .post(
            "/manage/releases",
            &[
                ("kind", "zero-day"),
                ("title", "a\0b"),
                ("release_lines", "1.9.6"),
            ],
        )
        .await;
    assert_eq!(response.status(), 400);
    assert!(response
        .text()
        .await
        .expect("page")
        .contains("NUL character"));
    let applicant = Browser::open(&app).await;
    let fields = crate::membership::application("Null\0 Corp", "nul.example");
    let refs: Vec<(&str, &str)> = fields
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    assert_eq!(applicant.post("/apply", &refs).await.status(), 400);
}
