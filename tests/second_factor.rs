//! The second factor as the working group uses it: setting up an authenticator app from the
//! page (the codes computed here from the secret the page shows, by an implementation of RFC
//! 6238 other than the service's), signing in with a code or a recovery code, and everything
//! that tries to get around it: no code, a wrong code, a reused code, a session that gave only
//! the password, an account whose role requires a factor and has none, a stale factor on an
//! approval, guessing codes, and the command line.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use edl::accounts::Role;
use edl::db::schema::{audit_log, totp_factors};

use crate::helpers::{Backend, Browser, TestApp};
use crate::on_both_backends;
use crate::releases::{add_patch, find, planned_on, setup_with, PROJECT_PATCH};

const PASSWORD: &str = "tangerine-kettle-orbit-42";

on_both_backends!(
    an_authenticator_is_set_up_and_sign_in_asks_for_its_code,
    a_session_with_only_the_password_reaches_nothing,
    a_recovery_code_works_once,
    wrong_codes_lock_the_code_step_like_wrong_passwords,
    a_required_role_without_a_second_factor_reaches_only_the_setup_page,
    a_stale_second_factor_is_asked_for_again_before_an_approval,
    role_changes_ask_for_the_second_factor_again,
    an_admin_resets_a_lost_second_factor,
    the_command_line_approval_asks_for_the_code,
);

/// The code an authenticator app shows for `secret` at `at`.
fn code_at(secret: &[u8], at: DateTime<Utc>) -> String {
    let totp = totp_rs::TOTP::new_unchecked(totp_rs::Algorithm::SHA1, 6, 0, 30, secret.to_vec());
    totp.generate(u64::try_from(at.timestamp()).expect("after 1970"))
}

fn between<'a>(html: &'a str, start: &str, end: &str) -> Option<&'a str> {
    let from = html.find(start)? + start.len();
    let to = html[from..].find(end)? + from;
    Some(&html[from..to])
}

/// The recovery codes on the page that shows them once.
fn recovery_codes_in(html: &str) -> Vec<String> {
    let list = between(html, "id=\"recovery-codes\">", "</ul>").unwrap_or_default();
    list.split("<code>")
        .skip(1)
        .filter_map(|s| s.split("</code>").next())
        .map(str::to_owned)
        .collect()
}

/// Sets up an authenticator from the account's page, as a person does: the secret is read
/// from the page (as typed into an app), the first code confirms it. Returns the secret and
/// the recovery codes.
async fn enrol(app: &TestApp, browser: &Browser) -> (Vec<u8>, Vec<String>) {
    let page = browser.get("/account/second-factor").await;
    assert_eq!(page.status(), 200);
    assert!(page
        .text()
        .await
        .expect("page")
        .contains("Set up an authenticator app"));
    let started = browser.post("/account/second-factor/totp", &[]).await;
    assert_eq!(started.status(), 200);
    let html = started.text().await.expect("setup page");
    assert!(html.contains("<svg"), "a QR code is shown");
    let shown = between(&html, "<code id=\"totp-secret\">", "</code>").expect("the secret");
    let secret = data_encoding::BASE32_NOPAD
        .decode(shown.replace(' ', "").as_bytes())
        .expect("base32");
    assert_eq!(secret.len(), 20, "160 bits");

    // A wrong code leaves it off and shows the same secret again.
    let wrong = browser
        .post("/account/second-factor/totp/confirm", &[("code", "000000")])
        .await;
    assert_eq!(wrong.status(), 422);
    let html = wrong.text().await.expect("page");
    assert!(html.contains("does not match"), "{html}");
    assert_eq!(
        between(&html, "<code id=\"totp-secret\">", "</code>"),
        Some(shown)
    );
    let code = code_at(&secret, app.clock.now());
    let done = browser
        .post("/account/second-factor/totp/confirm", &[("code", &code)])
        .await;
    assert_eq!(done.status(), 200);
    let html = done.text().await.expect("page");
    let codes = recovery_codes_in(&html);
    assert_eq!(codes.len(), 10, "{html}");
    // The secret is shown only during setup.
    let later = browser
        .get("/account/second-factor")
        .await
        .text()
        .await
        .expect("page");
    assert!(
        !later.contains(shown) && later.contains("10 of 10"),
        "{later}"
    );
    (secret, codes)
}

/// Signs in with the password: the answer sends the browser to the code page.
async fn password_step(browser: &Browser, email: &str) {
    let response = browser
        .post(
            "/login",
            &[("email", email), ("password", PASSWORD), ("next", "/admin")],
        )
        .await;
    assert_eq!(response.status(), 303);
    assert_eq!(
        location(&response),
        "/login/second-factor?next=%2Fadmin",
        "the code comes next"
    );
}

fn location(response: &reqwest::Response) -> String {
    response
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}

async fn give_code(browser: &Browser, code: &str) -> reqwest::Response {
    browser
        .post(
            "/login/second-factor",
            &[("code", code), ("next", "/admin")],
        )
        .await
}

async fn actions(app: &TestApp) -> Vec<String> {
    app.with_db(|c| {
        Ok(audit_log::table
            .order(audit_log::id)
            .select(audit_log::action)
            .load::<String>(c)?)
    })
    .await
}

async fn an_authenticator_is_set_up_and_sign_in_asks_for_its_code(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    app.add_account("ada@project.example", "Ada", &[Role::Admin], PASSWORD)
        .await;
    let first = Browser::open(&app).await;
    first.sign_in("ada@project.example", PASSWORD).await;
    let (secret, _) = enrol(&app, &first).await;
    // The secret is not in the database as the app shows it.
    let stored: String = app
        .with_db(|c| Ok(totp_factors::table.select(totp_factors::secret).first(c)?))
        .await;
    let plain = data_encoding::BASE32_NOPAD.encode(&secret);
    assert!(!stored.contains(&plain) && !stored.contains(&hex::encode(&secret)));

    // The setup's own code cannot sign in again, even within its 30 seconds.
    let setup_code = code_at(&secret, app.clock.now());
    let browser = Browser::open(&app).await;
    password_step(&browser, "ada@project.example").await;
    let reused = give_code(&browser, &setup_code).await;
    assert_eq!(reused.status(), 401);
    let html = reused.text().await.expect("page");
    assert!(html.contains("not right, or was already used"), "{html}");
    // Without a code, or with a wrong one, nothing opens.
    assert_eq!(give_code(&browser, "").await.status(), 401);
    let wrong = if setup_code == "123456" {
        "654321"
    } else {
        "123456"
    };
    assert_eq!(give_code(&browser, wrong).await.status(), 401);
    assert_eq!(browser.get("/admin").await.status(), 303);

    // The next code does, once; and the page it asked for opens.
    app.advance(chrono::Duration::seconds(30));
    let code = code_at(&secret, app.clock.now());
    let accepted = give_code(&browser, &code).await;
    assert_eq!(accepted.status(), 303);
    assert_eq!(location(&accepted), "/admin");
    assert_eq!(browser.get("/admin").await.status(), 200);
    let other = Browser::open(&app).await;
    password_step(&other, "ada@project.example").await;
    assert_eq!(give_code(&other, &code).await.status(), 401, "reused");
    // A code from two steps ago or ahead is refused too.
    let stale = code_at(&secret, app.clock.now() - chrono::Duration::seconds(60));
    assert_eq!(give_code(&other, &stale).await.status(), 401);
    app.advance(chrono::Duration::seconds(30));
    let ahead = code_at(&secret, app.clock.now() + chrono::Duration::seconds(60));
    assert_eq!(give_code(&other, &ahead).await.status(), 401);
    // One step of drift either way is allowed (a phone's clock a little off).
    let drifted = code_at(&secret, app.clock.now() + chrono::Duration::seconds(30));
    assert_eq!(give_code(&other, &drifted).await.status(), 303);

    let log = actions(&app).await;
    for expected in [
        "2fa.totp.setup-started",
        "2fa.totp.setup-failed",
        "2fa.totp.enabled",
        "login.password",
        "2fa.failed",
        "2fa.used",
    ] {
        assert!(log.iter().any(|a| a == expected), "{expected} in {log:?}");
    }
}

async fn a_session_with_only_the_password_reaches_nothing(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    app.add_account("ada@project.example", "Ada", &[Role::Admin], PASSWORD)
        .await;
    let first = Browser::open(&app).await;
    first.sign_in("ada@project.example", PASSWORD).await;
    enrol(&app, &first).await;
    let browser = Browser::open(&app).await;
    password_step(&browser, "ada@project.example").await;
    // Every signed-in page sends it back to the code; forms are not run.
    for path in [
        "/account",
        "/admin",
        "/admin/users",
        "/admin/audit",
        "/account/second-factor",
        "/manage/releases",
    ] {
        let response = browser.get(path).await;
        assert_eq!(response.status(), 303, "{path}");
        assert!(
            location(&response).starts_with("/login/second-factor?next="),
            "{path}: {}",
            location(&response)
        );
    }
    let before = app
        .with_db(|c| edl::accounts::find_by_email(c, "bob@project.example"))
        .await;
    assert!(before.is_none());
    let created = browser
        .post(
            "/admin/users",
            &[
                ("email", "bob@project.example"),
                ("name", "Bob"),
                ("roles", "admin"),
            ],
        )
        .await;
    assert_eq!(created.status(), 303);
    let after = app
        .with_db(|c| edl::accounts::find_by_email(c, "bob@project.example"))
        .await;
    assert!(after.is_none(), "nothing was created");
    // Setting up a new factor over the missing one is not open either.
    let restart = browser.post("/account/second-factor/totp", &[]).await;
    assert_eq!(restart.status(), 303);
    // Public pages see an anonymous visitor; signing out works.
    let home = browser.get("/").await.text().await.expect("home");
    assert!(!home.contains("Ada</a>"), "not shown as signed in");
    assert_eq!(browser.post("/logout", &[]).await.status(), 303);
    assert_eq!(browser.get("/login/second-factor").await.status(), 303);
}

async fn a_recovery_code_works_once(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    app.add_account("ada@project.example", "Ada", &[Role::Admin], PASSWORD)
        .await;
    let first = Browser::open(&app).await;
    first.sign_in("ada@project.example", PASSWORD).await;
    let (_, codes) = enrol(&app, &first).await;

    let browser = Browser::open(&app).await;
    password_step(&browser, "ada@project.example").await;
    // Typed in capitals without dashes, as people copy them.
    let typed = codes[3].replace('-', "").to_uppercase();
    let used = give_code(&browser, &typed).await;
    assert_eq!(used.status(), 303);
    let page = browser
        .get("/account/second-factor")
        .await
        .text()
        .await
        .expect("page");
    assert!(page.contains("9 of 10"), "{page}");

    let again = Browser::open(&app).await;
    password_step(&again, "ada@project.example").await;
    assert_eq!(give_code(&again, &codes[3]).await.status(), 401);
    assert_eq!(give_code(&again, "aaaa-bbbb-cccc").await.status(), 401);
    assert_eq!(give_code(&again, &codes[4]).await.status(), 303);

    // New codes void the old ones; the renewal itself asks for a fresh factor, which the
    // recovery code just gave.
    let renewed = again
        .post("/account/second-factor/recovery-codes", &[])
        .await;
    assert_eq!(renewed.status(), 200);
    let fresh = recovery_codes_in(&renewed.text().await.expect("page"));
    assert_eq!(fresh.len(), 10);
    let third = Browser::open(&app).await;
    password_step(&third, "ada@project.example").await;
    assert_eq!(give_code(&third, &codes[5]).await.status(), 401);
    assert_eq!(give_code(&third, &fresh[0]).await.status(), 303);
}

async fn wrong_codes_lock_the_code_step_like_wrong_passwords(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    app.add_account("ada@project.example", "Ada", &[Role::Admin], PASSWORD)
        .await;
    let first = Browser::open(&app).await;
    first.sign_in("ada@project.example", PASSWORD).await;
    let (secret, _) = enrol(&app, &first).await;
    app.advance(chrono::Duration::seconds(30));

    let browser = Browser::open(&app).await;
    password_step(&browser, "ada@project.example").await;
    let right = code_at(&secret, app.clock.now());
    let wrong = if right == "111111" {
        "222222"
    } else {
        "111111"
    };
    // The threshold is five: the fifth wrong code locks.
    for _ in 0..4 {
        assert_eq!(give_code(&browser, wrong).await.status(), 401);
    }
    let locked = give_code(&browser, wrong).await;
    assert_eq!(locked.status(), 429);
    assert!(locked.headers().get("retry-after").is_some());
    // While locked, even the right code is refused, from any session of the account.
    let other = Browser::open(&app).await;
    password_step(&other, "ada@project.example").await;
    assert_eq!(give_code(&other, &right).await.status(), 429);
    // The lock lifts after its window.
    app.advance(chrono::Duration::minutes(16));
    let code = code_at(&secret, app.clock.now());
    assert_eq!(give_code(&other, &code).await.status(), 303);
}

async fn a_required_role_without_a_second_factor_reaches_only_the_setup_page(backend: Backend) {
    let Some(app) = TestApp::spawn_with(
        backend,
        &[("EDL_REQUIRE_2FA", "release-manager,admin,approver")],
        None,
    )
    .await
    else {
        return;
    };
    app.add_account(
        "rm@project.example",
        "Rel",
        &[Role::ReleaseManager],
        PASSWORD,
    )
    .await;
    app.add_account("rev@project.example", "Rev", &[Role::Reviewer], PASSWORD)
        .await;
    let rm = Browser::open(&app).await;
    rm.sign_in("rm@project.example", PASSWORD).await;
    let response = rm.get("/manage/releases").await;
    assert_eq!(response.status(), 303);
    assert_eq!(location(&response), "/account/second-factor?required=1");
    // Pages of roles it does not hold stay refused as before.
    assert_eq!(rm.get("/admin").await.status(), 403);
    let plan = rm
        .post(
            "/manage/releases",
            &[
                ("kind", "patch-tuesday"),
                ("title", "T"),
                ("lines", "1.9.5"),
            ],
        )
        .await;
    assert_eq!(plan.status(), 303);
    assert_eq!(location(&plan), "/account/second-factor?required=1");
    let page = rm
        .get("/account/second-factor?required=1")
        .await
        .text()
        .await
        .expect("page");
    assert!(
        page.contains("Your role requires a second factor"),
        "{page}"
    );
    // A role that is not required goes on as before.
    let rev = Browser::open(&app).await;
    rev.sign_in("rev@project.example", PASSWORD).await;
    assert_eq!(rev.get("/review/applications").await.status(), 200);
    // Once set up, the account works.
    enrol(&app, &rm).await;
    assert_eq!(rm.get("/manage/releases").await.status(), 200);
}

async fn a_stale_second_factor_is_asked_for_again_before_an_approval(backend: Backend) {
    let Some(s) = setup_with(backend, &[("EDL_STEP_UP_WINDOW", "5m")]).await else {
        return;
    };
    let id = planned_on(&s, None, "Security release 1.9.5", Utc::now()).await;
    add_patch(&s, id, "0001-normalize-paths.patch", PROJECT_PATCH, None)
        .await
        .expect("patch");
    let approver = Browser::open(&s.app).await;
    approver.sign_in("rm2@project.example", PASSWORD).await;
    let (secret, _) = enrol(&s.app, &approver).await;
    s.app.advance(chrono::Duration::minutes(6));

    let detail = format!("/manage/releases/{id}");
    // The page the form is on comes back after the code (the site sends no Referer, so the
    // route table says which page that is).
    let asked = approver.post(&format!("{detail}/approve"), &[]).await;
    assert_eq!(asked.status(), 303);
    assert_eq!(
        location(&asked),
        format!("/login/second-factor?next=%2Fmanage%2Freleases%2F{id}&step_up=1")
    );
    assert!(
        find(&s, id).await.approval.approved_at.is_none(),
        "not approved"
    );

    let page = approver
        .get(&location(&asked))
        .await
        .text()
        .await
        .expect("page");
    assert!(page.contains("Confirm it is you"), "{page}");
    let code = code_at(&secret, s.app.clock.now());
    let proven = approver
        .post(
            "/login/second-factor",
            &[("code", &code), ("next", &detail), ("step_up", "1")],
        )
        .await;
    assert_eq!(proven.status(), 303);
    assert_eq!(location(&proven), detail);
    let approved = approver.post(&format!("{detail}/approve"), &[]).await;
    assert_eq!(approved.status(), 303);
    assert!(!location(&approved).starts_with("/login"));
    assert!(find(&s, id).await.approval.approved_at.is_some());
}

async fn role_changes_ask_for_the_second_factor_again(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    app.add_account("ada@project.example", "Ada", &[Role::Admin], PASSWORD)
        .await;
    let bob = app
        .add_account("bob@project.example", "Bob", &[Role::Reviewer], PASSWORD)
        .await;
    let admin = Browser::open(&app).await;
    admin.sign_in("ada@project.example", PASSWORD).await;
    let (secret, _) = enrol(&app, &admin).await;
    let roles_of_bob = || async { app.with_db(move |c| edl::accounts::roles_of(c, bob)).await };
    // Within the window, no question.
    let path = format!("/admin/users/{bob}/roles");
    let first = admin
        .post(&path, &[("roles", "reviewer"), ("roles", "approver")])
        .await;
    assert_eq!(location(&first), "/admin/users?notice=roles");
    assert_eq!(roles_of_bob().await, vec![Role::Reviewer, Role::Approver]);
    // Past it, the change waits for the code.
    app.advance(chrono::Duration::minutes(6));
    let asked = admin.post(&path, &[("roles", "admin")]).await;
    assert!(
        location(&asked).starts_with("/login/second-factor?"),
        "{}",
        location(&asked)
    );
    assert_eq!(roles_of_bob().await, vec![Role::Reviewer, Role::Approver]);
    // Other pages still open; reading is not a sensitive action.
    assert_eq!(admin.get("/admin/users").await.status(), 200);
    let code = code_at(&secret, app.clock.now());
    assert_eq!(
        admin
            .post("/login/second-factor", &[("code", &code), ("step_up", "1")])
            .await
            .status(),
        303
    );
    let done = admin.post(&path, &[("roles", "admin")]).await;
    assert_eq!(location(&done), "/admin/users?notice=roles");
    assert_eq!(roles_of_bob().await, vec![Role::Admin]);
}

async fn an_admin_resets_a_lost_second_factor(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    app.add_account("ada@project.example", "Ada", &[Role::Admin], PASSWORD)
        .await;
    let rm = app
        .add_account(
            "rm@project.example",
            "Rel",
            &[Role::ReleaseManager],
            PASSWORD,
        )
        .await;
    let person = Browser::open(&app).await;
    person.sign_in("rm@project.example", PASSWORD).await;
    enrol(&app, &person).await;
    assert_eq!(person.get("/manage/releases").await.status(), 200);

    let admin = Browser::open(&app).await;
    admin.sign_in("ada@project.example", PASSWORD).await;
    let list = admin.get("/admin/users").await.text().await.expect("page");
    assert!(list.contains(&format!("/admin/users/{rm}/second-factor/reset")));
    let confirm_page = admin
        .get(&format!("/admin/users/{rm}/second-factor/reset"))
        .await;
    assert_eq!(confirm_page.status(), 200);
    // Without ticking the confirmation, nothing happens.
    let unconfirmed = admin
        .post(&format!("/admin/users/{rm}/second-factor/reset"), &[])
        .await;
    assert_eq!(unconfirmed.status(), 422);
    let reset = admin
        .post(
            &format!("/admin/users/{rm}/second-factor/reset"),
            &[("confirm", "yes")],
        )
        .await;
    assert_eq!(reset.status(), 303);
    // The person's session ended; the password alone signs in again.
    assert_eq!(person.get("/manage/releases").await.status(), 303);
    let again = Browser::open(&app).await;
    let signed = again
        .post(
            "/login",
            &[("email", "rm@project.example"), ("password", PASSWORD)],
        )
        .await;
    assert_eq!(location(&signed), "/account");
    let log = app
        .with_db(|c| {
            Ok(audit_log::table
                .filter(audit_log::action.eq("2fa.reset"))
                .select((audit_log::actor, audit_log::subject))
                .load::<(String, String)>(c)?)
        })
        .await;
    assert_eq!(
        log,
        vec![("ada@project.example".to_owned(), format!("account:{rm}"))]
    );
    // The command line resets too, for the last admin who lost theirs.
    let out = app.edl(
        &[
            "user",
            "reset-second-factor",
            "--email",
            "ada@project.example",
        ],
        "",
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

async fn the_command_line_approval_asks_for_the_code(backend: Backend) {
    let Some(s) = setup_with(backend, &[]).await else {
        return;
    };
    let id = planned_on(&s, None, "Security release 1.9.5", Utc::now()).await;
    add_patch(&s, id, "0001-normalize-paths.patch", PROJECT_PATCH, None)
        .await
        .expect("patch");
    let approver = Browser::open(&s.app).await;
    approver.sign_in("rm2@project.example", PASSWORD).await;
    let (secret, _) = enrol(&s.app, &approver).await;
    // The command line reads the same secret key as the service (its data folder).
    let data_dir = s.app.settings.data_dir.display().to_string();
    let vars = [("EDL_DATA_DIR", data_dir.as_str())];
    let args = [
        "release",
        "approve",
        &id.to_string(),
        "--as",
        "rm2@project.example",
        "--password-stdin",
    ];
    let run = |input: String| s.app.edl_with(&vars, &args, &input);
    let no_code = run(format!("{PASSWORD}\n"));
    assert!(!no_code.status.success());
    assert!(
        String::from_utf8_lossy(&no_code.stderr).contains("give its code on the line after"),
        "{}",
        String::from_utf8_lossy(&no_code.stderr)
    );
    let wrong = run(format!("{PASSWORD}\n000000\n"));
    assert!(!wrong.status.success());
    assert!(String::from_utf8_lossy(&wrong.stderr).contains("not right"));
    assert!(find(&s, id).await.approval.approved_at.is_none());
    // The command line runs on the system clock; the code is for now, and not the step the
    // setup used (the app's clock is the system clock here).
    let mut now = Utc::now();
    if now.timestamp() / 30 == s.app.clock.now().timestamp() / 30 {
        now += chrono::Duration::seconds(30);
    }
    let code = code_at(&secret, now);
    let approved = run(format!("{PASSWORD}\n{code}\n"));
    assert!(
        approved.status.success(),
        "{}",
        String::from_utf8_lossy(&approved.stderr)
    );
    assert!(find(&s, id).await.approval.approved_at.is_some());
    let used = s
        .app
        .with_db(|c| {
            Ok(audit_log::table
                .filter(audit_log::action.eq("2fa.used"))
                .select(audit_log::details)
                .load::<String>(c)?)
        })
        .await;
    assert!(used.iter().any(|d| d.contains("\"cli\"")), "{used:?}");
}
