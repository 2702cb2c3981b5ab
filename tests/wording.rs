//! What people read: where leaks are reported, how a release and its lines are named, and the
//! reasons of a rejection, in the mail that really leaves and on the pages.

use chrono::{DateTime, Utc};
use edl::accounts::Role;
use edl::domain::ReleaseKind;
use edl::releases::release::{self, Actor, AdvisoryForm, Plan};
use edl::releases::{approval, distribution};

use crate::helpers::smtp::Received;
use crate::helpers::{Backend, Browser, TestApp};
use crate::on_both_backends;

on_both_backends!(
    leaks_are_reported_to_the_security_contact_not_the_sending_address,
    a_rejection_mail_gives_each_reason_on_its_own_line,
);

const PASSWORD: &str = "tangerine-kettle-orbit-42";
const FROM: &str = "edl@example.org";
const CONTACT: &str = "leaks@example.org";

/// The text/html part, decoded.
fn html_of(mail: &Received) -> String {
    fn find(part: &mailparse::ParsedMail<'_>) -> Option<String> {
        if part.subparts.is_empty() {
            return (part.ctype.mimetype == "text/html")
                .then(|| part.get_body().unwrap_or_default());
        }
        part.subparts.iter().find_map(find)
    }
    find(&mail.parsed()).unwrap_or_default()
}

/// Line breaks and runs of spaces as single spaces, as a sentence reads.
fn prose(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn actor(id: i64, email: &str) -> Actor {
    Actor {
        account_id: id,
        email: email.to_owned(),
    }
}

/// Plans, fills and approves a Patch Tuesday release of `title` for one line, and mails it
/// at its early-disclosure moment.
async fn mail_a_release(app: &TestApp, title: &str, lines: &[&str]) {
    let planner = actor(
        app.add_account(
            "rm1@project.example",
            "Rel One",
            &[Role::ReleaseManager],
            PASSWORD,
        )
        .await,
        "rm1@project.example",
    );
    let approver = actor(
        app.add_account(
            "rm2@project.example",
            "Rel Two",
            &[Role::ReleaseManager],
            PASSWORD,
        )
        .await,
        "rm2@project.example",
    );
    let calendar = app.settings.calendar();
    let plan = Plan {
        kind: ReleaseKind::PatchTuesday,
        title: title.to_owned(),
        release_lines: lines.iter().map(|l| (*l).to_owned()).collect(),
        patch_tuesday: None,
        release_at: None,
        upstream_id: None,
        notice_hours: 0,
        members_may_deploy: false,
        notes: String::new(),
    };
    let task = |e: release::ReleaseError| edl::db::DbError::Task(e.to_string());
    let id = app
        .with_db(move |c| {
            let id = release::plan(c, &calendar, &plan, &planner, Utc::now()).map_err(task)?;
            let advisory = AdvisoryForm {
                cve_id: "CVE-2026-31337".into(),
                severity: "high".into(),
                cvss_vector: String::new(),
                summary: "Authorization policy bypass with crafted paths.".into(),
                affected_versions: "1.9.0 to 1.9.5".into(),
                fixed_versions: "1.9.6".into(),
            }
            .parse()
            .expect("a valid advisory");
            release::add_advisory(c, id, &advisory, &planner).map_err(task)?;
            approval::approve(c, id, &approver).map_err(task)?;
            Ok(release::find(c, id)?.expect("the release"))
        })
        .await;
    let disclosure: DateTime<Utc> = id
        .disclosure_at
        .expect("an early-disclosure time")
        .and_utc();
    let ctx = app.state.ctx.clone();
    let tick = app
        .with_db(move |c| {
            distribution::distribute(c, &ctx, disclosure + chrono::Duration::minutes(1))
                .map_err(task)
        })
        .await;
    assert_eq!(tick.mailed, 1);
    app.state.mailer.wake_workers();
}

async fn leaks_are_reported_to_the_security_contact_not_the_sending_address(backend: Backend) {
    let from = format!("Example EDL <{FROM}>");
    let Some(app) = TestApp::spawn_with_smtp(
        backend,
        &[
            ("EDL_MAIL_FROM", from.as_str()),
            ("EDL_SECURITY_CONTACT", CONTACT),
            ("EDL_PROJECT_NAME", "Example"),
            ("EDL_SCHEDULER_INTERVAL", "1h"),
        ],
    )
    .await
    else {
        return;
    };
    app.add_member("Alpha", "alpha.example", "active", 1).await;
    mail_a_release(&app, "Security release 1.9.6", &["1.9.6"]).await;

    let mail = app
        .smtp()
        .wait_for("security@alpha.example", "[EMBARGOED]")
        .await;
    assert!(mail.encrypted, "embargoed mail leaves encrypted");
    // It is sent from the list's address...
    assert!(
        mail.header("From").is_some_and(|f| f.contains(FROM)),
        "{:?}",
        mail.header("From")
    );
    // ...and says to report a leak to the security contact, in both parts.
    let text = mail.text();
    let html = html_of(&mail);
    assert!(
        prose(&text).contains(&format!("Report it at once to {CONTACT}: what leaked")),
        "{text}"
    );
    assert!(
        html.contains(&format!("<a href=\"mailto:{CONTACT}\"")),
        "{html}"
    );
    assert!(!text.contains(FROM) && !html.contains(FROM), "{text}");
    // One line, named once: not "a security release, Security release 1.9.6", not "lines".
    let sentence = prose(&text);
    assert!(
        sentence.contains("Example will publish Security release 1.9.6 on")
            && sentence.contains("for release line 1.9 (version 1.9.6)."),
        "{sentence}"
    );
    assert!(!sentence.contains("release lines"), "{sentence}");
    assert!(
        !sentence
            .to_lowercase()
            .contains("a security release, security release"),
        "{sentence}"
    );

    // The policy page names the same contact, and not the sending address.
    let page = app.get("/embargo-policy").await;
    assert_eq!(page.status(), 200);
    let page = page.text().await.expect("page");
    assert!(
        page.contains(&format!("<a href=\"mailto:{CONTACT}\">{CONTACT}</a>")),
        "{page}"
    );
    assert!(!page.contains(FROM), "{page}");
    app.outbox_idle().await;
}

async fn a_rejection_mail_gives_each_reason_on_its_own_line(backend: Backend) {
    let Some(app) =
        TestApp::spawn_with_smtp(backend, &[("EDL_PUBLIC_POST_RATE_LIMIT", "1000/1m")]).await
    else {
        return;
    };
    let smtp = app.smtp();
    let vendor = Browser::open(&app).await;
    let fields = crate::membership::application("Edge Co", "edge.example");
    let fields: Vec<(&str, &str)> = fields
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    assert_eq!(vendor.post("/apply", &fields).await.status(), 303);
    let confirm = smtp
        .wait_for("security@edge.example", "Confirm the security alias")
        .await
        .link("/apply/confirm/")
        .expect("a confirmation link");
    let confirmed = vendor.post(&confirm, &[]).await;
    assert!(confirmed
        .text()
        .await
        .expect("page")
        .contains("Alias confirmed"));
    let id: i64 = app
        .with_db(|c| {
            use diesel::prelude::*;
            use edl::db::schema::applications;
            Ok(applications::table.select(applications::id).first(c)?)
        })
        .await;

    let reasons = [
        "The evidence pages describe internal use only.",
        "The alias reaches one person.\nGive an address the security team reads.",
    ];
    for (n, reason) in reasons.iter().enumerate() {
        let email = format!("reviewer{n}@wg.example");
        app.add_account(&email, "Reviewer", &[Role::Reviewer], PASSWORD)
            .await;
        let reviewer = Browser::open(&app).await;
        reviewer.sign_in(&email, PASSWORD).await;
        let voted = reviewer
            .post(
                &format!("/review/applications/{id}/vote"),
                &[("vote", "reject"), ("reason", reason)],
            )
            .await;
        assert_eq!(voted.status(), 303);
    }

    let mail = smtp.wait_for("security@edge.example", "not approved").await;
    let text = mail.text().replace("\r\n", "\n");
    assert!(
        text.contains(
            "The reasons the working group gave:\n\n\
             - The evidence pages describe internal use only.\n\
             - The alias reaches one person.\n  Give an address the security team reads.\n"
        ),
        "{text}"
    );
    let html = html_of(&mail).replace("\r\n", "\n");
    let items: Vec<&str> = html
        .split("<li ")
        .skip(1)
        .filter(|item| item.contains("white-space:pre-line"))
        .collect();
    assert_eq!(items.len(), 2, "{html}");
    assert!(
        items[0].contains(">The evidence pages describe internal use only.</li>"),
        "{html}"
    );
    assert!(
        items[1].contains(">The alias reaches one person.\nGive an address"),
        "{html}"
    );
    app.outbox_idle().await;
}
