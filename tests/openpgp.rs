//! Encrypted and signed mail, checked with real GnuPG as a member would: the embargoed mail
//! decrypts with the member's secret key in a throwaway GNUPGHOME, the list's signature
//! verifies against `/openpgp.asc`, the attachment is the uploaded patch byte for byte; members
//! whose key is expired, revoked or missing get only the notice, and the ledger says why;
//! nothing of the patch is in any clear part or `.eml` file.

use std::path::{Path, PathBuf};

use chrono::Utc;
use edl::accounts::Role;
use edl::domain::{OutboxStatus, ReleaseKind};
use edl::releases::distribution::{self, ENCRYPTED_SUBJECT};
use edl::releases::release::{self, Actor, AdvisoryForm, Plan, Upload};
use edl::releases::{approval, patch};

use crate::helpers::gnupg::{gnupg_home, gnupg_key, gpg, valid_signer};
use crate::helpers::smtp::Received;
use crate::helpers::{keys, signed_content, Backend, Browser, TestApp};
use crate::on_both_backends;

on_both_backends!(
    embargoed_mail_decrypts_with_gnupg_and_members_without_a_usable_key_get_the_notice,
    files_written_without_smtp_hold_no_clear_embargoed_content,
    under_when_key_a_member_without_a_key_gets_clear_mail_and_the_ledger_says_so,
    a_key_that_stops_working_before_sending_holds_the_mail,
    a_member_that_adds_a_key_gets_the_mailing_at_the_next_run,
    a_cancellation_to_a_member_whose_key_broke_is_held_not_sent_in_clear,
    the_ledger_is_read_a_page_at_a_time,
);

const PASSWORD: &str = "tangerine-kettle-orbit-42";
const TITLE: &str = "Security release 2.4.1";
/// A changed line of the patch: it must never be readable outside the encrypted part.
const SECRET_LINE: &str = "return normalizeSlashes(unescapeOnce(path))";

fn the_patch() -> String {
    format!(
        "diff --git a/pkg/authz/path.go b/pkg/authz/path.go
--- a/pkg/authz/path.go
+++ b/pkg/authz/path.go
@@ -10,3 +10,3 @@ func Normalize(path string) string {{
 \tif path == \"\" {{
-\treturn path
+\t{SECRET_LINE}
 \t}}
"
    )
}

fn testdata(name: &str) -> String {
    std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("data/testdata")
            .join(name),
    )
    .expect("an OpenPGP fixture")
}

struct Site {
    app: TestApp,
    planner: Actor,
    approver: Actor,
}

async fn open_site(backend: Backend, vars: &[(&str, &str)]) -> Option<Site> {
    let mut all = vec![("EDL_SCHEDULER_INTERVAL", "1h")];
    all.extend_from_slice(vars);
    site_with(TestApp::spawn_with_smtp(backend, &all).await?).await
}

/// Release managers on `app`: one plans, the other approves.
async fn site_with(app: TestApp) -> Option<Site> {
    let planner = app
        .add_account(
            "rm1@project.example",
            "Rel One",
            &[Role::ReleaseManager],
            PASSWORD,
        )
        .await;
    let approver = app
        .add_account(
            "rm2@project.example",
            "Rel Two",
            &[Role::ReleaseManager],
            PASSWORD,
        )
        .await;
    Some(Site {
        app,
        planner: Actor {
            account_id: planner,
            email: "rm1@project.example".into(),
        },
        approver: Actor {
            account_id: approver,
            email: "rm2@project.example".into(),
        },
    })
}

/// A 0-day release three days out with one advisory and the patch, approved by the second
/// release manager; returns its id and the patch's SHA-256.
async fn approved_release(site: &Site) -> (i64, String) {
    let calendar = site.app.settings.calendar();
    let (planner, approver) = (site.planner.clone(), site.approver.clone());
    let bytes = the_patch().into_bytes();
    let sha = patch::sha256_hex(&bytes);
    let id = site
        .app
        .with_db(move |c| {
            let err = |e: release::ReleaseError| edl::db::DbError::Task(e.to_string());
            let plan = Plan {
                kind: ReleaseKind::ZeroDay,
                title: TITLE.into(),
                release_lines: vec!["2.4.1".into()],
                patch_tuesday: None,
                release_at: Some(Utc::now() + chrono::Duration::days(3)),
                upstream_id: None,
                notice_hours: 24,
                members_may_deploy: false,
                notes: String::new(),
            };
            let id = release::plan(c, &calendar, &plan, &planner, Utc::now()).map_err(err)?;
            let advisory = AdvisoryForm {
                cve_id: "CVE-2026-41000".into(),
                severity: "high".into(),
                summary: "Authorization bypass with encoded slashes.".into(),
                fixed_versions: "2.4.1".into(),
                ..AdvisoryForm::default()
            }
            .parse()
            .expect("advisory");
            release::add_advisory(c, id, &advisory, &planner).map_err(err)?;
            let upload = Upload {
                filename: "0001-normalize-paths.patch".into(),
                bytes,
                release_line: "2.4.1".into(),
                upstream_id: None,
                is_security_fix: true,
            };
            release::add_patch(c, id, &upload, &planner).map_err(err)?;
            approval::approve(c, id, &approver).map_err(err)?;
            Ok(id)
        })
        .await;
    (id, sha)
}

/// Moves the app's clock two days on, inside the early-disclosure window, and runs the
/// scheduler's tick there: the workers then send at the moment the mail was queued, as in the
/// service, and find each key already judged (see `member_key::Judgements`).
async fn disclose(site: &Site) -> distribution::Tick {
    let ctx = site.app.state.ctx.clone();
    let behind = Utc::now() + chrono::Duration::days(2) - ctx.clock.now();
    if behind > chrono::Duration::zero() {
        site.app.advance(behind);
    }
    let tick = site
        .app
        .with_db(move |c| {
            distribution::distribute(c, &ctx, ctx.clock.now())
                .map_err(|e| edl::db::DbError::Task(e.to_string()))
        })
        .await;
    site.app.state.mailer.wake_workers();
    tick
}

/// The ledger's first line for a member.
async fn ledger_line(site: &Site, id: i64, org: &str) -> String {
    ledger_lines(site, id, org).await.remove(0)
}

/// The ledger's lines for a member, in order.
async fn ledger_lines(site: &Site, id: i64, org: &str) -> Vec<String> {
    let browser = Browser::open(&site.app).await;
    browser.sign_in("rm2@project.example", PASSWORD).await;
    let html = browser
        .get(&format!("/manage/releases/{id}"))
        .await
        .text()
        .await
        .expect("page");
    let marker = format!("<tr><td>{org}</td>");
    let lines: Vec<String> = html
        .match_indices(&marker)
        .map(|(start, _)| {
            let end = html[start..]
                .find("</tr>")
                .map_or(html.len(), |e| start + e);
            html[start..end].to_owned()
        })
        .collect();
    assert!(!lines.is_empty(), "{org} is in the ledger");
    lines
}

/// Nothing of the patch or the advisory is readable in what crossed the wire in clear.
fn assert_nothing_embargoed_in_clear(message: &Received) {
    let clear = message.wire_decoded();
    assert!(!clear.contains(SECRET_LINE), "the patch is in a clear part");
    assert!(
        !clear.contains("encoded slashes"),
        "the advisory is in a clear part"
    );
}

async fn embargoed_mail_decrypts_with_gnupg_and_members_without_a_usable_key_get_the_notice(
    backend: Backend,
) {
    let Some(site) = open_site(backend, &[]).await else {
        return;
    };
    let member_home = gnupg_home();
    let alpha = site
        .app
        .add_member("Alpha", "alpha.example", "active", 1)
        .await;
    let alpha_key = gnupg_key(member_home.path(), "security@alpha.example", "1y");
    site.app.set_member_key(alpha, Some(&alpha_key)).await;
    let expired = site
        .app
        .add_member("Expired", "expired.example", "active", 1)
        .await;
    site.app
        .set_member_key(expired, Some(&testdata("expired.asc")))
        .await;
    let revoked = site
        .app
        .add_member("Revoked", "revoked.example", "active", 1)
        .await;
    site.app
        .set_member_key(revoked, Some(&testdata("revoked.asc")))
        .await;
    let nokey = site
        .app
        .add_member("Keyless", "keyless.example", "active", 1)
        .await;
    site.app.set_member_key(nokey, None).await;

    let (id, sha) = approved_release(&site).await;
    disclose(&site).await;
    let smtp = site.app.smtp();
    let mail = smtp.wait_for("security@alpha.example", "[EMBARGOED]").await;

    // The outer message names no release, and carries nothing readable.
    assert_eq!(
        mail.wire_header("Subject").as_deref(),
        Some(ENCRYPTED_SUBJECT)
    );
    let wire = mail.wire();
    assert_eq!(wire.ctype.mimetype, "multipart/encrypted");
    assert!(!mail.wire_decoded().contains(TITLE));
    assert_nothing_embargoed_in_clear(&mail);

    // The member decrypts it with GnuPG; the signature inside is the list's key as published.
    let list_key = site
        .app
        .get("/openpgp.asc")
        .await
        .text()
        .await
        .expect("key");
    let imported = gpg(member_home.path(), &["--import"], list_key.as_bytes());
    assert!(imported.status.success(), "{imported:?}");
    let list_fpr = site.app.state.mailer.signer.fingerprint.clone();
    let armored = wire.subparts[1].get_body().expect("the encrypted part");
    let decrypted = gpg(
        member_home.path(),
        &["--status-fd", "2", "--decrypt"],
        armored.as_bytes(),
    );
    assert!(decrypted.status.success(), "{decrypted:?}");
    assert_eq!(
        valid_signer(&decrypted.stderr).as_deref(),
        Some(list_fpr.as_str())
    );
    let inner = mailparse::parse_mail(&decrypted.stdout).expect("the decrypted MIME");
    use mailparse::MailHeaderMap;
    let subject = inner
        .headers
        .get_first_value("Subject")
        .expect("protected subject");
    assert!(subject.contains(TITLE), "{subject}");
    let text = crate::helpers::smtp::decoded_mime(&decrypted.stdout);
    assert!(text.contains("encoded slashes"), "the advisory is inside");
    fn attachments(part: &mailparse::ParsedMail<'_>, out: &mut Vec<Vec<u8>>) {
        if part
            .get_content_disposition()
            .params
            .contains_key("filename")
        {
            out.push(part.get_body_raw().unwrap_or_default());
        }
        for sub in &part.subparts {
            attachments(sub, out);
        }
    }
    let mut files = Vec::new();
    attachments(&inner, &mut files);
    assert_eq!(files.len(), 1);
    assert_eq!(
        patch::sha256_hex(&files[0]),
        sha,
        "the attachment is the uploaded patch"
    );
    // Someone else's key cannot read it.
    let stranger_home = gnupg_home();
    gnupg_key(stranger_home.path(), "security@alpha.example", "1y");
    let refused = gpg(stranger_home.path(), &["--decrypt"], armored.as_bytes());
    assert!(!refused.status.success());

    // The other three get the signed notice only, and their ledger lines say why.
    for (alias, org, why) in [
        (
            "security@expired.example",
            "Expired",
            "expired on 2020-01-02",
        ),
        ("security@revoked.example", "Revoked", "revoked"),
        (
            "security@keyless.example",
            "Keyless",
            "No OpenPGP key is on record",
        ),
    ] {
        let notice = smtp
            .wait_for(alias, "An embargoed mailing was withheld")
            .await;
        assert!(!notice.encrypted);
        assert_nothing_embargoed_in_clear(&notice);
        assert!(
            !notice.wire_decoded().contains(TITLE),
            "the notice names no release"
        );
        assert!(notice.text().contains(why), "{alias}: {}", notice.text());
        assert!(
            notice.link("/members/key/").is_some(),
            "a link to add a key"
        );
        let (content, signature) = signed_content(&notice.data);
        let dir = tempfile::tempdir().expect("dir");
        std::fs::write(dir.path().join("content"), &content).expect("content");
        std::fs::write(dir.path().join("content.asc"), signature).expect("signature");
        let verified = gpg(
            member_home.path(),
            &[
                "--status-fd",
                "2",
                "--verify",
                path(&dir.path().join("content.asc")),
                path(&dir.path().join("content")),
            ],
            b"",
        );
        assert!(verified.status.success(), "{verified:?}");
        assert_eq!(
            valid_signer(&verified.stderr).as_deref(),
            Some(list_fpr.as_str())
        );
        assert!(smtp.to(alias).iter().all(|m| !m
            .wire_decoded()
            .contains("[EMBARGOED] Security release mail")));
        let line = ledger_line(&site, id, org).await;
        assert!(line.contains("held: no usable key"), "{line}");
        assert!(line.contains(why), "{line}");
    }
    let line = ledger_line(&site, id, "Alpha").await;
    assert!(line.contains("sent, encrypted"), "{line}");

    // Release managers are told how many.
    let alert = smtp
        .wait_for("rm1@project.example", "without a usable key")
        .await;
    assert!(alert.text().contains("3 members"), "{}", alert.text());

    // No mail to anyone carries the patch in clear.
    site.app.outbox_idle().await;
    for message in smtp.received() {
        assert_nothing_embargoed_in_clear(&message);
    }
}

fn path(p: &Path) -> &str {
    p.to_str().expect("a UTF-8 path")
}

/// `.eml` files under `dir`, read.
fn eml_files(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "eml"))
                .map(|p| {
                    let bytes = std::fs::read(&p).expect("eml");
                    (p, bytes)
                })
                .collect()
        })
        .unwrap_or_default()
}

async fn files_written_without_smtp_hold_no_clear_embargoed_content(backend: Backend) {
    let Some(app) = TestApp::spawn_with(backend, &[("EDL_SCHEDULER_INTERVAL", "1h")], None).await
    else {
        return;
    };
    let Some(site) = site_with(app).await else {
        return;
    };
    site.app
        .add_member("Alpha", "alpha.example", "active", 1)
        .await;
    approved_release(&site).await;
    disclose(&site).await;
    site.app.outbox_idle().await;
    let files = eml_files(&site.app.settings.mail_dir);
    assert!(
        !files.is_empty(),
        "mail was written to {:?}",
        site.app.settings.mail_dir
    );
    let mut embargoed = 0;
    for (file, bytes) in &files {
        let text = String::from_utf8_lossy(bytes);
        assert!(
            !text.contains(SECRET_LINE),
            "{} holds the patch in clear",
            file.display()
        );
        let received = Received::new(
            "edl@localhost".into(),
            vec!["security@alpha.example".into()],
            bytes.clone(),
        );
        if received.encrypted {
            embargoed += 1;
            assert!(
                received.decoded().contains(SECRET_LINE),
                "the member can read it"
            );
        }
    }
    assert_eq!(embargoed, 1, "one encrypted embargoed mail");
}

async fn under_when_key_a_member_without_a_key_gets_clear_mail_and_the_ledger_says_so(
    backend: Backend,
) {
    let Some(site) = open_site(backend, &[("EDL_ENCRYPTION", "when-key")]).await else {
        return;
    };
    site.app
        .add_member("Alpha", "alpha.example", "active", 1)
        .await;
    let keyless = site
        .app
        .add_member("Keyless", "keyless.example", "active", 1)
        .await;
    site.app.set_member_key(keyless, None).await;
    let (id, _) = approved_release(&site).await;
    disclose(&site).await;
    let smtp = site.app.smtp();
    let alpha = smtp.wait_for("security@alpha.example", "[EMBARGOED]").await;
    assert!(alpha.encrypted);
    assert_nothing_embargoed_in_clear(&alpha);
    let clear = smtp
        .wait_for("security@keyless.example", "[EMBARGOED]")
        .await;
    assert!(!clear.encrypted);
    assert_eq!(clear.wire().ctype.mimetype, "multipart/signed");
    assert!(
        clear.wire_decoded().contains(SECRET_LINE),
        "sent in clear, as configured"
    );
    site.app.outbox_idle().await;
    assert!(ledger_line(&site, id, "Alpha")
        .await
        .contains("sent, encrypted"));
    assert!(ledger_line(&site, id, "Keyless").await.contains("in clear"));
}

async fn a_key_that_stops_working_before_sending_holds_the_mail(backend: Backend) {
    let Some(site) = open_site(backend, &[("EDL_OUTBOX_WORKERS", "0")]).await else {
        return;
    };
    let alpha = site
        .app
        .add_member("Alpha", "alpha.example", "active", 1)
        .await;
    let (id, _) = approved_release(&site).await;
    let tick = disclose(&site).await;
    assert_eq!(tick.mailed, 1, "queued while the key worked");
    // The member's key is replaced by one that no longer works before the mail leaves.
    site.app
        .set_member_key(
            alpha,
            Some(&keys::generate("Wrong <other@alpha.example>").1),
        )
        .await;
    let transport = edl::mail::transport::Transport::smtp(
        &edl::config::Secret::new(site.app.smtp().url()),
        std::time::Duration::from_secs(5),
    )
    .expect("transport");
    let worker = site.app.worker("by-hand", transport);
    let pass = worker.pass(None).await.expect("pass");
    assert_eq!(pass.held, 1, "{pass:?}");
    let rows = site.app.outbox_rows().await;
    let held = rows
        .iter()
        .find(|r| r.template == distribution::EMBARGOED)
        .expect("the embargoed row");
    assert_eq!(held.status, OutboxStatus::Held);
    assert!(
        held.held_reason
            .as_deref()
            .is_some_and(|r| r.starts_with("no usable key") && r.contains("security@alpha.example")),
        "{:?}",
        held.held_reason
    );
    // The notice was queued in its place, and goes out.
    worker.pass(None).await.expect("pass");
    let notice = site
        .app
        .smtp()
        .wait_for(
            "security@alpha.example",
            "An embargoed mailing was withheld",
        )
        .await;
    assert_nothing_embargoed_in_clear(&notice);
    assert!(site
        .app
        .smtp()
        .to("security@alpha.example")
        .iter()
        .all(|m| !m.wire_decoded().contains(SECRET_LINE)));
    let line = ledger_line(&site, id, "Alpha").await;
    assert!(line.contains("no usable key"), "{line}");
    // Release managers are told, as at queueing.
    worker.pass(None).await.expect("pass");
    site.app
        .smtp()
        .wait_for("rm1@project.example", "without a usable key")
        .await;

    // Once the member stores a key that works, the held mailing goes out, encrypted.
    site.app
        .set_member_key(alpha, Some(&keys::public("security@alpha.example")))
        .await;
    let pass = worker.pass(None).await.expect("pass");
    assert_eq!(pass.sent, 1, "{pass:?}");
    let mail = site
        .app
        .smtp()
        .wait_for("security@alpha.example", TITLE)
        .await;
    assert!(mail.encrypted);
    let lines = ledger_lines(&site, id, "Alpha").await;
    assert!(
        lines.iter().any(|l| l.contains("sent, encrypted")),
        "{lines:#?}"
    );
    assert!(lines.iter().any(|l| l.contains("followed")), "{lines:#?}");
}

async fn a_cancellation_to_a_member_whose_key_broke_is_held_not_sent_in_clear(backend: Backend) {
    let Some(site) = open_site(backend, &[]).await else {
        return;
    };
    let alpha = site
        .app
        .add_member("Alpha", "alpha.example", "active", 1)
        .await;
    let (id, _) = approved_release(&site).await;
    disclose(&site).await;
    let smtp = site.app.smtp();
    smtp.wait_for("security@alpha.example", TITLE).await;
    // The member's key stops working; then the release is cancelled.
    site.app
        .set_member_key(
            alpha,
            Some(&keys::generate("Wrong <other@alpha.example>").1),
        )
        .await;
    let (ctx, planner) = (site.app.state.ctx.clone(), site.planner.clone());
    site.app
        .with_db(move |c| {
            release::cancel(c, &ctx, id, "Withdrawn: the fix was incomplete.", &planner)
                .map_err(|e| edl::db::DbError::Task(e.to_string()))
        })
        .await;
    site.app.outbox_idle().await;
    let cancellation = site
        .app
        .outbox_rows()
        .await
        .into_iter()
        .find(|r| r.template == "release_cancelled")
        .expect("the cancellation");
    assert_eq!(cancellation.status, OutboxStatus::Held);
    for message in smtp.to("security@alpha.example") {
        let clear = message.wire_decoded();
        assert!(
            !clear.contains(TITLE) && !clear.contains("incomplete"),
            "in clear: {clear}"
        );
    }
    // With a working key again, the cancellation goes out encrypted.
    site.app
        .set_member_key(alpha, Some(&keys::public("security@alpha.example")))
        .await;
    site.app.outbox_idle().await;
    let told = smtp.wait_for("security@alpha.example", "Cancelled").await;
    assert!(told.encrypted);
    assert!(told.text().contains("incomplete"));
}

async fn a_member_that_adds_a_key_gets_the_mailing_at_the_next_run(backend: Backend) {
    let Some(site) = open_site(backend, &[]).await else {
        return;
    };
    let member = site
        .app
        .add_member("Alpha", "alpha.example", "active", 1)
        .await;
    site.app.set_member_key(member, None).await;
    let (id, sha) = approved_release(&site).await;
    let first = disclose(&site).await;
    assert_eq!(first.mailed, 0, "nothing embargoed without a key");
    let smtp = site.app.smtp();
    smtp.wait_for(
        "security@alpha.example",
        "An embargoed mailing was withheld",
    )
    .await;
    // A second run before the key is fixed sends neither content nor a second notice.
    assert_eq!(disclose(&site).await.mailed, 0);
    site.app.outbox_idle().await;
    assert_eq!(smtp.to("security@alpha.example").len(), 1);

    // Once the key works, the next run sends the mailing, encrypted.
    site.app
        .set_member_key(member, Some(&keys::public("security@alpha.example")))
        .await;
    assert_eq!(disclose(&site).await.mailed, 1);
    let mail = smtp.wait_for("security@alpha.example", TITLE).await;
    assert!(mail.encrypted);
    let attached = mail.attachments();
    assert_eq!(attached.len(), 1);
    assert_eq!(patch::sha256_hex(&attached[0].1), sha);
    site.app.outbox_idle().await;
    let lines = ledger_lines(&site, id, "Alpha").await;
    assert_eq!(lines.len(), 2, "{lines:#?}");
    assert!(lines[0].contains("held: no usable key") && lines[0].contains("followed"));
    assert!(lines[1].contains("sent, encrypted"), "{lines:#?}");
}

/// A release to thousands of members has a ledger line for each; the page reads one page of
/// them, in member order. A notice on one page still knows that the mailing which followed it,
/// on the next page, went out.
async fn the_ledger_is_read_a_page_at_a_time(backend: Backend) {
    let Some(site) = open_site(backend, &[]).await else {
        return;
    };
    let alpha = site
        .app
        .add_member("Alpha", "alpha.example", "active", 1)
        .await;
    site.app
        .add_member("Bravo", "bravo.example", "active", 1)
        .await;
    site.app
        .add_member("Charlie", "charlie.example", "active", 1)
        .await;
    site.app.set_member_key(alpha, None).await;
    let (id, _) = approved_release(&site).await;
    assert_eq!(disclose(&site).await.mailed, 2);
    site.app
        .set_member_key(alpha, Some(&keys::public("security@alpha.example")))
        .await;
    assert_eq!(disclose(&site).await.mailed, 1);
    site.app.outbox_idle().await;

    let pages = site
        .app
        .with_db(move |c| {
            let now = Utc::now();
            (1..=5)
                .map(|page| distribution::ledger(c, id, now, page, 1))
                .collect::<Result<Vec<_>, _>>()
        })
        .await;
    let shown: Vec<(i64, Vec<&str>)> = pages
        .iter()
        .map(|p| {
            (
                p.page,
                p.lines.iter().map(|l| l.org_name.as_str()).collect(),
            )
        })
        .collect();
    assert_eq!(
        shown,
        vec![
            (1, vec!["Alpha"]),
            (2, vec!["Alpha"]),
            (3, vec!["Bravo"]),
            (4, vec!["Charlie"]),
            // A page past the end shows the last one.
            (4, vec!["Charlie"]),
        ]
    );
    assert!(pages.iter().all(|p| p.total == 4 && p.pages == 4));
    let notice = &pages[0].lines[0];
    assert!(
        notice
            .no_key
            .as_deref()
            .is_some_and(|why| why.contains("followed")),
        "{notice:?}"
    );
    let mailing = &pages[1].lines[0];
    assert_eq!(mailing.status, OutboxStatus::Sent);
    assert_eq!(mailing.encrypted, Some(true));
    assert!(mailing.no_key.is_none());
}
