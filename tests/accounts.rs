//! Working-group accounts as people use them: the CLI creates an admin, who signs in and out;
//! failed sign-ins, lockouts, rate limits, CSRF, sessions and the audit log.

use diesel::prelude::*;
use edl::accounts::Role;
use edl::audit::{self, Verification};
use edl::db::schema::{accounts, audit_log};

use crate::helpers::{csrf_token_in, Backend, Browser, TestApp};
use crate::on_both_backends;

const PASSWORD: &str = "tangerine-kettle-orbit-42";

on_both_backends!(
    an_admin_created_by_the_cli_signs_in_sees_admin_and_signs_out,
    the_audit_chain_stays_whole_when_many_write_at_once,
    a_wrong_password_and_an_unknown_email_look_the_same,
    repeated_failures_lock_an_address_whether_or_not_it_exists,
    the_per_ip_limit_answers_429_with_retry_after,
    forms_without_the_right_csrf_token_are_refused,
    weaker_hashes_are_upgraded_at_the_next_sign_in,
    a_password_change_ends_the_other_sessions,
    an_admin_reset_forces_a_new_password,
    disabling_an_account_ends_its_sessions,
    idle_sessions_end,
    the_last_admin_cannot_be_removed,
    an_altered_audit_entry_is_found,
    the_audit_page_checks_only_what_was_written_since_its_last_check,
    admins_create_accounts_and_get_a_temporary_password,
);

fn edl(
    db_url: &str,
    data_dir: &std::path::Path,
    args: &[&str],
    stdin: &str,
) -> std::process::Output {
    crate::helpers::run_edl(data_dir, &[("EDL_DATABASE_URL", db_url)], args, stdin)
}

async fn an_admin_created_by_the_cli_signs_in_sees_admin_and_signs_out(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let folder = app.db.folder();
    let args = [
        "user",
        "add",
        "--email",
        "Ada@Example.org",
        "--name",
        "Ada Admin",
        "--role",
        "admin",
        "--password-stdin",
    ];
    // A weak password is refused with a clear message, and nothing is created.
    let weak = edl(&app.db.url, &folder, &args, "password1234\n");
    assert!(!weak.status.success());
    assert!(
        String::from_utf8_lossy(&weak.stderr).contains("commonly used"),
        "{}",
        String::from_utf8_lossy(&weak.stderr)
    );
    let created = edl(&app.db.url, &folder, &args, &format!("{PASSWORD}\n"));
    assert!(
        created.status.success(),
        "{}",
        String::from_utf8_lossy(&created.stderr)
    );

    // The stored hash is argon2id at the OWASP parameters or above.
    let hash: String = app
        .with_db(|c| {
            Ok(accounts::table
                .filter(accounts::email.eq("ada@example.org"))
                .select(accounts::password_hash)
                .first(c)?)
        })
        .await;
    assert!(
        hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
        "{hash}"
    );

    let browser = Browser::open(&app).await;
    let response = browser
        .post(
            "/login",
            &[
                ("email", "ada@example.org"),
                ("password", PASSWORD),
                ("next", "/admin"),
            ],
        )
        .await;
    assert_eq!(response.status(), 303);
    assert_eq!(response.headers()["location"], "/admin");
    let cookie = response
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().expect("ascii").to_owned())
        .find(|c| c.starts_with("edl_session="))
        .expect("a session cookie");
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"),
        "{cookie}"
    );
    assert!(
        !cookie.contains("Secure"),
        "plain http must not mark the cookie Secure"
    );

    let admin = browser.get("/admin").await;
    assert_eq!(admin.status(), 200);
    let page = admin.text().await.expect("page");
    assert!(page.contains("Ada Admin") && page.contains("Sign out"));
    assert!(page.contains("The hash chain is intact"));

    let out = browser.post("/logout", &[]).await;
    assert_eq!(out.status(), 303);
    let after = browser.get("/admin").await;
    assert_eq!(
        after.status(),
        303,
        "signed out: the admin page sends to sign-in"
    );
    assert_eq!(after.headers()["location"], "/login?next=%2Fadmin");

    // A copy of the old cookie is worth nothing once the session has ended.
    let replay = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
        .get(format!("{}/admin", app.address))
        .header("cookie", cookie.split(';').next().expect("pair"))
        .send()
        .await
        .expect("answer");
    assert_eq!(replay.status(), 303);

    let actions: Vec<String> = app
        .with_db(|c| {
            Ok(audit_log::table
                .order(audit_log::seq)
                .select(audit_log::action)
                .load(c)?)
        })
        .await;
    assert_eq!(actions, vec!["account.created", "login", "logout"]);
    // The audit page's filter offers each action recorded once, in order.
    assert_eq!(
        app.with_db(audit::actions).await,
        vec!["account.created", "login", "logout"]
    );
}

async fn a_wrong_password_and_an_unknown_email_look_the_same(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    app.add_account("known@example.org", "Known", &[Role::Reviewer], PASSWORD)
        .await;
    let browser = Browser::open(&app).await;
    let wrong = browser
        .post(
            "/login",
            &[
                ("email", "known@example.org"),
                ("password", "not-the-password"),
            ],
        )
        .await;
    let unknown = browser
        .post(
            "/login",
            &[
                ("email", "nobody@example.org"),
                ("password", "not-the-password"),
            ],
        )
        .await;
    assert_eq!(wrong.status(), 401);
    assert_eq!(unknown.status(), 401);
    let (wrong, unknown) = (
        wrong.text().await.expect("page"),
        unknown.text().await.expect("page"),
    );
    assert!(wrong.contains(edl::web::login::FAILED));
    // The pages differ only in the address echoed back into the form.
    assert_eq!(
        wrong.replace("known@example.org", "X"),
        unknown.replace("nobody@example.org", "X")
    );
    // A disabled account with the right password fails the same way.
    let id = app
        .add_account("gone@example.org", "Gone", &[Role::Reviewer], PASSWORD)
        .await;
    app.with_db(move |c| {
        edl::accounts::set_disabled(c, "test", id, true)
            .map_err(|e| edl::db::DbError::Task(e.to_string()))
    })
    .await;
    let disabled = browser
        .post(
            "/login",
            &[("email", "gone@example.org"), ("password", PASSWORD)],
        )
        .await;
    assert_eq!(disabled.status(), 401);
    assert!(disabled
        .text()
        .await
        .expect("page")
        .contains(edl::web::login::FAILED));
}

async fn repeated_failures_lock_an_address_whether_or_not_it_exists(backend: Backend) {
    let vars = [
        ("EDL_LOGIN_LOCKOUT_WINDOW", "15m"),
        ("EDL_LOGIN_RATE_LIMIT", "1000/1m"),
    ];
    let Some(app) = TestApp::spawn_with(backend, &vars, None).await else {
        return;
    };
    app.add_account("target@example.org", "Target", &[Role::Reviewer], PASSWORD)
        .await;
    let browser = Browser::open(&app).await;
    for email in ["target@example.org", "ghost@example.org"] {
        for attempt in 1..=5 {
            let r = browser
                .post(
                    "/login",
                    &[("email", email), ("password", "wrong-guess-123")],
                )
                .await;
            let expected = if attempt < 5 { 401 } else { 429 };
            assert_eq!(r.status(), expected, "{email} attempt {attempt}");
        }
    }
    // Locked: even the right password is not tried, and the page says so, for either address.
    let locked = browser
        .post(
            "/login",
            &[("email", "target@example.org"), ("password", PASSWORD)],
        )
        .await;
    assert_eq!(locked.status(), 429);
    assert!(locked.headers().contains_key("retry-after"));
    let locked_text = locked.text().await.expect("page");
    assert!(
        locked_text.contains("paused after too many failed attempts"),
        "{locked_text}"
    );
    let ghost = browser
        .post(
            "/login",
            &[("email", "ghost@example.org"), ("password", PASSWORD)],
        )
        .await;
    assert_eq!(ghost.status(), 429);
    assert_eq!(
        ghost
            .text()
            .await
            .expect("page")
            .replace("ghost@example.org", "X"),
        locked_text.replace("target@example.org", "X")
    );
    // Still locked just before the window ends; after it, the right password works again.
    app.advance(chrono::Duration::minutes(14));
    let still = browser
        .post(
            "/login",
            &[("email", "target@example.org"), ("password", PASSWORD)],
        )
        .await;
    assert_eq!(still.status(), 429);
    app.advance(chrono::Duration::minutes(2));
    browser.sign_in("target@example.org", PASSWORD).await;
}

async fn the_per_ip_limit_answers_429_with_retry_after(backend: Backend) {
    let Some(app) = TestApp::spawn_with(backend, &[("EDL_LOGIN_RATE_LIMIT", "3/1m")], None).await
    else {
        return;
    };
    let browser = Browser::open(&app).await;
    for _ in 0..3 {
        let r = browser
            .post(
                "/login",
                &[("email", "a@example.org"), ("password", "whatever-it-is")],
            )
            .await;
        assert_eq!(r.status(), 401);
    }
    let limited = browser
        .post(
            "/login",
            &[("email", "b@example.org"), ("password", "whatever-it-is")],
        )
        .await;
    assert_eq!(limited.status(), 429);
    let retry: u64 = limited.headers()["retry-after"]
        .to_str()
        .expect("ascii")
        .parse()
        .expect("seconds");
    assert!((1..=60).contains(&retry), "{retry}");
    assert_eq!(
        limited.headers()["content-type"],
        "text/html; charset=utf-8"
    );
    assert!(limited
        .text()
        .await
        .expect("page")
        .contains("Too many requests from your address"));
    // Reading pages is not limited.
    assert_eq!(browser.get("/login").await.status(), 200);
}

async fn forms_without_the_right_csrf_token_are_refused(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    app.add_account("rev@example.org", "Rev", &[Role::Reviewer], PASSWORD)
        .await;
    let browser = Browser::open(&app).await;
    let fields = [("email", "rev@example.org"), ("password", PASSWORD)];

    let missing = browser.post_raw("/login", &fields).await;
    assert_eq!(missing.status(), 403);
    let page = missing.text().await.expect("page");
    assert!(
        page.contains("security token is missing or does not match"),
        "{page}"
    );

    let wrong = browser
        .post_raw(
            "/login",
            &[
                ("csrf_token", "0".repeat(64).as_str()),
                fields[0],
                fields[1],
            ],
        )
        .await;
    assert_eq!(wrong.status(), 403);

    // Another browser's valid token does not work in this one.
    let other = Browser::open(&app).await;
    let foreign = browser
        .post_raw(
            "/login",
            &[("csrf_token", other.csrf.as_str()), fields[0], fields[1]],
        )
        .await;
    assert_eq!(foreign.status(), 403);

    // With its own token it works; then signing out without a token is refused and the
    // session goes on.
    browser.sign_in("rev@example.org", PASSWORD).await;
    assert_eq!(browser.post_raw("/logout", &[]).await.status(), 403);
    assert_eq!(browser.get("/account").await.status(), 200);
}

async fn weaker_hashes_are_upgraded_at_the_next_sign_in(backend: Backend) {
    use argon2::password_hash::{rand_core::OsRng, PasswordHasher, SaltString};
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let id = app
        .add_account("old@example.org", "Old Timer", &[Role::Reviewer], PASSWORD)
        .await;
    let weak = argon2::Argon2::new(
        argon2::Algorithm::Argon2id,
        argon2::Version::V0x13,
        argon2::Params::new(4096, 1, 1, None).expect("params"),
    )
    .hash_password(PASSWORD.as_bytes(), &SaltString::generate(&mut OsRng))
    .expect("hash")
    .to_string();
    app.with_db(move |c| {
        diesel::update(accounts::table.filter(accounts::id.eq(id)))
            .set(accounts::password_hash.eq(weak))
            .execute(c)?;
        Ok(())
    })
    .await;
    Browser::open(&app)
        .await
        .sign_in("old@example.org", PASSWORD)
        .await;
    let hash: String = app
        .with_db(move |c| {
            Ok(accounts::table
                .filter(accounts::id.eq(id))
                .select(accounts::password_hash)
                .first(c)?)
        })
        .await;
    assert!(
        hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
        "{hash}"
    );
}

async fn a_password_change_ends_the_other_sessions(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    app.add_account("pat@example.org", "Pat", &[Role::ReleaseManager], PASSWORD)
        .await;
    let (laptop, phone) = (Browser::open(&app).await, Browser::open(&app).await);
    laptop.sign_in("pat@example.org", PASSWORD).await;
    phone.sign_in("pat@example.org", PASSWORD).await;

    // Mistakes are shown per field and nothing changes.
    let bad = laptop
        .post(
            "/account/password",
            &[
                ("current_password", "nope"),
                ("new_password", "short"),
                ("confirm_password", "other"),
            ],
        )
        .await;
    assert_eq!(bad.status(), 422);
    let page = bad.text().await.expect("page");
    assert!(page.contains("The current password is not right."));
    assert!(page.contains("at least 12 characters"));
    assert!(page.contains("The two new passwords are not the same."));
    assert!(
        !page.contains("value=\"nope\""),
        "passwords are never echoed back"
    );

    let new_password = "violet-harbour-lantern-7";
    let ok = laptop
        .post(
            "/account/password",
            &[
                ("current_password", PASSWORD),
                ("new_password", new_password),
                ("confirm_password", new_password),
            ],
        )
        .await;
    assert_eq!(ok.status(), 303);
    assert_eq!(
        laptop.get("/account").await.status(),
        200,
        "the session that changed it goes on"
    );
    assert_eq!(
        phone.get("/account").await.status(),
        303,
        "the other session has ended"
    );
    let fresh = Browser::open(&app).await;
    let old = fresh
        .post(
            "/login",
            &[("email", "pat@example.org"), ("password", PASSWORD)],
        )
        .await;
    assert_eq!(old.status(), 401);
    fresh.sign_in("pat@example.org", new_password).await;
}

async fn an_admin_reset_forces_a_new_password(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    app.add_account("root@example.org", "Root Admin", &[Role::Admin], PASSWORD)
        .await;
    let id = app
        .add_account("sam@example.org", "Sam", &[Role::Reviewer], PASSWORD)
        .await;
    let (admin, sam) = (Browser::open(&app).await, Browser::open(&app).await);
    admin.sign_in("root@example.org", PASSWORD).await;
    sam.sign_in("sam@example.org", PASSWORD).await;

    let reset = admin
        .post(
            &format!("/admin/users/{id}/reset-password"),
            &[("confirm", "yes")],
        )
        .await;
    assert_eq!(reset.status(), 200);
    let page = reset.text().await.expect("page");
    let start = page.find("<code>").expect("the password is shown") + 6;
    let temporary = page[start..start + page[start..].find("</code>").expect("end")].to_owned();
    assert_eq!(temporary.len(), 23, "{temporary}");

    assert_eq!(
        sam.get("/account").await.status(),
        303,
        "the reset ends Sam's session"
    );
    let fresh = Browser::open(&app).await;
    let login = fresh
        .post(
            "/login",
            &[("email", "sam@example.org"), ("password", &temporary)],
        )
        .await;
    assert_eq!(login.status(), 303);
    assert_eq!(login.headers()["location"], "/account?must_change=1");
    // Until a new password is chosen, every other page leads back to the account page.
    let elsewhere = fresh.get("/").await;
    assert_eq!(elsewhere.status(), 303);
    assert_eq!(elsewhere.headers()["location"], "/account?must_change=1");
    let chosen = "meadow-copper-signal-88";
    let changed = fresh
        .post(
            "/account/password",
            &[
                ("current_password", &temporary),
                ("new_password", chosen),
                ("confirm_password", chosen),
            ],
        )
        .await;
    assert_eq!(changed.status(), 303);
    assert_eq!(fresh.get("/").await.status(), 200);
}

async fn disabling_an_account_ends_its_sessions(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    app.add_account("root@example.org", "Root Admin", &[Role::Admin], PASSWORD)
        .await;
    let id = app
        .add_account("lee@example.org", "Lee", &[Role::Approver], PASSWORD)
        .await;
    let (admin, lee) = (Browser::open(&app).await, Browser::open(&app).await);
    admin.sign_in("root@example.org", PASSWORD).await;
    lee.sign_in("lee@example.org", PASSWORD).await;
    let r = admin
        .post(&format!("/admin/users/{id}/disable"), &[("confirm", "yes")])
        .await;
    assert_eq!(r.status(), 303);
    assert_eq!(lee.get("/account").await.status(), 303);
    let again = lee
        .post(
            "/login",
            &[("email", "lee@example.org"), ("password", PASSWORD)],
        )
        .await;
    assert_eq!(again.status(), 401);
    let r = admin.post(&format!("/admin/users/{id}/enable"), &[]).await;
    assert_eq!(r.status(), 303);
    lee.sign_in("lee@example.org", PASSWORD).await;
}

async fn idle_sessions_end(backend: Backend) {
    let Some(app) =
        TestApp::spawn_with(backend, &[("EDL_SESSION_IDLE_TIMEOUT", "30m")], None).await
    else {
        return;
    };
    app.add_account("idle@example.org", "Idle", &[Role::Reviewer], PASSWORD)
        .await;
    let browser = Browser::open(&app).await;
    browser.sign_in("idle@example.org", PASSWORD).await;
    assert_eq!(browser.get("/account").await.status(), 200);
    // Activity keeps a session alive...
    app.advance(chrono::Duration::minutes(29));
    assert_eq!(browser.get("/account").await.status(), 200);
    // ...and 30 minutes without any ends it.
    app.advance(chrono::Duration::minutes(31));
    assert_eq!(browser.get("/account").await.status(), 303);
}

async fn the_last_admin_cannot_be_removed(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let id = app
        .add_account("only@example.org", "Only Admin", &[Role::Admin], PASSWORD)
        .await;
    let browser = Browser::open(&app).await;
    browser.sign_in("only@example.org", PASSWORD).await;
    let demote = browser
        .post(
            &format!("/admin/users/{id}/roles"),
            &[("roles", "reviewer")],
        )
        .await;
    assert_eq!(demote.status(), 409);
    assert!(demote
        .text()
        .await
        .expect("page")
        .contains("only active admin"));
    let disable = browser
        .post(&format!("/admin/users/{id}/disable"), &[("confirm", "yes")])
        .await;
    assert_eq!(disable.status(), 409);
    assert_eq!(browser.get("/admin").await.status(), 200, "still an admin");
    // With a second admin, the change goes through.
    app.add_account("second@example.org", "Second", &[Role::Admin], PASSWORD)
        .await;
    let demote = browser
        .post(
            &format!("/admin/users/{id}/roles"),
            &[("roles", "reviewer"), ("roles", "approver")],
        )
        .await;
    assert_eq!(demote.status(), 303);
    assert_eq!(browser.get("/admin").await.status(), 403);
}

async fn an_altered_audit_entry_is_found(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    app.add_account("aud@example.org", "Aud", &[Role::Reviewer], PASSWORD)
        .await;
    let browser = Browser::open(&app).await;
    browser.sign_in("aud@example.org", PASSWORD).await;
    browser.post("/logout", &[]).await;
    browser
        .post(
            "/login",
            &[("email", "aud@example.org"), ("password", "wrong-one-here")],
        )
        .await;
    let verification = app.with_db(audit::verify).await;
    assert!(
        matches!(verification, Verification::Intact { entries: 4, .. }),
        "{verification:?}"
    );

    // Someone with database access rewrites history: entry 2 now says something else.
    app.with_db(|c| {
        diesel::update(audit_log::table.filter(audit_log::seq.eq(2)))
            .set(audit_log::actor.eq("someone-else@example.org"))
            .execute(c)?;
        Ok(())
    })
    .await;
    match app.with_db(audit::verify).await {
        Verification::Broken { seq, reason, .. } => {
            assert_eq!(seq, 2);
            assert!(reason.contains("do not match its hash"), "{reason}");
        }
        intact => panic!("the change was not noticed: {intact:?}"),
    }
    // The command-line check says the same and fails.
    let output = edl(&app.db.url, &app.db.folder(), &["audit", "verify"], "");
    assert!(!output.status.success());
    let text = String::from_utf8_lossy(&output.stderr);
    assert!(text.contains("entry 2"), "{text}");

    // Put it back: the chain is whole again. Then remove an entry: the gap is found.
    app.with_db(|c| {
        diesel::update(audit_log::table.filter(audit_log::seq.eq(2)))
            .set(audit_log::actor.eq("aud@example.org"))
            .execute(c)?;
        Ok(())
    })
    .await;
    let verification = app.with_db(audit::verify).await;
    assert!(
        matches!(verification, Verification::Intact { entries: 4, .. }),
        "{verification:?}"
    );
    app.with_db(|c| {
        diesel::delete(audit_log::table.filter(audit_log::seq.eq(3))).execute(c)?;
        Ok(())
    })
    .await;
    match app.with_db(audit::verify).await {
        Verification::Broken { seq: 4, reason, .. } => {
            assert!(reason.contains("entry 3 is missing"), "{reason}")
        }
        other => panic!("the deletion was not noticed: {other:?}"),
    }
}

/// Many transactions write audit entries at once, and some roll back. The chain has no gap
/// and no fork, each transaction's entries sit next to each other in the order written, what
/// was rolled back is not there, and every hash checks, whatever the text holds. (On
/// PostgreSQL the server links entries at commit; the service's own check reads them.)
async fn the_audit_chain_stays_whole_when_many_write_at_once(backend: Backend) {
    const WRITERS: usize = 24;
    const ODD: &str = "quote \" backslash \\ newline \n tab \t bell \u{7} unit \u{1f} \
                       del \u{7f} line \u{2028} é 漢 🦀 </script>";
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let before = app
        .with_db(|c| Ok(audit_log::table.count().get_result::<i64>(c)?))
        .await;
    let rolled_back = |i: usize| i % 4 == 3;
    let writers = (0..WRITERS).map(|i| {
        let pool = app.pool.clone();
        tokio::spawn(async move {
            edl::db::run(&pool, move |c| {
                edl::db::write_transaction(c, |c| {
                    for action in ["test.first", "test.second"] {
                        audit::record(
                            c,
                            &format!("writer-{i}@example.org"),
                            action,
                            &format!("writer:{i} {ODD}"),
                            serde_json::json!({ "writer": i, "text": ODD }),
                        )?;
                    }
                    if rolled_back(i) {
                        return Err(diesel::result::Error::RollbackTransaction.into());
                    }
                    Ok(())
                })
            })
            .await
        })
    });
    for (i, writer) in futures_util::future::join_all(writers)
        .await
        .into_iter()
        .enumerate()
    {
        let result: Result<(), edl::db::DbError> = writer.expect("the writer finished");
        assert_eq!(result.is_err(), rolled_back(i), "writer {i}: {result:?}");
    }

    let committed = (0..WRITERS).filter(|i| !rolled_back(*i)).count() as i64;
    let verification = app.with_db(audit::verify).await;
    let total = before + 2 * committed;
    assert!(
        matches!(verification, Verification::Intact { entries, .. } if entries == total),
        "{verification:?}"
    );
    let entries: Vec<audit::Entry> = app
        .with_db(|c| {
            Ok(audit_log::table
                .order(audit_log::seq)
                .select(audit::Entry::as_select())
                .load(c)?)
        })
        .await;
    let seqs: Vec<i64> = entries.iter().map(|e| e.seq).collect();
    assert_eq!(
        seqs,
        (1..=total).collect::<Vec<_>>(),
        "no gap, no placeholder"
    );
    for i in 0..WRITERS {
        let actor = format!("writer-{i}@example.org");
        let mine: Vec<&audit::Entry> = entries.iter().filter(|e| e.actor == actor).collect();
        if rolled_back(i) {
            assert!(mine.is_empty(), "writer {i} rolled back: {mine:?}");
            continue;
        }
        assert_eq!(mine.len(), 2, "writer {i}");
        assert_eq!(mine[0].action, "test.first");
        assert_eq!(mine[1].action, "test.second");
        assert_eq!(mine[1].seq, mine[0].seq + 1, "one transaction, one run");
        assert_eq!(mine[1].prev_hash, mine[0].hash);
        let details: serde_json::Value = serde_json::from_str(&mine[0].details).expect("JSON");
        assert_eq!(details["text"], ODD);
        assert_eq!(mine[0].subject, format!("writer:{i} {ODD}"));
    }

    // An entry stored outside the chain (as PostgreSQL writes one before its commit links
    // it) is found, not skipped.
    let last = entries.last().expect("entries").clone();
    app.with_db(move |c| {
        diesel::insert_into(audit_log::table)
            .values((
                audit_log::seq.eq(-7),
                audit_log::occurred_at.eq(last.occurred_at),
                audit_log::actor.eq("someone@example.org"),
                audit_log::action.eq("test.unlinked"),
                audit_log::subject.eq("nothing"),
                audit_log::details.eq("{}"),
                audit_log::prev_hash.eq(""),
                audit_log::hash.eq("unlinked by hand"),
            ))
            .execute(c)?;
        Ok(())
    })
    .await;
    match app.with_db(audit::verify).await {
        Verification::Broken {
            seq: -7, reason, ..
        } => {
            assert!(reason.contains("never linked"), "{reason}")
        }
        other => panic!("the unlinked entry was not noticed: {other:?}"),
    }
}

async fn admins_create_accounts_and_get_a_temporary_password(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    app.add_account("root@example.org", "Root Admin", &[Role::Admin], PASSWORD)
        .await;
    let admin = Browser::open(&app).await;
    admin.sign_in("root@example.org", PASSWORD).await;
    // Mistakes keep what was typed and say what is wrong per field.
    let bad = admin
        .post(
            "/admin/users",
            &[
                ("email", "not-an-email"),
                ("name", "Nia Newcomer"),
                ("roles", "reviewer"),
            ],
        )
        .await;
    assert_eq!(bad.status(), 422);
    let page = bad.text().await.expect("page");
    assert!(page.contains("value=\"not-an-email\"") && page.contains("value=\"Nia Newcomer\""));
    assert!(page.contains("Enter an email address"));
    assert!(page.contains("value=\"reviewer\" checked"));

    let ok = admin
        .post(
            "/admin/users",
            &[
                ("email", "nia@example.org"),
                ("name", "Nia Newcomer"),
                ("roles", "reviewer"),
                ("roles", "approver"),
            ],
        )
        .await;
    assert_eq!(ok.status(), 200);
    let page = ok.text().await.expect("page");
    let start = page.find("<code>").expect("password shown") + 6;
    let temporary = &page[start..start + 23];
    let nia = Browser::open(&app).await;
    let login = nia
        .post(
            "/login",
            &[("email", "nia@example.org"), ("password", temporary)],
        )
        .await;
    assert_eq!(login.headers()["location"], "/account?must_change=1");
    let account = nia.get("/account").await.text().await.expect("page");
    assert!(account.contains("approver") && account.contains("reviewer"));
    let again = admin
        .post(
            "/admin/users",
            &[
                ("email", "NIA@example.org"),
                ("name", "Nia"),
                ("roles", "reviewer"),
            ],
        )
        .await;
    assert_eq!(again.status(), 409);
    assert!(csrf_token_in(&again.text().await.expect("page")).is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cookies_are_secure_when_the_site_is_https() {
    let Some(app) = TestApp::spawn_with(
        Backend::Sqlite,
        &[("EDL_BASE_URL", "https://edl.example.org")],
        None,
    )
    .await
    else {
        return;
    };
    let response = app.get("/login").await;
    let cookie = response.headers()["set-cookie"]
        .to_str()
        .expect("ascii")
        .to_owned();
    assert!(
        cookie.starts_with("edl_csrf=")
            && cookie.contains("Secure")
            && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
}

/// The audit page checks the chain from the last entry it found intact; what was written since
/// is still checked every time, and `edl audit verify` walks everything.
async fn the_audit_page_checks_only_what_was_written_since_its_last_check(backend: Backend) {
    use edl::db::schema::audit_checkpoint;
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    app.add_account("aud@example.org", "Aud", &[Role::Admin], PASSWORD)
        .await;
    let browser = Browser::open(&app).await;
    browser.sign_in("aud@example.org", PASSWORD).await;
    let checkpoint = || async {
        app.with_db(|c| {
            Ok(audit_checkpoint::table
                .select(audit_checkpoint::seq)
                .first::<i64>(c)?)
        })
        .await
    };
    let entries = || async {
        app.with_db(|c| Ok(audit_log::table.count().get_result::<i64>(c)?))
            .await
    };
    let page = browser
        .get("/admin/audit")
        .await
        .text()
        .await
        .expect("page");
    assert!(page.contains("The hash chain is intact"), "{page}");
    let checked = checkpoint().await;
    assert_eq!(
        checked,
        entries().await,
        "the page records how far it checked"
    );
    // Nothing written since: a second view checks nothing new and writes nothing.
    let recorded = || async {
        app.with_db(|c| {
            Ok(audit_checkpoint::table
                .select(audit_checkpoint::verified_at)
                .first::<chrono::NaiveDateTime>(c)?)
        })
        .await
    };
    let first_recorded = recorded().await;
    browser.get("/admin/audit").await;
    assert_eq!(
        recorded().await,
        first_recorded,
        "an unmoved checkpoint is not written"
    );

    // New entries, then one of them altered: the next view checks them and says so.
    browser.post("/logout", &[]).await;
    browser.sign_in("aud@example.org", PASSWORD).await;
    assert!(entries().await > checked);
    let altered = checked + 1;
    app.with_db(move |c| {
        diesel::update(audit_log::table.filter(audit_log::seq.eq(altered)))
            .set(audit_log::actor.eq("someone-else@example.org"))
            .execute(c)?;
        Ok(())
    })
    .await;
    let page = browser
        .get("/admin/audit")
        .await
        .text()
        .await
        .expect("page");
    assert!(
        page.contains(&format!("The hash chain is broken at entry {altered}")),
        "{page}"
    );
    assert_eq!(checkpoint().await, checked, "a broken chain moves nothing");

    // The checked entry itself altered: the page no longer trusts its checkpoint.
    app.with_db(move |c| {
        diesel::update(audit_log::table.filter(audit_log::seq.eq(altered)))
            .set(audit_log::actor.eq("aud@example.org"))
            .execute(c)?;
        diesel::update(audit_log::table.filter(audit_log::seq.eq(checked)))
            .set(audit_log::details.eq("{}"))
            .execute(c)?;
        Ok(())
    })
    .await;
    let page = browser
        .get("/admin/audit")
        .await
        .text()
        .await
        .expect("page");
    assert!(
        page.contains(&format!("The hash chain is broken at entry {checked}")),
        "{page}"
    );
    let output = edl(&app.db.url, &app.db.folder(), &["audit", "verify"], "");
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains(&format!("entry {checked}")));
}
