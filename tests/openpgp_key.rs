//! The list's own OpenPGP key as members and operators meet it: `/openpgp.asc` and the Web Key
//! Directory read by GnuPG, the same fingerprint in mail footers and on the embargo policy,
//! `edl openpgp show|export|rotate`, and the settings that must be right for the key to load.

use std::path::Path;
use std::process::{Command, Output, Stdio};

use diesel::prelude::*;
use edl::config::{Secret, Settings};
use edl::db::schema::audit_log;
use edl::mail::grouped_fingerprint;
use edl::openpgp::ListKey;
use edl::startup::{Application, Options};

use crate::helpers::gnupg::{gnupg_home, gpg};
use crate::helpers::{run_edl, signed_content, Backend, TestApp, TestDb};
use crate::on_both_backends;

on_both_backends!(
    the_published_key_is_the_one_that_signs_mail,
    the_web_key_directory_serves_the_key_for_the_from_address_only,
    show_and_export_print_the_key_the_service_uses,
    rotate_replaces_the_key_keeps_the_old_one_and_records_it,
    a_locked_key_needs_the_right_passphrase,
);

/// The primary fingerprints GnuPG reads in `key` (armored or binary), without importing it.
fn gpg_fingerprints(key: &[u8]) -> Vec<String> {
    let home = gnupg_home();
    let shown = gpg(
        home.path(),
        &["--with-colons", "--import-options", "show-only", "--import"],
        key,
    );
    assert!(shown.status.success(), "gpg cannot read the key: {shown:?}");
    let text = String::from_utf8_lossy(&shown.stdout).into_owned();
    // The `fpr` line right after each `pub` line is the primary key's.
    let lines: Vec<&str> = text.lines().collect();
    lines
        .windows(2)
        .filter(|w| w[0].starts_with("pub:"))
        .filter_map(|w| w[1].strip_prefix("fpr:"))
        .map(|r| r.trim_matches(':').to_owned())
        .collect()
}

/// The one fingerprint in `key`.
fn gpg_fingerprint(key: &[u8]) -> String {
    let all = gpg_fingerprints(key);
    assert_eq!(all.len(), 1, "one key expected: {all:?}");
    all[0].clone()
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// The fingerprint a mail footer names: "Signed with the list's OpenPGP key ABCD 1234 …".
fn footer_fingerprint(text: &str) -> Option<String> {
    let marker = "Signed with the list's OpenPGP key ";
    let start = text.find(marker)? + marker.len();
    let grouped: String = text[start..]
        .chars()
        .take_while(|c| c.is_ascii_hexdigit() || *c == ' ')
        .collect();
    Some(grouped.split_whitespace().collect())
}

async fn the_published_key_is_the_one_that_signs_mail(backend: Backend) {
    let Some(app) = TestApp::spawn_with_smtp(backend, &[]).await else {
        return;
    };
    let response = app.get("/openpgp.asc").await;
    assert_eq!(response.status(), 200);
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    assert_eq!(header("content-type"), "application/pgp-keys");
    let cache = header("cache-control");
    assert!(
        cache.contains("public") && cache.contains("max-age="),
        "{cache}"
    );
    assert!(
        header("set-cookie").is_empty(),
        "a response a shared cache may keep sets no cookie"
    );
    let armored = response.bytes().await.expect("the key");
    assert!(armored.starts_with(b"-----BEGIN PGP PUBLIC KEY BLOCK-----"));
    assert!(
        !String::from_utf8_lossy(&armored).contains("PRIVATE"),
        "only the public key is published"
    );
    let published = gpg_fingerprint(&armored);
    assert_eq!(published, app.state.ctx.mailer.signer.fingerprint);

    // A mail names the same key in its footer, and GnuPG verifies its signature with it.
    app.enqueue_test_mail(&["member@example.net"]).await;
    let mail = app
        .smtp()
        .wait_for("member@example.net", "Test message")
        .await;
    assert_eq!(
        footer_fingerprint(&mail.text()).as_deref(),
        Some(published.as_str()),
        "the text footer names the published key"
    );
    assert!(
        mail.decoded().contains(&grouped_fingerprint(&published)),
        "the HTML part names it too"
    );
    let home = gnupg_home();
    let imported = gpg(home.path(), &["--import"], &armored);
    assert!(imported.status.success(), "{imported:?}");
    let (content, signature) = signed_content(&mail.data);
    let (data_file, sig_file) = (home.path().join("mail"), home.path().join("mail.asc"));
    std::fs::write(&data_file, &content).expect("write");
    std::fs::write(&sig_file, signature).expect("write");
    let verified = gpg(
        home.path(),
        &[
            "--status-fd",
            "1",
            "--verify",
            sig_file.to_str().expect("path"),
            data_file.to_str().expect("path"),
        ],
        b"",
    );
    assert!(verified.status.success(), "{verified:?}");
    assert!(
        stdout(&verified).contains(&format!("[GNUPG:] VALIDSIG {published} ")),
        "{}",
        stdout(&verified)
    );

    // The embargo policy shows it, grouped as people compare it, with a link to the key.
    let page = app.get("/embargo-policy").await.text().await.expect("page");
    assert!(
        page.contains(&grouped_fingerprint(&published)),
        "the policy page shows the fingerprint"
    );
    assert!(page.contains("href=\"/openpgp.asc\""));
    app.outbox_idle().await;
}

/// z-base-32 written here from its specification, one bit at a time, so the test does not
/// share the service's encoder.
fn zbase32(bytes: &[u8]) -> String {
    let alphabet: Vec<char> = "ybndrfg8ejkmcpqxot1uwisza345h769".chars().collect();
    let bits: Vec<u8> = bytes
        .iter()
        .flat_map(|b| (0..8).rev().map(move |i| (b >> i) & 1))
        .collect();
    bits.chunks(5)
        .map(|chunk| {
            let value = (0..5).fold(0usize, |acc, i| {
                (acc << 1) | usize::from(chunk.get(i).copied().unwrap_or(0))
            });
            alphabet[value]
        })
        .collect()
}

/// The WKD hash of `local_part`, with SHA-1 from the system's `sha1sum`.
fn wkd_hash(local_part: &str) -> String {
    use std::io::Write;
    let mut child = Command::new("sha1sum")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("sha1sum (coreutils) runs");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(local_part.to_ascii_lowercase().as_bytes())
        .expect("write");
    let output = child.wait_with_output().expect("sha1sum");
    let text = String::from_utf8_lossy(&output.stdout);
    let digest = hex::decode(text.split_whitespace().next().expect("a digest")).expect("hex");
    zbase32(&digest)
}

#[test]
fn the_tests_own_wkd_hash_matches_the_drafts_example() {
    assert_eq!(wkd_hash("Joe.Doe"), "iy9q119eutrkn8s1mk4r39qejnbu3n5q");
}

async fn the_web_key_directory_serves_the_key_for_the_from_address_only(backend: Backend) {
    let vars = [(
        "EDL_MAIL_FROM",
        "Example Security <Security.Team@Example.ORG>",
    )];
    let Some(app) = TestApp::spawn_with(backend, &vars, None).await else {
        return;
    };
    let key = app.state.ctx.mailer.signer.public_binary();
    assert_eq!(
        gpg_fingerprint(key),
        app.state.ctx.mailer.signer.fingerprint
    );
    let hash = wkd_hash("Security.Team");
    for path in [
        format!("/.well-known/openpgpkey/hu/{hash}"),
        format!("/.well-known/openpgpkey/hu/{hash}?l=Security.Team"),
        format!("/.well-known/openpgpkey/example.org/hu/{hash}"),
        format!("/.well-known/openpgpkey/example.org/hu/{hash}?l=Security.Team"),
    ] {
        let response = app.get(&path).await;
        assert_eq!(response.status(), 200, "{path}");
        let headers = response.headers().clone();
        assert_eq!(
            headers["content-type"], "application/octet-stream",
            "{path}"
        );
        assert_eq!(headers["access-control-allow-origin"], "*", "{path}");
        let body = response.bytes().await.expect("body");
        assert_eq!(body.as_ref(), key, "{path}: the same key bytes");
    }
    for path in [
        "/.well-known/openpgpkey/policy".to_owned(),
        "/.well-known/openpgpkey/example.org/policy".to_owned(),
    ] {
        assert_eq!(app.get(&path).await.status(), 200, "{path}");
    }
    let stranger = wkd_hash("someone.else");
    for path in [
        format!("/.well-known/openpgpkey/hu/{stranger}"),
        format!("/.well-known/openpgpkey/hu/{stranger}?l=Security.Team"),
        format!("/.well-known/openpgpkey/example.org/hu/{stranger}"),
        format!("/.well-known/openpgpkey/example.net/hu/{hash}"),
        format!("/.well-known/openpgpkey/example.org.evil.test/hu/{hash}"),
        "/.well-known/openpgpkey/example.net/policy".to_owned(),
        "/.well-known/openpgpkey/hu/".to_owned(),
    ] {
        assert_eq!(app.get(&path).await.status(), 404, "{path}");
    }
}

async fn show_and_export_print_the_key_the_service_uses(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let fingerprint = app.state.ctx.mailer.signer.fingerprint.clone();
    // `app.edl` runs in the app's folder, its data folder: the same generated key.
    let shown = app.edl(&["openpgp", "show"], "");
    assert!(shown.status.success(), "{}", stderr(&shown));
    let text = stdout(&shown);
    for expected in [
        format!("Fingerprint: {}", grouped_fingerprint(&fingerprint)),
        "User ID:     Early Disclosure List <edl@localhost>".to_owned(),
        "openpgp/list-key.asc (generated at first start".to_owned(),
        "Created:     ".to_owned(),
    ] {
        assert!(text.contains(&expected), "{expected:?} in:\n{text}");
    }

    let exported = app.edl(&["openpgp", "export"], "");
    assert!(exported.status.success(), "{}", stderr(&exported));
    assert_eq!(gpg_fingerprint(&exported.stdout), fingerprint);
    let served = app.get("/openpgp.asc").await.bytes().await.expect("key");
    assert_eq!(exported.stdout, served.as_ref());
    assert!(!stdout(&exported).contains("PRIVATE"));
    // The secret half is never offered.
    let secret = app.edl(&["openpgp", "export", "--secret"], "");
    assert!(!secret.status.success());
}

fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path)
        .expect("metadata")
        .permissions()
        .mode()
        & 0o777
}

fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
}

async fn rotation_entries(app: &TestApp) -> Vec<String> {
    app.with_db(|c| {
        Ok(audit_log::table
            .filter(audit_log::action.eq("openpgp.key-rotated"))
            .select(audit_log::details)
            .load::<String>(c)?)
    })
    .await
}

async fn rotate_replaces_the_key_keeps_the_old_one_and_records_it(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let old = app.state.ctx.mailer.signer.fingerprint.clone();
    let file = app.db.folder().join("openpgp").join("list-key.asc");
    assert!(file.exists());

    // A key file that cannot be written is not rotated, and nothing is recorded.
    set_mode(&file, 0o400);
    let refused = app.edl(&["openpgp", "rotate"], "");
    set_mode(&file, 0o600);
    assert!(!refused.status.success());
    assert!(
        stderr(&refused).contains("cannot be written") && stderr(&refused).contains("not rotated"),
        "{}",
        stderr(&refused)
    );
    assert_eq!(
        ListKey::load_or_create(&app.settings)
            .expect("the key")
            .fingerprint,
        old
    );
    assert!(rotation_entries(&app).await.is_empty());

    let rotated = app.edl(&["openpgp", "rotate"], "");
    assert!(rotated.status.success(), "{}", stderr(&rotated));
    let text = stdout(&rotated);
    let new = ListKey::load_or_create(&app.settings)
        .expect("the new key")
        .fingerprint;
    assert_ne!(new, old);
    assert!(text.contains(&format!("Old fingerprint: {}", grouped_fingerprint(&old))));
    assert!(text.contains(&format!("New fingerprint: {}", grouped_fingerprint(&new))));
    assert!(text.contains("Restart"), "{text}");
    assert_eq!(mode(&file), 0o600);

    // The old key is kept beside it, private, and still loads.
    let kept = file.with_file_name(format!("list-key.{old}.asc"));
    assert_eq!(mode(&kept), 0o600);
    assert_eq!(
        ListKey::load(&kept, None).expect("old key").fingerprint,
        old
    );
    let leftovers: Vec<_> = std::fs::read_dir(file.parent().expect("folder"))
        .expect("list")
        .filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().into_owned()))
        .filter(|n| n.starts_with('.') || n.ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");

    // Recorded, and the chain still verifies.
    let entries = rotation_entries(&app).await;
    assert_eq!(entries.len(), 1);
    let details: serde_json::Value = serde_json::from_str(&entries[0]).expect("json");
    assert_eq!(details["old_fingerprint"], old.as_str());
    assert_eq!(details["new_fingerprint"], new.as_str());
    let verified = app.edl(&["audit", "verify"], "");
    assert!(verified.status.success(), "{}", stderr(&verified));

    // The running service keeps its key until restarted; a restart serves the new one.
    let served = app.get("/openpgp.asc").await.bytes().await.expect("key");
    assert_eq!(gpg_fingerprint(&served), old);
    let data_dir = app.db.folder().display().to_string();
    let restarted = TestApp::spawn_with(backend, &[("EDL_DATA_DIR", data_dir.as_str())], None)
        .await
        .expect("a second app");
    let served = restarted
        .get("/openpgp.asc")
        .await
        .bytes()
        .await
        .expect("key");
    assert_eq!(gpg_fingerprint(&served), new);
    assert_eq!(restarted.state.ctx.mailer.signer.fingerprint, new);
}

async fn a_locked_key_needs_the_right_passphrase(backend: Backend) {
    let Some(db) = TestDb::create(backend) else {
        return;
    };
    let folder = db.folder();
    let key_file = folder.join("keys").join("list.asc");
    let key = ListKey::generate(
        "Example EDL <edl@example.org>",
        Some(Secret::new("correct horse battery")),
    )
    .expect("a key");
    key.write(&key_file).expect("written");
    let key_path = key_file.display().to_string();
    let data_dir = folder.display().to_string();
    let vars = |passphrase: &'static str| {
        vec![
            ("EDL_DATABASE_URL", db.url.clone()),
            ("EDL_BIND", "127.0.0.1:0".to_owned()),
            ("EDL_DATA_DIR", data_dir.clone()),
            (
                "EDL_MAIL_DIR",
                folder.join("mail-out").display().to_string(),
            ),
            ("EDL_OPENPGP_KEY_FILE", key_path.clone()),
            ("EDL_OPENPGP_KEY_PASSPHRASE", passphrase.to_owned()),
        ]
    };
    let settings = |passphrase: &'static str| {
        let vars = vars(passphrase);
        Settings::from_vars(vars.iter().map(|(k, v)| (*k, v.as_str()))).expect("settings")
    };

    // A wrong passphrase stops the start, naming the setting.
    let options = || Options {
        transport: None,
        handle_signals: false,
        clock: edl::clock::Clock::system(),
    };
    let error = match Application::build(settings("wrong"), options()).await {
        Ok(_) => panic!("the service started with a wrong passphrase"),
        Err(error) => error.to_string(),
    };
    assert!(error.contains("EDL_OPENPGP_KEY_PASSPHRASE"), "{error}");
    let wrong = vars("wrong");
    let wrong: Vec<(&str, &str)> = wrong.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let shown = run_edl(&folder, &wrong, &["openpgp", "show"], "");
    assert!(!shown.status.success());
    assert!(
        stderr(&shown).contains("EDL_OPENPGP_KEY_PASSPHRASE"),
        "{}",
        stderr(&shown)
    );

    // The right one works, and a rotation locks the new key with it.
    let right = vars("correct horse battery");
    let right: Vec<(&str, &str)> = right.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let shown = run_edl(&folder, &right, &["openpgp", "show"], "");
    assert!(shown.status.success(), "{}", stderr(&shown));
    assert!(stdout(&shown).contains("(EDL_OPENPGP_KEY_FILE)"));
    assert!(stdout(&shown).contains(&grouped_fingerprint(&key.fingerprint)));
    let rotated = run_edl(&folder, &right, &["openpgp", "rotate"], "");
    assert!(rotated.status.success(), "{}", stderr(&rotated));
    let new = ListKey::load(&key_file, Some(Secret::new("correct horse battery")))
        .expect("the new key unlocks with the configured passphrase");
    assert_ne!(new.fingerprint, key.fingerprint);
    assert!(
        ListKey::load(&key_file, None).is_err(),
        "the new key is locked"
    );
    let kept = key_file.with_file_name(format!("list-key.{}.asc", key.fingerprint));
    assert_eq!(mode(&kept), 0o600);
    assert_eq!(mode(&key_file), 0o600);
    let app = Application::build(settings("correct horse battery"), options())
        .await
        .expect("starts with the right passphrase");
    assert_eq!(app.state.ctx.mailer.signer.fingerprint, new.fingerprint);
    drop(app.handle().stop(false));
}

#[test]
fn production_mode_without_a_key_file_is_refused() {
    let dir = tempfile::tempdir().expect("dir");
    let vars = [
        ("EDL_MODE", "production"),
        ("EDL_SMTP_URL", "smtp://127.0.0.1:2525"),
        (
            "EDL_SECRET_KEY",
            "0123456789abcdef0123456789abcdef0123456789abcdef",
        ),
        ("EDL_BASE_URL", "https://edl.example.org/"),
    ];
    let output = run_edl(dir.path(), &vars, &["openpgp", "show"], "");
    assert!(!output.status.success());
    assert!(
        stderr(&output).contains("EDL_OPENPGP_KEY_FILE"),
        "{}",
        stderr(&output)
    );
    assert!(!dir.path().join("openpgp").exists(), "no key was generated");
}
