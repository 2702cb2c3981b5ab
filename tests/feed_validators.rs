//! The public Atom feed and ICS calendar, checked by validators that share no code with the
//! service (tests/validators/check_feeds.py, run in its own Python virtualenv), with titles and
//! names chosen to need escaping and folding, and with a published and an announced release.

use std::path::{Path, PathBuf};
use std::process::Command;

use chrono::{DateTime, Utc};
use edl::accounts::Role;
use edl::domain::ReleaseKind;
use edl::releases::approval;
use edl::releases::distribution::{self, Tick};
use edl::releases::release::{self, Actor, AdvisoryForm, Plan, Upload};
use serde_json::Value;

use crate::helpers::smtp::SmtpServer;
use crate::helpers::{err, utc, validators, Backend, TestApp, PATCH};
use crate::on_both_backends;

on_both_backends!(the_feed_and_the_calendar_pass_independent_validators);

/// The virtualenv the validators are installed in, unless `EDL_TEST_VALIDATORS_VENV` names
/// another.
/// The virtualenv's Python with the feed validators; `None` to skip.
fn validator_python() -> Option<PathBuf> {
    validators::python_for("check_feeds.py", "feed validators", "")
}

fn validate(python: &Path, kind: &str, body: &[u8], extra: &[&str]) -> Value {
    let dir = tempfile::tempdir().expect("temporary folder");
    let file = dir.path().join(format!("document.{kind}"));
    std::fs::write(&file, body).expect("write the document");
    let out = Command::new(python)
        .arg(validators::scripts().join("check_feeds.py"))
        .arg(kind)
        .arg(&file)
        .args(extra)
        .output()
        .expect("run the validator");
    assert!(
        out.status.success(),
        "the {kind} validator refused the document (exit {:?}):\n{}\n--- document ---\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(body)
    );
    serde_json::from_slice(&out.stdout).expect("the validator's summary is JSON")
}

const PASSWORD: &str = "tangerine-kettle-orbit-42";

/// Markup, quotes, ICS separators and multi-octet characters, long enough to be folded.
const PUBLISHED_TITLE: &str =
    "Security release 1.9.5 & 1.8.6: <script>alert('x')</script>; \"quoted\", back\\slash";
const ANNOUNCED_TITLE: &str = "Sécurité 1.10.0 — l'été; évènements, «citations» et \
     caractères multi-octets: é—é—é—é—é—é—é—é—é—é—é—é—é—é—é—é—é—é—é—é—é—é—é—é—é";
const LIST_NAME: &str = "Tom & Jerry's <Mesh> security releases";
const PROJECT_NAME: &str = "Mesh; Proxy, \"Example\"";

/// Plans the Patch Tuesday release due after `now` with one advisory and one patch, and has a
/// second release manager approve it.
async fn approved_release(
    app: &TestApp,
    planner: &Actor,
    approver: &Actor,
    title: &str,
    now: DateTime<Utc>,
) -> release::Release {
    let calendar = app.settings.calendar();
    let (planner, approver, title) = (planner.clone(), approver.clone(), title.to_owned());
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
        let id = release::plan(c, &calendar, &plan, &planner, now).map_err(err)?;
        let advisory = AdvisoryForm {
            cve_id: "CVE-2026-31337".into(),
            severity: "high".into(),
            cvss_vector: String::new(),
            summary: "Authorization policy bypass with <crafted> paths & more.".into(),
            affected_versions: "1.9.0 to 1.9.4".into(),
            fixed_versions: "1.9.5".into(),
        }
        .parse()
        .expect("a valid advisory");
        release::add_advisory(c, id, &advisory, &planner).map_err(err)?;
        let upload = Upload {
            filename: "0001-normalize-paths.patch".into(),
            bytes: PATCH.as_bytes().to_vec(),
            release_line: "1.9.5".into(),
            upstream_id: None,
            is_security_fix: true,
        };
        release::add_patch(c, id, &upload, &planner).map_err(err)?;
        approval::approve(c, id, &approver).map_err(err)?;
        Ok(release::find(c, id)?.expect("release"))
    })
    .await
}

async fn distribute(app: &TestApp, at: DateTime<Utc>) -> Tick {
    let ctx = app.state.ctx.clone();
    let tick = app
        .with_db(move |c| distribution::distribute(c, &ctx, at).map_err(err))
        .await;
    app.state.mailer.wake_workers();
    tick
}

async fn the_feed_and_the_calendar_pass_independent_validators(backend: Backend) {
    let Some(python) = validator_python() else {
        return;
    };
    let smtp = SmtpServer::start().await;
    let url = smtp.url();
    let Some(app) = TestApp::spawn_with(
        backend,
        &[
            ("EDL_SMTP_URL", url.as_str()),
            ("EDL_SCHEDULER_INTERVAL", "1h"),
            ("EDL_LIST_NAME", LIST_NAME),
            ("EDL_PROJECT_NAME", PROJECT_NAME),
        ],
        None,
    )
    .await
    else {
        return;
    };
    let mut actors = Vec::new();
    for (email, name) in [
        ("rm1@project.example", "Rel One"),
        ("rm2@project.example", "Rel Two"),
    ] {
        let account_id = app
            .add_account(email, name, &[Role::ReleaseManager], PASSWORD)
            .await;
        actors.push(Actor {
            account_id,
            email: email.into(),
        });
    }
    let (planner, approver) = (&actors[0], &actors[1]);

    // One release announced and then published.
    let published = approved_release(&app, planner, approver, PUBLISHED_TITLE, Utc::now()).await;
    let at = utc(published.disclosure_at.expect("disclosure time")) + chrono::Duration::minutes(1);
    assert_eq!(distribute(&app, at).await.announced, 1);
    assert_eq!(
        distribute(
            &app,
            utc(published.release_at) + chrono::Duration::minutes(1)
        )
        .await
        .published,
        1
    );
    // One release for the Patch Tuesday after that, announced only.
    let after = utc(published.release_at) + chrono::Duration::days(1);
    let announced = approved_release(&app, planner, approver, ANNOUNCED_TITLE, after).await;
    let at = utc(announced.disclosure_at.expect("disclosure time")) + chrono::Duration::minutes(1);
    assert_eq!(distribute(&app, at).await.announced, 1);

    // The Atom feed, with the Content-Type a reader gets.
    let response = app.get("/feed.atom").await;
    assert_eq!(response.status(), 200);
    let content_type = response.headers()["content-type"]
        .to_str()
        .expect("ascii")
        .to_owned();
    // The validator decodes by this header, as readers do, so it must say UTF-8.
    assert_eq!(content_type, "application/atom+xml; charset=utf-8");
    let body = response.bytes().await.expect("feed");
    let feed = validate(&python, "atom", &body, &[&content_type]);
    assert_eq!(feed["title"], LIST_NAME, "{feed}");
    let entries = feed["entries"].as_array().expect("entries");
    let read: Vec<(String, String)> = entries
        .iter()
        .map(|e| {
            let id = e["id"].as_str().expect("id");
            let fragment = &id[id.find("/releases/").expect("release id")..];
            (
                fragment.to_owned(),
                e["title"].as_str().expect("title").to_owned(),
            )
        })
        .collect();
    // The list runs in UTC here, so the local day is the UTC day.
    let date = |at: chrono::NaiveDateTime| at.format("%A %-d %B %Y").to_string();
    // Newest first, and each title read back exactly as written, escaping undone.
    assert_eq!(
        read,
        [
            (
                format!("/releases/{}#announced", announced.id),
                format!(
                    "Security release planned: {ANNOUNCED_TITLE} on {}",
                    date(announced.release_at)
                )
            ),
            (
                format!("/releases/{}#published", published.id),
                format!("Security release published: {PUBLISHED_TITLE}")
            ),
            (
                format!("/releases/{}#announced", published.id),
                format!(
                    "Security release planned: {PUBLISHED_TITLE} on {}",
                    date(published.release_at)
                )
            ),
        ]
    );
    let text = String::from_utf8_lossy(&body);
    assert_eq!(
        text.matches("CVE-2026-31337").count(),
        1,
        "the advisory appears once, in the publication only:\n{text}"
    );

    // The ICS calendar.
    let response = app.get("/calendar.ics").await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["content-type"],
        "text/calendar; charset=utf-8"
    );
    let body = response.bytes().await.expect("calendar");
    let calendar = validate(&python, "ics", &body, &[]);
    let host = app.settings.base_url.host_str().expect("host").to_owned();
    let mut events: Vec<(String, String, String)> = calendar["events"]
        .as_array()
        .expect("events")
        .iter()
        .map(|e| {
            (
                e["uid"].as_str().expect("uid").to_owned(),
                e["summary"].as_str().expect("summary").to_owned(),
                e["start"].as_str().expect("start").to_owned(),
            )
        })
        .collect();
    events.sort();
    let mut expected: Vec<(String, String, String)> = [&published, &announced]
        .iter()
        .map(|r| {
            (
                format!("release-{}@{host}", r.id),
                r.title.clone(),
                utc(r.release_at).to_rfc3339(),
            )
        })
        .collect();
    expected.sort();
    assert_eq!(events, expected);
    let text = String::from_utf8_lossy(&body);
    assert!(
        !text.contains("CVE-"),
        "no advisory in the calendar:\n{text}"
    );
}
