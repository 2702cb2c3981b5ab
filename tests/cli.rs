//! The `edl` binary as an operator runs it: start-up from nothing, start-up errors, the
//! calendar, mail previews and the configuration report.

use std::net::TcpListener;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use crate::helpers::{eventually, Backend, TestDb};
use crate::on_both_backends;

fn edl(dir: &std::path::Path, vars: &[(&str, &str)], args: &[&str]) -> Output {
    crate::helpers::run_edl(dir, vars, args, "")
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

/// Asserts a failed start-up: a non-zero exit, one line on stderr that names `needle`, no panic.
fn assert_one_line_error(output: &Output, needle: &str) {
    let text = stderr(output);
    assert!(!output.status.success(), "it should have failed: {text}");
    assert_eq!(
        text.trim().lines().count(),
        1,
        "one line expected, got: {text}"
    );
    assert!(
        text.starts_with("error: ") && text.contains(needle),
        "{text}"
    );
    assert!(!text.contains("panicked"), "{text}");
}

#[test]
fn calendar_json_lists_patch_tuesdays_with_their_early_disclosure_dates() {
    let dir = tempfile::tempdir().expect("dir");
    let output = edl(
        dir.path(),
        &[],
        &["calendar", "--from", "2026-11", "--months", "3", "--json"],
    );
    assert!(output.status.success(), "{}", stderr(&output));
    let entries: serde_json::Value = serde_json::from_slice(&output.stdout).expect("json");
    let pairs: Vec<(String, String)> = entries
        .as_array()
        .expect("a list")
        .iter()
        .map(|e| {
            (
                e["patch_tuesday"].as_str().expect("date").to_owned(),
                e["early_disclosure"].as_str().expect("date").to_owned(),
            )
        })
        .collect();
    let expected = [
        ("2026-11-10", "2026-10-27"),
        ("2026-12-08", "2026-11-24"),
        ("2027-01-12", "2026-12-29"),
    ];
    assert_eq!(
        pairs,
        expected.map(|(a, b)| (a.to_owned(), b.to_owned())).to_vec()
    );
    assert_eq!(entries[0]["release_at"], "2026-11-10T16:00:00Z");
    // Nothing was created: the calendar needs no database.
    assert!(!dir.path().join("edl.sqlite3").exists());
}

#[test]
fn calendar_follows_the_configured_zone_and_lead_time() {
    let dir = tempfile::tempdir().expect("dir");
    let vars = [
        ("EDL_TIMEZONE", "America/New_York"),
        ("EDL_LEAD_DAYS", "7"),
        ("EDL_RELEASE_TIME", "10:00"),
    ];
    let output = edl(
        dir.path(),
        &vars,
        &["calendar", "--from", "2026-03", "--months", "1", "--json"],
    );
    assert!(output.status.success(), "{}", stderr(&output));
    let entries: serde_json::Value = serde_json::from_slice(&output.stdout).expect("json");
    assert_eq!(entries[0]["patch_tuesday"], "2026-03-10");
    assert_eq!(entries[0]["early_disclosure"], "2026-03-03");
    assert_eq!(entries[0]["release_at"], "2026-03-10T14:00:00Z"); // 10:00 EDT
    assert_eq!(entries[0]["early_disclosure_at"], "2026-03-03T21:00:00Z"); // 16:00 EST
}

#[test]
fn calendar_rejects_a_bad_month() {
    let dir = tempfile::tempdir().expect("dir");
    let output = edl(dir.path(), &[], &["calendar", "--from", "2026-13"]);
    assert_one_line_error(&output, "YYYY-MM");
}

#[test]
fn a_bad_timezone_stops_start_up_with_one_clear_line() {
    let dir = tempfile::tempdir().expect("dir");
    let output = edl(dir.path(), &[("EDL_TIMEZONE", "Mars/Olympus")], &["serve"]);
    assert_one_line_error(&output, "EDL_TIMEZONE");
    assert!(stderr(&output).contains("Mars/Olympus"));
    assert!(
        !dir.path().join("edl.sqlite3").exists(),
        "nothing is created on a bad configuration"
    );
}

#[test]
fn a_bad_database_url_stops_start_up_with_one_clear_line() {
    let dir = tempfile::tempdir().expect("dir");
    let output = edl(
        dir.path(),
        &[("EDL_DATABASE_URL", "mysql://db.example/edl")],
        &["serve"],
    );
    assert_one_line_error(&output, "EDL_DATABASE_URL");

    // Well-formed, but nothing listens there.
    let port = free_port().to_string();
    let url = format!("postgres://edl:s3cret-pw@127.0.0.1:{port}/edl");
    let output = edl(dir.path(), &[("EDL_DATABASE_URL", &url)], &["serve"]);
    assert_one_line_error(&output, "cannot connect to the postgresql database");
    assert!(
        !stderr(&output).contains("s3cret-pw"),
        "the password leaked: {}",
        stderr(&output)
    );
}

#[test]
fn a_bad_value_in_edl_toml_names_the_key() {
    let dir = tempfile::tempdir().expect("dir");
    std::fs::write(dir.path().join("edl.toml"), "lead_days = 400\n").expect("write");
    let output = edl(dir.path(), &[], &["serve"]);
    assert_one_line_error(&output, "lead_days in edl.toml");
}

#[test]
fn mail_previews_render_every_template() {
    let dir = tempfile::tempdir().expect("dir");
    let list = edl(dir.path(), &[], &["mail", "list"]);
    assert!(list.status.success());
    let listed = String::from_utf8(list.stdout).expect("utf8");
    // Each line is a name, then what the mail is for.
    let names: Vec<&str> = listed
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert!(names.contains(&"test_message"), "{listed}");
    for name in names {
        let output = edl(
            dir.path(),
            &[("EDL_LIST_NAME", "Example EDL")],
            &["mail", "preview", name],
        );
        assert!(output.status.success(), "{name}: {}", stderr(&output));
        let text = String::from_utf8(output.stdout).expect("utf8");
        assert!(text.starts_with("Subject: "), "{text}");
        assert!(text.contains("----- text/plain -----") && text.contains("----- text/html -----"));
        assert!(text.contains("Example EDL"));
    }
    let html = edl(
        dir.path(),
        &[],
        &["mail", "preview", "test_message", "--part", "html"],
    );
    assert!(String::from_utf8(html.stdout)
        .expect("utf8")
        .trim_start()
        .starts_with("<!DOCTYPE html>"));
    let missing = edl(dir.path(), &[], &["mail", "preview", "no_such_mail"]);
    assert_one_line_error(&missing, "no_such_mail");
}

#[test]
fn mail_preview_without_a_name_lists_the_templates_and_a_wrong_name_is_told_them() {
    let dir = tempfile::tempdir().expect("dir");
    let bare = edl(dir.path(), &[], &["mail", "preview"]);
    assert!(bare.status.success(), "{}", stderr(&bare));
    let listed = String::from_utf8(bare.stdout).expect("utf8");
    let line = |name: &str| {
        listed
            .lines()
            .find(|l| l.split_whitespace().next() == Some(name))
            .unwrap_or_else(|| panic!("{name} is not listed:\n{listed}"))
            .to_owned()
    };
    // One template per line, with what it is for.
    assert!(
        line("decision_rejected").contains("not approved, with the working group's reasons"),
        "{listed}"
    );
    assert!(
        line("embargoed_release").contains("under embargo"),
        "{listed}"
    );
    let names: Vec<&str> = listed
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert!(names.len() >= 19, "{listed}");
    let mut sorted = names.clone();
    sorted.sort_unstable();
    assert_eq!(names, sorted, "in order of name");

    let flag = edl(dir.path(), &[], &["mail", "preview", "--list"]);
    assert!(flag.status.success(), "{}", stderr(&flag));
    assert_eq!(String::from_utf8(flag.stdout).expect("utf8"), listed);
    let list = edl(dir.path(), &[], &["mail", "list"]);
    assert_eq!(String::from_utf8(list.stdout).expect("utf8"), listed);

    // A name with a typo: the error names every template there is.
    let wrong = edl(dir.path(), &[], &["mail", "preview", "decision_rejectd"]);
    assert_one_line_error(&wrong, "no email template named \"decision_rejectd\"");
    for name in &names {
        assert!(stderr(&wrong).contains(name), "{name}: {}", stderr(&wrong));
    }
    // Nor does a path reach outside the templates.
    let path = edl(dir.path(), &[], &["mail", "preview", "../src"]);
    assert_one_line_error(
        &path,
        "the templates are alias_changed, application_received, ",
    );
    assert!(!dir.path().join("edl.sqlite3").exists());
}

#[test]
fn every_command_explains_each_of_its_arguments_in_its_help() {
    let dir = tempfile::tempdir().expect("dir");
    for (args, expected) in [
        (
            &["mail", "preview", "--help"][..],
            &[
                "The template, as `edl mail list` names it",
                "Which part to print",
            ][..],
        ),
        (
            &["user", "add", "--help"],
            &["The account's email address", "The person's name"],
        ),
        (
            &["release", "show", "--help"],
            &["The release's number, as `edl release list` shows it"],
        ),
    ] {
        let output = edl(dir.path(), &[], args);
        assert!(output.status.success(), "{args:?}: {}", stderr(&output));
        let help = String::from_utf8(output.stdout).expect("utf8");
        for text in expected {
            assert!(help.contains(text), "{args:?}: {help}");
        }
    }
}

#[test]
fn production_without_a_security_contact_refuses_to_start() {
    let dir = tempfile::tempdir().expect("dir");
    let key_file = dir.path().join("list-key.asc");
    std::fs::write(&key_file, "a key the settings check only for being a file").expect("file");
    let key_file = key_file.display().to_string();
    let secret = "0123456789abcdef".repeat(4);
    let mut vars = vec![
        ("EDL_MODE", "production"),
        ("EDL_SMTP_URL", "smtp://127.0.0.1:2525"),
        ("EDL_SECRET_KEY", secret.as_str()),
        ("EDL_BASE_URL", "https://edl.example.org/"),
        ("EDL_OPENPGP_KEY_FILE", key_file.as_str()),
        ("EDL_MAIL_FROM", "Example EDL <edl@example.org>"),
    ];
    let output = edl(dir.path(), &vars, &["serve"]);
    assert_one_line_error(
        &output,
        "production mode needs EDL_SECURITY_CONTACT (the address leaks are reported to",
    );
    assert_eq!(output.status.code(), Some(2));
    assert!(
        !dir.path().join("edl.sqlite3").exists(),
        "nothing is created"
    );

    // A malformed one is named as such.
    vars.push(("EDL_SECURITY_CONTACT", "security at example.org"));
    let output = edl(dir.path(), &vars, &["check-config"]);
    assert_one_line_error(
        &output,
        "invalid setting EDL_SECURITY_CONTACT = \"security at example.org\"",
    );
    vars.pop();
    vars.push(("EDL_SECURITY_CONTACT", "leaks@example.org"));
    let output = edl(dir.path(), &vars, &["check-config"]);
    assert!(output.status.success(), "{}", stderr(&output));
    let text = String::from_utf8(output.stdout).expect("utf8");
    let line = text
        .lines()
        .find(|l| l.starts_with("EDL_SECURITY_CONTACT "))
        .unwrap_or_default();
    assert!(
        line.contains("leaks@example.org") && line.ends_with("(environment)"),
        "{text}"
    );
}

#[test]
fn mail_test_sends_one_message_and_says_where_it_went() {
    let dir = tempfile::tempdir().expect("dir");
    let output = edl(
        dir.path(),
        &[],
        &["mail", "test", "--to", "ops@example.org"],
    );
    assert!(output.status.success(), "{}", stderr(&output));
    let text = String::from_utf8(output.stdout).expect("utf8");
    assert!(
        text.starts_with("Sent through .eml files in ./mail-out"),
        "{text}"
    );
    let files: Vec<_> = std::fs::read_dir(dir.path().join("mail-out"))
        .expect("mail folder")
        .map(|e| e.expect("entry").path())
        .collect();
    assert_eq!(files.len(), 1);
    let raw = std::fs::read_to_string(&files[0]).expect("read");
    assert!(raw.contains("To: ops@example.org"), "{raw}");

    let bad = edl(dir.path(), &[], &["mail", "test", "--to", "not-an-address"]);
    assert_one_line_error(&bad, "not an email address");
}

#[test]
fn check_config_masks_secrets_and_names_sources() {
    let dir = tempfile::tempdir().expect("dir");
    std::fs::write(dir.path().join("edl.toml"), "lead_days = 10\n").expect("write");
    let key = "k".repeat(48);
    let vars = [
        ("EDL_SMTP_URL", "smtp://mailer:hunter2@mail.example.org:587"),
        ("EDL_SECRET_KEY", key.as_str()),
        (
            "EDL_DATABASE_URL",
            "postgres://edl:pw-in-url@db.example.org/edl",
        ),
    ];
    let output = edl(dir.path(), &vars, &["check-config"]);
    assert!(output.status.success(), "{}", stderr(&output));
    let text = String::from_utf8(output.stdout).expect("utf8");
    for secret in ["hunter2", "pw-in-url", key.as_str()] {
        assert!(!text.contains(secret), "{secret} leaked:\n{text}");
    }
    let line = |name: &str| {
        text.lines()
            .find(|l| l.starts_with(name))
            .unwrap_or_default()
            .to_owned()
    };
    assert!(
        line("EDL_LEAD_DAYS").contains("10") && line("EDL_LEAD_DAYS").contains("(edl.toml)"),
        "{text}"
    );
    assert!(line("EDL_TIMEZONE").contains("UTC") && line("EDL_TIMEZONE").contains("(default)"));
    assert!(line("EDL_SMTP_URL").contains("(environment)"));
    assert!(line("EDL_SECRET_KEY").contains("(set)"));
}

on_both_backends!(serve_starts_with_no_configuration_and_stops_on_sigterm);

/// `edl serve` started as the README says, in an empty folder (SQLite) or pointed at
/// PostgreSQL: it answers, creates what it needs, and shuts down cleanly on SIGTERM.
async fn serve_starts_with_no_configuration_and_stops_on_sigterm(backend: Backend) {
    let Some(db) = TestDb::create(backend) else {
        return;
    };
    let dir = tempfile::tempdir().expect("dir");
    let port = free_port();
    let bind = format!("127.0.0.1:{port}");
    let mut vars = vec![("EDL_BIND", bind.as_str())];
    if backend == Backend::Postgres {
        vars.push(("EDL_DATABASE_URL", db.url.as_str()));
    }
    let child = tokio::process::Command::new(env!("CARGO_BIN_EXE_edl"))
        .current_dir(dir.path())
        .env_clear()
        .envs(vars.iter().copied())
        .arg("serve")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("edl serve starts");
    let client = reqwest::Client::new();
    let base = format!("http://{bind}");
    eventually(
        Duration::from_secs(30),
        "edl serve to answer /healthz",
        || {
            let client = client.clone();
            let url = format!("{base}/healthz");
            async move {
                client
                    .get(url)
                    .send()
                    .await
                    .ok()
                    .filter(|r| r.status() == 200)
            }
        },
    )
    .await;
    assert_eq!(
        client
            .get(format!("{base}/"))
            .send()
            .await
            .expect("home")
            .status(),
        200
    );
    assert_eq!(
        client
            .get(format!("{base}/readyz"))
            .send()
            .await
            .expect("ready")
            .status(),
        200
    );
    if backend == Backend::Sqlite {
        assert!(
            dir.path().join("edl.sqlite3").is_file(),
            "the SQLite database was not created"
        );
    }

    let pid = child.id().expect("pid").to_string();
    let killed = Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill runs");
    assert!(killed.success());
    let output = tokio::time::timeout(Duration::from_secs(40), child.wait_with_output())
        .await
        .expect("edl serve stops after SIGTERM")
        .expect("exit status");
    let log = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "exit {:?}: {log}", output.status);
    assert!(log.contains("Listening."), "{log}");
    assert!(
        log.contains("No admin account exists yet") && log.contains("edl user add"),
        "a fresh service says how to create the first admin: {log}"
    );
    assert!(
        log.contains("EDL_SECURITY_CONTACT is not set") && log.contains("edl@localhost"),
        "development warns that leak reports would go to the sending address: {log}"
    );
    assert!(
        !log.contains("secret_key") || !log.contains("EDL_SECRET_KEY="),
        "{log}"
    );
    assert!(
        log.contains("Outbox worker stopped."),
        "workers were not stopped gracefully: {log}"
    );
}

#[test]
fn an_environment_variable_that_is_not_text_is_named_and_others_are_ignored() {
    use std::os::unix::ffi::OsStringExt;
    let dir = tempfile::tempdir().expect("dir");
    let not_text = || std::ffi::OsString::from_vec(vec![b'L', 0xe9, b'a']);
    let run = |name: &str| {
        std::process::Command::new(env!("CARGO_BIN_EXE_edl"))
            .current_dir(dir.path())
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env(name, not_text())
            .args(["calendar", "--months", "1"])
            .output()
            .expect("edl runs")
    };
    // Another program's variable, whatever its bytes, does not stop the command.
    let fine = run("LESSCHARSET");
    assert!(fine.status.success(), "{}", stderr(&fine));
    // The service's own is refused with one line that names it, and no panic.
    let refused = run("EDL_LIST_NAME");
    assert_one_line_error(&refused, "EDL_LIST_NAME");
    assert!(stderr(&refused).contains("is not valid UTF-8 text"));
}
