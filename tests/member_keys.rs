//! Members keep their OpenPGP key current: a new key handed in through the signed key link
//! takes effect only once the code encrypted to it is typed back; keys about to expire are
//! reminded of once; admins see every member's key and can mail a fresh link. And the
//! attacker's side: forged, altered, expired and borrowed links, keys that are not the
//! member's, pasted private keys, guessed and reused codes, forms without their token.

use diesel::prelude::*;
use edl::accounts::Role;
use edl::db::schema::{audit_log, member_key_changes, members, outbox};
use edl::mail::grouped_fingerprint;
use pgp::composed::{ArmorOptions, SignedSecretKey};

use crate::helpers::gnupg::{gnupg_home, gnupg_key};
use crate::helpers::{keys, Backend, Browser, TestApp};
use crate::on_both_backends;

const PASSWORD: &str = "tangerine-kettle-orbit-42";
/// What a link that does nothing says, whatever the reason it does nothing.
const LINK_INVALID: &str = "This link is not valid or has expired.";

on_both_backends!(
    a_member_replaces_its_key_after_typing_back_the_code,
    wrong_codes_are_counted_and_a_change_lapses,
    forged_altered_expired_and_borrowed_links_change_nothing,
    removed_members_links_do_nothing_and_suspended_members_may_update,
    keys_that_cannot_be_used_are_refused_beside_the_field,
    forms_without_their_security_token_change_nothing,
    members_are_reminded_once_before_their_key_expires,
    admins_see_every_key_and_mail_a_fresh_link,
);

async fn spawn(backend: Backend) -> Option<TestApp> {
    TestApp::spawn_with_smtp(
        backend,
        &[
            ("EDL_PUBLIC_POST_RATE_LIMIT", "1000/1m"),
            // The scheduler runs once at start; the tests run the jobs themselves after.
            ("EDL_SCHEDULER_INTERVAL", "1h"),
        ],
    )
    .await
}

/// The path of a key link for `member_id`, as the list mails it (valid 14 days).
fn key_link(app: &TestApp, member_id: i64) -> String {
    let expires = app.clock.now() + chrono::Duration::days(14);
    format!(
        "/members/key/{}",
        app.state.ctx.links.key_link(member_id, expires.timestamp())
    )
}

fn fingerprint_of(armored: &str) -> String {
    edl::openpgp::member_key::facts(armored)
        .expect("a readable key")
        .0
}

/// The member's stored key and its fingerprint.
async fn stored_key(app: &TestApp, member_id: i64) -> (Option<String>, Option<String>) {
    app.with_db(move |c| {
        Ok(members::table
            .find(member_id)
            .select((members::pgp_key, members::pgp_fingerprint))
            .first(c)?)
    })
    .await
}

async fn pending_changes(app: &TestApp, member_id: i64) -> Vec<(i64, i32, bool)> {
    app.with_db(move |c| {
        let rows: Vec<(i64, i32, Option<chrono::NaiveDateTime>)> = member_key_changes::table
            .filter(member_key_changes::member_id.eq(member_id))
            .order(member_key_changes::id)
            .select((
                member_key_changes::id,
                member_key_changes::attempts,
                member_key_changes::confirmed_at,
            ))
            .load(c)?;
        Ok(rows
            .into_iter()
            .map(|(id, attempts, confirmed)| (id, attempts, confirmed.is_some()))
            .collect())
    })
    .await
}

async fn audit_actions(app: &TestApp, member_id: i64) -> Vec<(String, String, String)> {
    app.with_db(move |c| {
        Ok(audit_log::table
            .filter(audit_log::subject.eq(format!("member:{member_id}")))
            .order(audit_log::seq)
            .select((audit_log::actor, audit_log::action, audit_log::details))
            .load(c)?)
    })
    .await
}

/// The encrypted code on the page, as the member copies it.
fn challenge_in(html: &str) -> String {
    let start = html
        .find("-----BEGIN PGP MESSAGE-----")
        .expect("an encrypted code on the page");
    let end_marker = "-----END PGP MESSAGE-----";
    let end = html[start..].find(end_marker).expect("the end of the code") + start;
    html[start..end + end_marker.len()].to_owned()
}

fn change_id_in(html: &str) -> String {
    let marker = "name=\"change\" value=\"";
    let start = html.find(marker).expect("the change id on the page") + marker.len();
    let end = html[start..].find('"').expect("the end of the id") + start;
    html[start..end].to_owned()
}

/// What the member reads after `gpg --decrypt`: the code, signed by the list.
fn decrypt_code(app: &TestApp, challenge: &str, secret: &SignedSecretKey) -> String {
    let plain = keys::decrypt(
        challenge,
        secret,
        Some(app.state.ctx.mailer.signer.public_key()),
    )
    .expect("the code decrypts with the new key and carries the list's signature");
    String::from_utf8(plain).expect("text").trim().to_owned()
}

/// Hands in `armored` through `link`; returns the page showing the encrypted code, and the
/// change's id.
async fn hand_in(browser: &Browser, link: &str, armored: &str) -> (String, String) {
    let response = browser.post(link, &[("pgp_key", armored)]).await;
    assert_eq!(response.status(), 200, "a usable key is taken");
    let page = response.text().await.expect("page");
    assert!(page.contains("not in use yet"), "{page}");
    let change = change_id_in(&page);
    (page, change)
}

async fn type_code(
    browser: &Browser,
    link: &str,
    change: &str,
    code: &str,
) -> (reqwest::StatusCode, String) {
    let response = browser
        .post(
            &format!("{link}/confirm"),
            &[("change", change), ("code", code)],
        )
        .await;
    let status = response.status();
    (status, response.text().await.expect("page"))
}

async fn a_member_replaces_its_key_after_typing_back_the_code(backend: Backend) {
    let Some(app) = spawn(backend).await else {
        return;
    };
    let smtp = app.smtp();
    let alias = "security@keyed.example";
    let id = app
        .add_member("Keyed Co", "keyed.example", "active", 1)
        .await;
    let (old_key, old_fingerprint) = stored_key(&app, id).await;
    let (old_key, old_fingerprint) = (old_key.expect("a key"), old_fingerprint.expect("a fpr"));
    let old_secret = keys::secret(alias).expect("the member's first key");
    let (new_secret, new_public) = keys::generate(&format!("Security team <{alias}>"));
    let new_fingerprint = fingerprint_of(&new_public);

    let browser = Browser::open(&app).await;
    let link = key_link(&app, id);
    let page = browser.get(&link).await;
    assert_eq!(page.status(), 200);
    let page = page.text().await.expect("page");
    assert!(
        page.contains(&grouped_fingerprint(&old_fingerprint)),
        "{page}"
    );

    let (page, change) = hand_in(&browser, &link, &new_public).await;
    assert!(page.contains(&grouped_fingerprint(&new_fingerprint)));
    assert!(page.contains("gpg --decrypt code.asc"));
    // Until the code comes back, the old key is the one mail is encrypted to.
    assert_eq!(
        stored_key(&app, id).await,
        (Some(old_key.clone()), Some(old_fingerprint.clone()))
    );
    let challenge = challenge_in(&page);
    assert!(
        keys::decrypt(&challenge, &old_secret, None).is_err(),
        "the code is encrypted to the new key only"
    );
    let code = decrypt_code(&app, &challenge, &new_secret);
    assert_eq!(code.len(), 8, "{code}");
    // Only the code's hash is stored.
    let hashes: Vec<String> = app
        .with_db(|c| {
            Ok(member_key_changes::table
                .select(member_key_changes::code_sha256)
                .load(c)?)
        })
        .await;
    assert!(hashes.iter().all(|h| !h.contains(&code) && h.len() == 64));

    // Typed as people type: lower case, with a space.
    let typed = format!("{} {}", &code[..4], &code[4..]).to_lowercase();
    let (status, done) = type_code(&browser, &link, &change, &typed).await;
    assert_eq!(status, 200, "{done}");
    assert!(done.contains("The new key is in use"));
    assert!(done.contains(&grouped_fingerprint(&new_fingerprint)));
    let (key, fingerprint) = stored_key(&app, id).await;
    assert_eq!(fingerprint.as_deref(), Some(new_fingerprint.as_str()));
    assert_eq!(fingerprint_of(&key.expect("the new key")), new_fingerprint);

    let notice = smtp.wait_for(alias, "was changed").await;
    let text = notice.text();
    assert!(
        text.contains(&grouped_fingerprint(&new_fingerprint)),
        "{text}"
    );
    assert!(
        text.contains(&grouped_fingerprint(&old_fingerprint)),
        "{text}"
    );
    assert!(text.contains("If this was not you, tell the list at once"));
    assert!(text.contains(&app.state.ctx.report_to()), "{text}");

    // The code works once.
    let (status, again) = type_code(&browser, &link, &change, &code).await;
    assert_eq!(status, 409);
    assert!(again.contains("already used"), "{again}");
    assert_eq!(
        stored_key(&app, id).await.1.as_deref(),
        Some(new_fingerprint.as_str())
    );

    let audit = audit_actions(&app, id).await;
    let actions: Vec<&str> = audit.iter().map(|(_, a, _)| a.as_str()).collect();
    assert_eq!(actions, vec!["member.key-submitted", "member.key-changed"]);
    let (actor, _, details) = &audit[1];
    assert_eq!(actor, alias);
    assert!(details.contains(&old_fingerprint) && details.contains(&new_fingerprint));
}

async fn wrong_codes_are_counted_and_a_change_lapses(backend: Backend) {
    let Some(app) = spawn(backend).await else {
        return;
    };
    let alias = "security@guess.example";
    let id = app
        .add_member("Guess Co", "guess.example", "active", 1)
        .await;
    let old_fingerprint = stored_key(&app, id).await.1;
    let (secret, public) = keys::generate(&format!("Security team <{alias}>"));
    let browser = Browser::open(&app).await;
    let link = key_link(&app, id);

    // Five wrong codes void the change; the right one after them does nothing.
    let (page, change) = hand_in(&browser, &link, &public).await;
    let code = decrypt_code(&app, &challenge_in(&page), &secret);
    let wrong = if code == "AAAAAAAA" {
        "BBBBBBBB"
    } else {
        "AAAAAAAA"
    };
    for left in (1..=4).rev() {
        let (status, page) = type_code(&browser, &link, &change, wrong).await;
        assert_eq!(status, 422);
        let tries = if left == 1 { "try" } else { "tries" };
        assert!(page.contains(&format!("{left} {tries} left")), "{page}");
        assert!(
            page.contains("name=\"code\""),
            "the code can be typed again"
        );
    }
    assert_eq!(pending_changes(&app, id).await[0].1, 4);
    let (status, page) = type_code(&browser, &link, &change, wrong).await;
    assert_eq!(status, 409);
    assert!(page.contains("Too many wrong codes"), "{page}");
    let (status, page) = type_code(&browser, &link, &change, &code).await;
    assert_eq!(status, 409, "the right code after too many wrong ones");
    assert!(page.contains("Too many wrong codes"), "{page}");
    assert_eq!(stored_key(&app, id).await.1, old_fingerprint);
    assert_eq!(pending_changes(&app, id).await[0].1, 5);

    // A code is good for 30 minutes.
    let (page, change) = hand_in(&browser, &link, &public).await;
    let code = decrypt_code(&app, &challenge_in(&page), &secret);
    app.advance(chrono::Duration::minutes(31));
    let (status, page) = type_code(&browser, &link, &change, &code).await;
    assert_eq!(status, 409);
    assert!(page.contains("expired"), "{page}");
    assert_eq!(stored_key(&app, id).await.1, old_fingerprint);

    // A newer request replaces the one before it.
    let (first_page, first) = hand_in(&browser, &link, &public).await;
    let first_code = decrypt_code(&app, &challenge_in(&first_page), &secret);
    let (second_page, second) = hand_in(&browser, &link, &public).await;
    let second_code = decrypt_code(&app, &challenge_in(&second_page), &secret);
    let (status, _) = type_code(&browser, &link, &first, &first_code).await;
    assert_eq!(status, 409, "the older code no longer works");
    assert_eq!(stored_key(&app, id).await.1, old_fingerprint);
    let (status, _) = type_code(&browser, &link, &second, &second_code).await;
    assert_eq!(status, 200);
    assert_eq!(
        stored_key(&app, id).await.1.as_deref(),
        Some(fingerprint_of(&public).as_str())
    );
    let actions: Vec<String> = audit_actions(&app, id)
        .await
        .into_iter()
        .map(|(_, a, _)| a)
        .collect();
    assert!(actions.contains(&"member.key-change-void".to_owned()));
    app.smtp().wait_for(alias, "was changed").await;
}

async fn forged_altered_expired_and_borrowed_links_change_nothing(backend: Backend) {
    let Some(app) = spawn(backend).await else {
        return;
    };
    let alice = app
        .add_member("Alice Co", "alice.example", "active", 1)
        .await;
    let bob = app.add_member("Bob Co", "bob.example", "active", 1).await;
    let alice_before = stored_key(&app, alice).await;
    let bob_before = stored_key(&app, bob).await;
    let (alice_secret, alice_new) = keys::generate("Security team <security@alice.example>");
    let browser = Browser::open(&app).await;
    let alice_link = key_link(&app, alice);
    let bob_link = key_link(&app, bob);

    let expires = (app.clock.now() + chrono::Duration::days(14)).timestamp();
    let forged = format!("/members/key/key.{alice}.{expires}.{}", "0".repeat(64));
    let altered = alice_link.replacen(&format!("key.{alice}."), &format!("key.{bob}."), 1);
    assert_ne!(altered, alice_link);
    let truncated = alice_link[..alice_link.len() - 1].to_owned();
    let policy_kind = format!(
        "/members/key/{}",
        app.state.ctx.links.policy_link(alice, 1, expires)
    );
    // Signed by the list, for a member that does not exist.
    let nobody = key_link(&app, 999_999);

    let forged_page = browser.get(&forged).await;
    assert_eq!(forged_page.status(), 410);
    let forged_page = forged_page.text().await.expect("page");
    assert!(forged_page.contains(LINK_INVALID));
    for path in [&altered, &truncated, &policy_kind, &nobody] {
        let page = browser.get(path).await;
        assert_eq!(page.status(), 410, "{path}");
        assert_eq!(
            page.text().await.expect("page"),
            forged_page,
            "{path} says no more than a forged link"
        );
        let post = browser.post(path, &[("pgp_key", &alice_new)]).await;
        assert_eq!(post.status(), 410, "{path}");
        let confirm = browser
            .post(
                &format!("{path}/confirm"),
                &[("change", "1"), ("code", "AAAAAAAA")],
            )
            .await;
        assert_eq!(confirm.status(), 410, "{path}");
    }
    assert!(pending_changes(&app, alice).await.is_empty());
    assert!(pending_changes(&app, bob).await.is_empty());

    // Bob's link cannot confirm Alice's change, even with the right code.
    let (page, change) = hand_in(&browser, &alice_link, &alice_new).await;
    let code = decrypt_code(&app, &challenge_in(&page), &alice_secret);
    let (status, _) = type_code(&browser, &bob_link, &change, &code).await;
    assert_eq!(status, 409);
    let (status, _) = type_code(&browser, &bob_link, &change, "WRONGCODE").await;
    assert_eq!(status, 409, "Bob's link knows no change of Alice's");
    assert_eq!(stored_key(&app, alice).await, alice_before);
    assert_eq!(stored_key(&app, bob).await, bob_before);
    assert_eq!(
        pending_changes(&app, alice).await[0].1,
        0,
        "nor spend its tries"
    );
    // Nor can Bob's link put Alice's key on Bob: it names another address.
    let refused = browser.post(&bob_link, &[("pgp_key", &alice_new)]).await;
    assert_eq!(refused.status(), 422);
    assert_eq!(stored_key(&app, bob).await, bob_before);

    // A link past its 14 days says what a forged one says.
    app.advance(chrono::Duration::days(15));
    let expired = browser.get(&alice_link).await;
    assert_eq!(expired.status(), 410);
    assert_eq!(expired.text().await.expect("page"), forged_page);
    let (status, _) = type_code(&browser, &alice_link, &change, &code).await;
    assert_eq!(status, 410);
    assert_eq!(stored_key(&app, alice).await, alice_before);
}

async fn removed_members_links_do_nothing_and_suspended_members_may_update(backend: Backend) {
    let Some(app) = spawn(backend).await else {
        return;
    };
    let gone = app
        .add_member("Gone Co", "gone.example", "removed", 1)
        .await;
    let paused = app
        .add_member("Paused Co", "paused.example", "suspended", 1)
        .await;
    let browser = Browser::open(&app).await;

    let gone_before = stored_key(&app, gone).await;
    let gone_link = key_link(&app, gone);
    let page = browser.get(&gone_link).await;
    assert_eq!(page.status(), 410);
    assert!(page
        .text()
        .await
        .expect("page")
        .contains("no longer a member of the list"));
    let (_, gone_new) = keys::generate("Security team <security@gone.example>");
    let post = browser.post(&gone_link, &[("pgp_key", &gone_new)]).await;
    assert_eq!(post.status(), 410);
    assert!(pending_changes(&app, gone).await.is_empty());
    assert_eq!(stored_key(&app, gone).await, gone_before);

    let (secret, public) = keys::generate("Security team <security@paused.example>");
    let link = key_link(&app, paused);
    let (page, change) = hand_in(&browser, &link, &public).await;
    let code = decrypt_code(&app, &challenge_in(&page), &secret);
    let (status, _) = type_code(&browser, &link, &change, &code).await;
    assert_eq!(status, 200);
    assert_eq!(
        stored_key(&app, paused).await.1.as_deref(),
        Some(fingerprint_of(&public).as_str())
    );
    app.smtp()
        .wait_for("security@paused.example", "was changed")
        .await;
}

async fn keys_that_cannot_be_used_are_refused_beside_the_field(backend: Backend) {
    let Some(app) = spawn(backend).await else {
        return;
    };
    let id = app
        .add_member("Careful Co", "careful.example", "active", 1)
        .await;
    let before = stored_key(&app, id).await;
    let browser = Browser::open(&app).await;
    let link = key_link(&app, id);

    // Someone else's key: the page says which address is missing and keeps what was pasted.
    let (_, foreign) = keys::generate("Someone else <security@elsewhere.example>");
    let response = browser.post(&link, &[("pgp_key", &foreign)]).await;
    assert_eq!(response.status(), 422);
    let page = response.text().await.expect("page");
    assert!(
        page.contains("No user ID of the key names security@careful.example"),
        "{page}"
    );
    assert!(page.contains("id=\"f-pgp_key-error\""), "beside the field");
    assert!(page.contains(foreign.trim()), "the pasted key is kept");

    // A private key: refused, and never echoed back.
    let (secret, _) = keys::generate("Security team <security@careful.example>");
    let private = secret
        .to_armored_string(ArmorOptions::default())
        .expect("armor");
    let response = browser.post(&link, &[("pgp_key", &private)]).await;
    assert_eq!(response.status(), 422);
    let page = response.text().await.expect("page");
    assert!(page.contains("private (secret) key"), "{page}");
    let body_line = private
        .lines()
        .filter(|l| l.len() > 40 && !l.starts_with("-----"))
        .nth(1)
        .expect("a line of key material");
    assert!(
        !page.contains(body_line),
        "the private key is not sent back"
    );
    assert!(!page.contains("PRIVATE KEY BLOCK-----\n"));

    // Not a key, nothing at all, and an expired key.
    for (pasted, says) in [
        ("hello", "could not be read"),
        ("", "could not be read"),
        (
            include_str!("../data/testdata/expired.asc"),
            "No user ID of the key names",
        ),
    ] {
        let response = browser.post(&link, &[("pgp_key", pasted)]).await;
        assert_eq!(response.status(), 422, "{pasted}");
        let page = response.text().await.expect("page");
        assert!(page.contains(says), "{says}: {page}");
    }
    let expired_member = app
        .add_member("Expired Co", "expired.example", "active", 1)
        .await;
    let response = browser
        .post(
            &key_link(&app, expired_member),
            &[("pgp_key", include_str!("../data/testdata/expired.asc"))],
        )
        .await;
    assert_eq!(response.status(), 422);
    assert!(response
        .text()
        .await
        .expect("page")
        .contains("expired on 2020-01-02"));

    assert!(pending_changes(&app, id).await.is_empty());
    assert!(pending_changes(&app, expired_member).await.is_empty());
    assert_eq!(stored_key(&app, id).await, before);
}

async fn forms_without_their_security_token_change_nothing(backend: Backend) {
    let Some(app) = spawn(backend).await else {
        return;
    };
    let alias = "security@token.example";
    let id = app
        .add_member("Token Co", "token.example", "active", 1)
        .await;
    let before = stored_key(&app, id).await;
    let (secret, public) = keys::generate(&format!("Security team <{alias}>"));
    let browser = Browser::open(&app).await;
    let link = key_link(&app, id);

    let response = browser.post_raw(&link, &[("pgp_key", &public)]).await;
    assert_eq!(response.status(), 403);
    let page = response.text().await.expect("page");
    assert!(page.contains("security token"), "{page}");
    assert!(page.contains(public.trim()), "the pasted key is kept");
    assert!(pending_changes(&app, id).await.is_empty());

    let (page, change) = hand_in(&browser, &link, &public).await;
    let code = decrypt_code(&app, &challenge_in(&page), &secret);
    let response = browser
        .post_raw(
            &format!("{link}/confirm"),
            &[("change", &change), ("code", &code)],
        )
        .await;
    assert_eq!(response.status(), 403);
    assert_eq!(stored_key(&app, id).await, before);
    assert_eq!(pending_changes(&app, id).await[0].1, 0, "no try spent");
    // Another browser's token is no better.
    let other = Browser::open(&app).await;
    let response = browser
        .post_raw(
            &format!("{link}/confirm"),
            &[
                ("csrf_token", &other.csrf),
                ("change", &change),
                ("code", &code),
            ],
        )
        .await;
    assert_eq!(response.status(), 403);
    assert_eq!(stored_key(&app, id).await, before);

    let (status, _) = type_code(&browser, &link, &change, &code).await;
    assert_eq!(status, 200);
    app.smtp().wait_for(alias, "was changed").await;
}

/// A key for `alias` made by GnuPG that expires in `days` days (and its encryption subkey with
/// it), as a member's real key would; returns the armored public key.
fn key_expiring_in(alias: &str, days: u32) -> String {
    let home = gnupg_home();
    gnupg_key(home.path(), alias, &format!("{days}d"))
}

async fn members_are_reminded_once_before_their_key_expires(backend: Backend) {
    let Some(app) = spawn(backend).await else {
        return;
    };
    let smtp = app.smtp();
    let alias = "security@expiring.example";
    let soon = app
        .add_member("Expiring Co", "expiring.example", "active", 1)
        .await;
    let expiring = key_expiring_in(alias, 20);
    app.set_member_key(soon, Some(&expiring)).await;
    let paused = app
        .add_member("Paused Co", "paused.example", "suspended", 1)
        .await;
    app.set_member_key(
        paused,
        Some(&key_expiring_in("security@paused.example", 20)),
    )
    .await;
    app.add_member("Lasting Co", "lasting.example", "active", 1)
        .await;
    let later = app
        .add_member("Later Co", "later.example", "active", 1)
        .await;
    app.set_member_key(later, Some(&key_expiring_in("security@later.example", 60)))
        .await;
    let expires_at: Option<chrono::NaiveDateTime> = app
        .with_db(move |c| {
            Ok(members::table
                .find(soon)
                .select(members::pgp_expires_at)
                .first(c)?)
        })
        .await;
    let expires_at = expires_at.expect("the key's expiry is recorded");
    let in_days = (expires_at - app.clock.now_naive()).num_days();
    assert!((19..=20).contains(&in_days), "{in_days}");

    let ctx = app.state.ctx.clone();
    let run = move || {
        let ctx = ctx.clone();
        move |c: &mut edl::db::DbConnection| {
            edl::membership::run_jobs(c, &ctx, ctx.clock.now_naive())
                .map_err(|e| edl::db::DbError::Task(e.to_string()))
        }
    };
    // The scheduler's own run at start may have come first; either way one reminder is queued.
    let first = app.with_db(run()).await;
    assert!(first.key_reminders <= 1);
    let second = app.with_db(run()).await;
    assert_eq!(second.key_reminders, 0, "once per key");
    app.advance(chrono::Duration::days(3));
    assert_eq!(app.with_db(run()).await.key_reminders, 0, "and not later");
    app.state.mailer.wake_workers();

    let reminders: Vec<String> = app
        .outbox_rows()
        .await
        .into_iter()
        .filter(|r| r.template == "key_expiring")
        .map(|r| r.recipient)
        .collect();
    assert_eq!(reminders, vec![alias.to_owned()]);
    let reminded_for: Option<String> = app
        .with_db(move |c| {
            Ok(members::table
                .find(soon)
                .select(members::key_reminder_for)
                .first(c)?)
        })
        .await;
    assert_eq!(reminded_for, Some(fingerprint_of(&expiring)));

    let mail = smtp.wait_for(alias, "expires on").await;
    let text = mail.text();
    assert!(
        text.contains(&expires_at.format("%Y-%m-%d").to_string()),
        "{text}"
    );
    assert!(text.contains(&grouped_fingerprint(&fingerprint_of(&expiring))));
    let link = mail.link("/members/key/").expect("a key link");
    let page = Browser::open(&app).await.get(&link).await;
    assert_eq!(page.status(), 200, "the link works");
    assert!(page.text().await.expect("page").contains("Expiring Co"));
    for quiet in [
        "security@paused.example",
        "security@lasting.example",
        "security@later.example",
    ] {
        assert!(smtp.to(quiet).is_empty(), "{quiet} is not reminded");
    }
}

async fn admins_see_every_key_and_mail_a_fresh_link(backend: Backend) {
    let Some(app) = spawn(backend).await else {
        return;
    };
    let smtp = app.smtp();
    app.add_account("root@wg.example", "Root", &[Role::Admin], PASSWORD)
        .await;
    let admin = Browser::open(&app).await;
    admin.sign_in("root@wg.example", PASSWORD).await;

    let keyed = app
        .add_member("Keyed Co", "keyed.example", "active", 1)
        .await;
    let keyless = app
        .add_member("Keyless Co", "keyless.example", "active", 1)
        .await;
    app.set_member_key(keyless, None).await;
    let soon = app.add_member("Soon Co", "soon.example", "active", 1).await;
    app.set_member_key(soon, Some(&key_expiring_in("security@soon.example", 10)))
        .await;
    let gone = app
        .add_member("Gone Co", "gone.example", "removed", 1)
        .await;
    let keyed_fingerprint = stored_key(&app, keyed).await.1.expect("a key");

    // Two messages to the member: one that left encrypted, and a later one that did not.
    let ids = app
        .enqueue_test_mail(&["security@keyed.example", "security@keyed.example"])
        .await;
    app.outbox_idle().await;
    let encrypted_at = chrono::NaiveDate::from_ymd_opt(2026, 11, 2)
        .and_then(|d| d.and_hms_opt(10, 15, 0))
        .expect("a time");
    let plain_at = encrypted_at + chrono::Duration::days(3);
    app.with_db(move |c| {
        for (id, encrypted, at) in [(ids[0], true, encrypted_at), (ids[1], false, plain_at)] {
            diesel::update(outbox::table.find(id))
                .set((
                    outbox::member_id.eq(Some(keyed)),
                    outbox::encrypted.eq(Some(encrypted)),
                    outbox::sent_at.eq(Some(at)),
                ))
                .execute(c)?;
        }
        Ok(())
    })
    .await;

    let page = admin
        .get("/admin/members")
        .await
        .text()
        .await
        .expect("page");
    let section = |org: &str| -> String {
        let start = page.find(&format!("<h2>{org}")).expect(org);
        let end = page[start..].find("</section>").expect("section end") + start;
        page[start..end].to_owned()
    };
    let keyed_section = section("Keyed Co");
    assert!(
        keyed_section.contains(&grouped_fingerprint(&keyed_fingerprint)),
        "{keyed_section}"
    );
    assert!(keyed_section.contains("expires never"));
    assert!(
        keyed_section.contains(
            "last encrypted delivery <time datetime=\"2026-11-02T10:15:00Z\">2026-11-02 10:15 UTC</time>"
        ),
        "{keyed_section}"
    );
    let keyless_section = section("Keyless Co");
    assert!(keyless_section.contains("no key"), "{keyless_section}");
    assert!(keyless_section.contains("last encrypted delivery none"));
    let soon_section = section("Soon Co");
    assert!(soon_section.contains("within 30 days"), "{soon_section}");
    assert!(!keyed_section.contains("within 30 days"));

    // A fresh link, mailed on request.
    let path = format!("/admin/members/{keyed}/key-link");
    let refused = admin.post_raw(&path, &[]).await;
    assert_eq!(refused.status(), 403, "no security token");
    let sent = admin.post(&path, &[]).await;
    assert_eq!(sent.status(), 303);
    assert_eq!(
        sent.headers().get("location").and_then(|l| l.to_str().ok()),
        Some("/admin/members?notice=key-link")
    );
    let mail = smtp
        .wait_for("security@keyed.example", "give the list your OpenPGP key")
        .await;
    assert!(mail
        .text()
        .contains(&grouped_fingerprint(&keyed_fingerprint)));
    let link = mail.link("/members/key/").expect("a key link");
    assert_eq!(Browser::open(&app).await.get(&link).await.status(), 200);
    let links_mailed = app
        .outbox_rows()
        .await
        .into_iter()
        .filter(|r| r.template == "key_link")
        .count();
    assert_eq!(links_mailed, 1, "the refused request mailed nothing");
    let audit = audit_actions(&app, keyed).await;
    assert!(audit
        .iter()
        .any(|(actor, action, _)| actor == "root@wg.example" && action == "member.key-link-sent"));

    let removed = admin
        .post(&format!("/admin/members/{gone}/key-link"), &[])
        .await;
    assert_eq!(removed.status(), 409);
    assert_eq!(
        admin
            .post("/admin/members/999999/key-link", &[])
            .await
            .status(),
        404
    );
}
