//! Passkeys as the second factor, exercised with a software authenticator (webauthn-rs's own
//! test support) speaking to the service's JSON endpoints exactly as the page's script does:
//! adding a passkey, signing in with it, step-up with it, and the ways around it an attacker
//! would try: an answer replayed, an answer with no challenge asked, a session with only the
//! password adding its own passkey, a script on another origin, a missing CSRF token.

use diesel::prelude::*;
use edl::accounts::Role;
use edl::db::schema::{audit_log, passkeys};
use serde_json::{json, Value};
use url::Url;
use webauthn_authenticator_rs::softpasskey::SoftPasskey;
use webauthn_authenticator_rs::WebauthnAuthenticator;
use webauthn_rs::prelude::{
    CreationChallengeResponse, PublicKeyCredential, RequestChallengeResponse,
};

use crate::helpers::{Backend, Browser, TestApp};
use crate::on_both_backends;

const PASSWORD: &str = "tangerine-kettle-orbit-42";

on_both_backends!(
    a_passkey_is_added_and_signs_in,
    a_passkey_answer_works_once_and_only_for_its_challenge,
    a_session_with_only_the_password_cannot_add_a_passkey,
    a_passkey_answers_a_step_up_and_an_admin_reset_removes_it,
    without_a_host_name_passkeys_are_not_offered,
);

/// A site with a host name: browsers, and the relying party, refuse an IP address.
async fn spawn(backend: Backend) -> Option<TestApp> {
    TestApp::spawn_with(backend, &[("EDL_BASE_URL", "http://localhost:8080")], None).await
}

fn origin(app: &TestApp) -> Url {
    Url::parse(app.settings.base_url.as_str()).expect("base url")
}

async fn post_json(browser: &Browser, path: &str, body: &Value) -> reqwest::Response {
    browser
        .client
        .post(format!("{}{path}", browser.base))
        .header("x-csrf-token", &browser.csrf)
        .json(body)
        .send()
        .await
        .expect("the server answers")
}

fn location(response: &reqwest::Response) -> String {
    response
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}

/// Adds a passkey from a signed-in browser, as the setup page's script does.
async fn add_passkey(
    app: &TestApp,
    browser: &Browser,
    authenticator: &mut WebauthnAuthenticator<SoftPasskey>,
    name: &str,
) {
    let started = post_json(browser, "/account/second-factor/passkey/start", &json!({})).await;
    assert_eq!(started.status(), 200);
    let options: CreationChallengeResponse = started.json().await.expect("options");
    let credential = authenticator
        .do_registration(origin(app), options)
        .expect("the authenticator makes a credential");
    let done = post_json(
        browser,
        "/account/second-factor/passkey/finish",
        &json!({ "name": name, "credential": credential }),
    )
    .await;
    assert_eq!(
        done.status(),
        200,
        "{}",
        done.text().await.unwrap_or_default()
    );
    let answer: Value = done.json().await.expect("json");
    assert_eq!(
        answer["redirect"],
        "/account/second-factor?notice=passkey-added"
    );
}

/// Asks for the challenge and has the authenticator answer it.
async fn passkey_answer(
    app: &TestApp,
    browser: &Browser,
    authenticator: &mut WebauthnAuthenticator<SoftPasskey>,
) -> PublicKeyCredential {
    let started = post_json(browser, "/login/second-factor/passkey/start", &json!({})).await;
    assert_eq!(started.status(), 200);
    let options: RequestChallengeResponse = started.json().await.expect("options");
    authenticator
        .do_authentication(origin(app), options)
        .expect("the authenticator signs")
}

async fn password_only(browser: &Browser, email: &str) {
    let response = browser
        .post("/login", &[("email", email), ("password", PASSWORD)])
        .await;
    assert!(
        location(&response).starts_with("/login/second-factor"),
        "{}",
        location(&response)
    );
}

async fn a_passkey_is_added_and_signs_in(backend: Backend) {
    let Some(app) = spawn(backend).await else {
        return;
    };
    app.add_account("ada@project.example", "Ada", &[Role::Admin], PASSWORD)
        .await;
    let first = Browser::open(&app).await;
    first.sign_in("ada@project.example", PASSWORD).await;
    let mut authenticator = WebauthnAuthenticator::new(SoftPasskey::new(true));
    add_passkey(&app, &first, &mut authenticator, "work laptop").await;
    // A NUL in the script's JSON is refused before anything is read, never passed on to the
    // database.
    let nul = post_json(
        &first,
        "/account/second-factor/passkey/finish",
        &json!({ "name": "key\u{0}", "credential": {} }),
    )
    .await;
    assert_eq!(nul.status(), 400);
    let page = first
        .get("/account/second-factor")
        .await
        .text()
        .await
        .expect("page");
    assert!(page.contains("work laptop") && page.contains("/assets/webauthn.js"));

    // The next sign-in stops after the password and offers the passkey.
    let browser = Browser::open(&app).await;
    password_only(&browser, "ada@project.example").await;
    assert_eq!(browser.get("/admin").await.status(), 303);
    let code_page = browser.get("/login/second-factor?next=%2Fadmin").await;
    let policy = code_page
        .headers()
        .get("content-security-policy")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    assert!(policy.contains("script-src 'self'"), "{policy}");
    assert!(code_page
        .text()
        .await
        .expect("page")
        .contains("Use a passkey"));
    let answer = passkey_answer(&app, &browser, &mut authenticator).await;
    let done = post_json(
        &browser,
        "/login/second-factor/passkey/finish",
        &json!({ "credential": answer, "next": "/admin" }),
    )
    .await;
    assert_eq!(done.status(), 200);
    let answer: Value = done.json().await.expect("json");
    assert_eq!(answer["redirect"], "/admin");
    assert_eq!(browser.get("/admin").await.status(), 200);

    let log = app
        .with_db(|c| {
            Ok(audit_log::table
                .filter(audit_log::action.like("2fa.%"))
                .select((audit_log::action, audit_log::details))
                .load::<(String, String)>(c)?)
        })
        .await;
    assert!(log.iter().any(|(a, _)| a == "2fa.passkey.added"), "{log:?}");
    assert!(
        log.iter()
            .any(|(a, d)| a == "2fa.used" && d.contains("\"passkey\"")),
        "{log:?}"
    );
}

async fn a_passkey_answer_works_once_and_only_for_its_challenge(backend: Backend) {
    let Some(app) = spawn(backend).await else {
        return;
    };
    app.add_account("ada@project.example", "Ada", &[Role::Admin], PASSWORD)
        .await;
    let first = Browser::open(&app).await;
    first.sign_in("ada@project.example", PASSWORD).await;
    let mut authenticator = WebauthnAuthenticator::new(SoftPasskey::new(true));
    add_passkey(&app, &first, &mut authenticator, "key").await;

    let browser = Browser::open(&app).await;
    password_only(&browser, "ada@project.example").await;
    let answer = passkey_answer(&app, &browser, &mut authenticator).await;
    let finish = |body: Value| {
        let browser = &browser;
        async move { post_json(browser, "/login/second-factor/passkey/finish", &body).await }
    };
    // Without the CSRF header, or as a form, the answer is not even read.
    let no_csrf = browser
        .client
        .post(format!(
            "{}/login/second-factor/passkey/finish",
            browser.base
        ))
        .json(&json!({ "credential": answer }))
        .send()
        .await
        .expect("answer");
    assert_eq!(no_csrf.status(), 403);
    // Used once: accepted.
    assert_eq!(finish(json!({ "credential": answer })).await.status(), 200);

    // The same answer, replayed in another session after the password, is refused: the
    // challenge it signed was used up, and the new session's challenge differs.
    let other = Browser::open(&app).await;
    password_only(&other, "ada@project.example").await;
    let replay = post_json(
        &other,
        "/login/second-factor/passkey/finish",
        &json!({ "credential": answer }),
    )
    .await;
    assert_eq!(replay.status(), 401);
    let _ = passkey_answer(&app, &other, &mut authenticator).await;
    let replay = post_json(
        &other,
        "/login/second-factor/passkey/finish",
        &json!({ "credential": answer }),
    )
    .await;
    assert_eq!(replay.status(), 401);
    assert_eq!(other.get("/admin").await.status(), 303, "still waiting");

    // An authenticator answering a page on another origin (the same host name on another
    // port: a look-alike site the authenticator would serve) is refused.
    let started = post_json(&other, "/login/second-factor/passkey/start", &json!({})).await;
    let options: RequestChallengeResponse = started.json().await.expect("options");
    let phished = authenticator
        .do_authentication(Url::parse("http://localhost:9999").expect("url"), options)
        .expect("the authenticator signs whatever it is asked");
    let refused = post_json(
        &other,
        "/login/second-factor/passkey/finish",
        &json!({ "credential": phished }),
    )
    .await;
    assert_eq!(refused.status(), 401);
    // Failures count against the lockout of the code step: three so far, two more lock it.
    for _ in 0..2 {
        let _ = post_json(
            &other,
            "/login/second-factor/passkey/finish",
            &json!({ "credential": answer }),
        )
        .await;
    }
    let options: RequestChallengeResponse =
        post_json(&other, "/login/second-factor/passkey/start", &json!({}))
            .await
            .json()
            .await
            .expect("options");
    let good = authenticator
        .do_authentication(origin(&app), options)
        .expect("signs");
    let locked = post_json(
        &other,
        "/login/second-factor/passkey/finish",
        &json!({ "credential": good }),
    )
    .await;
    assert_eq!(locked.status(), 429);
    assert!(locked.headers().get("retry-after").is_some());
}

async fn a_session_with_only_the_password_cannot_add_a_passkey(backend: Backend) {
    let Some(app) = spawn(backend).await else {
        return;
    };
    app.add_account("ada@project.example", "Ada", &[Role::Admin], PASSWORD)
        .await;
    let first = Browser::open(&app).await;
    first.sign_in("ada@project.example", PASSWORD).await;
    let mut own = WebauthnAuthenticator::new(SoftPasskey::new(true));
    add_passkey(&app, &first, &mut own, "mine").await;

    // Someone with the password alone tries to add their own authenticator.
    let thief = Browser::open(&app).await;
    password_only(&thief, "ada@project.example").await;
    let started = post_json(&thief, "/account/second-factor/passkey/start", &json!({})).await;
    assert_eq!(started.status(), 303);
    assert!(location(&started).starts_with("/login/second-factor"));
    let finished = post_json(
        &thief,
        "/account/second-factor/passkey/finish",
        &json!({ "name": "thief", "credential": {} }),
    )
    .await;
    assert_eq!(finished.status(), 303);
    // Nor can a signed-in session whose factor is stale add one without giving it again.
    app.advance(chrono::Duration::minutes(6));
    let stale = post_json(&first, "/account/second-factor/passkey/start", &json!({})).await;
    assert_eq!(stale.status(), 303);
    assert_eq!(
        location(&stale),
        "/login/second-factor?next=%2Faccount%2Fsecond-factor&step_up=1"
    );
    let count: i64 = app
        .with_db(|c| Ok(passkeys::table.count().get_result(c)?))
        .await;
    assert_eq!(count, 1);
}

async fn a_passkey_answers_a_step_up_and_an_admin_reset_removes_it(backend: Backend) {
    let Some(app) = spawn(backend).await else {
        return;
    };
    app.add_account("ada@project.example", "Ada", &[Role::Admin], PASSWORD)
        .await;
    let bob = app
        .add_account("bob@project.example", "Bob", &[Role::Reviewer], PASSWORD)
        .await;
    let admin = Browser::open(&app).await;
    admin.sign_in("ada@project.example", PASSWORD).await;
    let mut authenticator = WebauthnAuthenticator::new(SoftPasskey::new(true));
    add_passkey(&app, &admin, &mut authenticator, "admin key").await;
    let bob_browser = Browser::open(&app).await;
    bob_browser.sign_in("bob@project.example", PASSWORD).await;
    let mut bobs = WebauthnAuthenticator::new(SoftPasskey::new(true));
    add_passkey(&app, &bob_browser, &mut bobs, "bob's key").await;

    // Bob, fresh from adding his own, names Ada's passkey in the remove route: nothing goes.
    let adas_key: i64 = app
        .with_db(move |c| {
            Ok(passkeys::table
                .filter(passkeys::account_id.ne(bob))
                .select(passkeys::id)
                .first(c)?)
        })
        .await;
    let tried = bob_browser
        .post(
            &format!("/account/second-factor/passkeys/{adas_key}/remove"),
            &[],
        )
        .await;
    assert_eq!(
        location(&tried),
        "/account/second-factor?notice=passkey-not-found"
    );
    let still: i64 = app
        .with_db(move |c| {
            Ok(passkeys::table
                .filter(passkeys::id.eq(adas_key))
                .count()
                .get_result(c)?)
        })
        .await;
    assert_eq!(still, 1, "another account's passkey is not removed");

    app.advance(chrono::Duration::minutes(6));
    let path = format!("/admin/users/{bob}/second-factor/reset");
    let asked = admin.post(&path, &[("confirm", "yes")]).await;
    assert_eq!(
        location(&asked),
        format!(
            "/login/second-factor?next=%2Fadmin%2Fusers%2F{bob}%2Fsecond-factor%2Freset&step_up=1"
        )
    );
    let answer = passkey_answer(&app, &admin, &mut authenticator).await;
    let proven = post_json(
        &admin,
        "/login/second-factor/passkey/finish",
        &json!({ "credential": answer, "next": format!("/admin/users/{bob}/second-factor/reset") }),
    )
    .await;
    assert_eq!(proven.status(), 200);
    let reset = admin.post(&path, &[("confirm", "yes")]).await;
    assert_eq!(location(&reset), "/admin/users?notice=second-factor-reset");
    let bobs_keys: i64 = app
        .with_db(move |c| {
            Ok(passkeys::table
                .filter(passkeys::account_id.eq(bob))
                .count()
                .get_result(c)?)
        })
        .await;
    assert_eq!(bobs_keys, 0);
    assert_eq!(
        bob_browser.get("/account").await.status(),
        303,
        "signed out"
    );
    let again = Browser::open(&app).await;
    let signed = again
        .post(
            "/login",
            &[("email", "bob@project.example"), ("password", PASSWORD)],
        )
        .await;
    assert_eq!(location(&signed), "/account", "the password alone again");
}

async fn without_a_host_name_passkeys_are_not_offered(backend: Backend) {
    // The default test site is http://127.0.0.1:…: an IP address cannot be a relying party.
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    app.add_account("ada@project.example", "Ada", &[Role::Admin], PASSWORD)
        .await;
    let browser = Browser::open(&app).await;
    browser.sign_in("ada@project.example", PASSWORD).await;
    let page = browser
        .get("/account/second-factor")
        .await
        .text()
        .await
        .expect("page");
    assert!(!page.contains("Add a passkey") && page.contains("Set up an authenticator app"));
    let started = post_json(&browser, "/account/second-factor/passkey/start", &json!({})).await;
    assert_eq!(started.status(), 404);
    let answer: Value = started.json().await.expect("json");
    assert!(answer["error"]
        .as_str()
        .unwrap_or_default()
        .contains("EDL_BASE_URL"));
}
