//! The outbox page: release managers and admins see queued, failed and held mail with its
//! reasons, filter it, and send a failed message again, once, through the same last check
//! before sending; everyone else is kept out, and nothing of a message's content is shown.

use std::time::Duration;

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use edl::accounts::Role;
use edl::audit;
use edl::db::schema::outbox as outbox_table;
use edl::domain::{OutboxStatus, ReleaseKind};
use edl::mail::outbox::{self, OutboxRow};
use edl::releases::approval;
use edl::releases::distribution;
use edl::releases::release::{self, Actor, AdvisoryForm, Plan, Upload};

use crate::helpers::smtp::Received;
use crate::helpers::{eventually, Backend, Browser, TestApp};
use crate::on_both_backends;

const PASSWORD: &str = "tangerine-kettle-orbit-42";
const WAIT: Duration = Duration::from_secs(20);
const REFUSAL: &str = "550 5.7.1 refused by policy";

on_both_backends!(
    a_refused_message_is_listed_with_its_reason_and_sent_again_exactly_once,
    filters_counts_and_pages_come_from_the_database,
    only_a_failed_message_is_sent_again_and_only_by_release_managers_and_admins,
    the_check_before_sending_still_holds_back_embargoed_mail_sent_again,
);

async fn signed_in(app: &TestApp, email: &str, roles: &[Role]) -> Browser {
    app.add_account(email, "Someone", roles, PASSWORD).await;
    let browser = Browser::open(app).await;
    browser.sign_in(email, PASSWORD).await;
    browser
}

async fn row(app: &TestApp, id: i64) -> OutboxRow {
    app.with_db(move |c| outbox::find(c, id))
        .await
        .expect("the outbox row")
}

async fn page(browser: &Browser, path: &str) -> String {
    let response = browser.get(path).await;
    assert_eq!(response.status(), 200, "GET {path}");
    response.text().await.expect("the page")
}

/// The lines of the listing: one `<tr id="message-N">` per message shown.
fn listed(html: &str) -> Vec<i64> {
    html.split("<tr id=\"message-")
        .skip(1)
        .filter_map(|rest| rest.split('"').next()?.parse().ok())
        .collect()
}

fn resend_path(id: i64) -> String {
    format!("/admin/outbox/{id}/resend")
}

async fn sent_again_entries(app: &TestApp) -> Vec<audit::Entry> {
    app.with_db(|c| {
        let filter = audit::Filter {
            action: Some("mail.sent-again".to_owned()),
            ..audit::Filter::default()
        };
        Ok(audit::list(c, &filter, 0, 100)?.0)
    })
    .await
}

/// Sets a row's state directly, as the workers would have left it.
async fn set_state(
    app: &TestApp,
    id: i64,
    status: OutboxStatus,
    last_error: Option<&str>,
    held_reason: Option<&str>,
) {
    let (last_error, held_reason) = (
        last_error.map(str::to_owned),
        held_reason.map(str::to_owned),
    );
    app.with_db(move |c| {
        diesel::update(outbox_table::table.filter(outbox_table::id.eq(id)))
            .set((
                outbox_table::status.eq(status),
                outbox_table::attempts.eq(1),
                outbox_table::last_error.eq(last_error),
                outbox_table::held_reason.eq(held_reason),
            ))
            .execute(c)?;
        Ok(())
    })
    .await;
}

/// Messages that crossed the wire with this Message-ID.
fn copies(received: &[Received], message_id: &str) -> usize {
    received
        .iter()
        .filter(|m| {
            m.wire_header("Message-ID").as_deref() == Some(message_id)
                || m.header("Message-ID").as_deref() == Some(message_id)
        })
        .count()
}

async fn a_refused_message_is_listed_with_its_reason_and_sent_again_exactly_once(backend: Backend) {
    let Some(app) = TestApp::spawn_with_smtp(backend, &[]).await else {
        return;
    };
    let smtp = app.smtp();
    let manager = signed_in(&app, "rm@project.example", &[Role::ReleaseManager]).await;

    // The server refuses the message for good at the end of DATA.
    smtp.reply_to_next_data(&[REFUSAL]);
    let id = app.enqueue_test_mail(&["security@vendor.example"]).await[0];
    let failed = eventually(WAIT, "the message to fail", || async {
        Some(row(&app, id).await).filter(|r| r.status == OutboxStatus::Failed)
    })
    .await;
    assert!(smtp.received().is_empty());

    let html = page(&manager, "/admin/outbox").await;
    assert_eq!(listed(&html), vec![id]);
    assert!(html.contains("5.7.1 refused by policy"), "{html}");
    assert!(html.contains("security@vendor.example"));
    assert!(html.contains(&format!("action=\"{}\"", resend_path(id))));
    // Neither the subject nor the body is shown.
    assert!(
        !html.contains(&failed.subject),
        "the subject is on the page"
    );
    assert!(!html.contains("requested by the test suite"));

    let response = manager.post(&resend_path(id), &[]).await;
    assert_eq!(response.status(), 303);
    let location = response
        .headers()
        .get("location")
        .and_then(|l| l.to_str().ok())
        .expect("a redirect")
        .to_owned();
    assert!(location.starts_with("/admin/outbox?"), "{location}");
    let html = page(&manager, &location).await;
    assert!(
        html.contains(&format!("Message #{id} is queued again")),
        "{html}"
    );

    eventually(WAIT, "the message at the SMTP server", || async {
        (copies(&smtp.received(), &failed.message_id) == 1).then_some(())
    })
    .await;
    app.outbox_idle().await;
    let sent = row(&app, id).await;
    assert_eq!(sent.status, OutboxStatus::Sent);
    assert_eq!(sent.attempts, 1, "attempts are counted afresh");
    assert_eq!(smtp.received().len(), 1);
    assert_eq!(smtp.received()[0].rcpt_to, vec!["security@vendor.example"]);

    let entries = sent_again_entries(&app).await;
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0].actor, "rm@project.example");
    assert_eq!(entries[0].subject, format!("outbox:{id}"));
    let details: serde_json::Value = serde_json::from_str(&entries[0].details).expect("JSON");
    assert_eq!(details["recipient"], "security@vendor.example");
    assert_eq!(details["template"], "test_message");
    assert_eq!(details["attempts_before"], 1);

    // A sent message is never sent again: refused, with the reason, and nothing leaves.
    let response = manager.post(&resend_path(id), &[]).await;
    assert_eq!(response.status(), 409);
    let html = response.text().await.expect("the page");
    assert!(html.contains("it was sent already"), "{html}");
    app.outbox_idle().await;
    assert_eq!(smtp.received().len(), 1);
    assert_eq!(row(&app, id).await.status, OutboxStatus::Sent);
    assert_eq!(sent_again_entries(&app).await.len(), 1);
    let html = page(&manager, "/admin/outbox?status=sent").await;
    assert_eq!(listed(&html), vec![id]);
    assert!(
        !html.contains(&resend_path(id)),
        "a sent message offers no resend"
    );

    // Two people pressing "send again" at once: one wins, the other is refused, one copy.
    smtp.reply_to_next_data(&[REFUSAL]);
    let second = app.enqueue_test_mail(&["psirt@vendor.example"]).await[0];
    let failed = eventually(WAIT, "the second message to fail", || async {
        Some(row(&app, second).await).filter(|r| r.status == OutboxStatus::Failed)
    })
    .await;
    let path = resend_path(second);
    let (a, b) = tokio::join!(manager.post(&path, &[]), manager.post(&path, &[]));
    let mut statuses = [a.status().as_u16(), b.status().as_u16()];
    statuses.sort_unstable();
    assert_eq!(statuses, [303, 409]);
    eventually(WAIT, "the second message at the SMTP server", || async {
        (copies(&smtp.received(), &failed.message_id) == 1).then_some(())
    })
    .await;
    app.outbox_idle().await;
    assert_eq!(copies(&smtp.received(), &failed.message_id), 1);
    assert_eq!(sent_again_entries(&app).await.len(), 2);
}

async fn filters_counts_and_pages_come_from_the_database(backend: Backend) {
    let Some(app) = TestApp::spawn_with(backend, &[("EDL_OUTBOX_WORKERS", "0")], None).await else {
        return;
    };
    app.expect_undone_mail("no worker runs: the test sets each message's state itself");
    let manager = signed_in(&app, "rm@project.example", &[Role::ReleaseManager]).await;
    let bulk: Vec<String> = (0..55)
        .map(|i| format!("security@bulk{i}.example"))
        .collect();
    let refs: Vec<&str> = bulk.iter().map(String::as_str).collect();
    let bulk_ids = app.enqueue_test_mail(&refs).await;
    for id in &bulk_ids {
        set_state(
            &app,
            *id,
            OutboxStatus::Failed,
            Some("550 5.1.1 no such mailbox"),
            None,
        )
        .await;
    }
    let ids = app
        .enqueue_test_mail(&[
            "Security@Alpha.example",
            "psirt@beta.example",
            "security@gamma.example",
            "sec_ops@delta.example",
        ])
        .await;
    let (alpha, beta, gamma, delta) = (ids[0], ids[1], ids[2], ids[3]);
    set_state(&app, alpha, OutboxStatus::Failed, Some(REFUSAL), None).await;
    set_state(
        &app,
        beta,
        OutboxStatus::Held,
        None,
        Some("the release was cancelled"),
    )
    .await;
    set_state(&app, gamma, OutboxStatus::Sent, None, None).await;
    app.with_db(move |c| {
        diesel::update(outbox_table::table.filter(outbox_table::id.eq(beta)))
            .set(outbox_table::template.eq("review_reminder"))
            .execute(c)?;
        Ok(())
    })
    .await;
    // The template filter offers each template in use once, in order.
    assert_eq!(
        app.with_db(outbox::templates_in_use).await,
        vec!["review_reminder", "test_message"]
    );

    // By default: what needs attention (queued, failed, held), newest first, 50 to a page.
    let html = page(&manager, "/admin/outbox").await;
    let first = listed(&html);
    assert_eq!(first.len(), 50);
    assert_eq!(&first[..3], &[delta, beta, alpha]);
    assert!(!first.contains(&gamma), "a sent message needs no attention");
    for count in [
        "Needs attention (58)",
        "Queued (1)",
        "Sending (0)",
        "Sent (1)",
        "Failed (56)",
        "Held (1)",
        "All (59)",
    ] {
        assert!(html.contains(count), "{count} missing");
    }
    assert!(html.contains("1–50 of 58"));
    assert!(html.contains("the release was cancelled"));
    assert!(html.contains("5.7.1 refused by policy"));
    assert!(!html.contains("Test message"), "a subject is on the page");
    assert!(
        !html.contains("requested by the test suite"),
        "a body is on the page"
    );
    assert!(html.contains("href=\"/admin/outbox?page=2\""));
    let second = page(&manager, "/admin/outbox?page=2").await;
    assert_eq!(
        listed(&second),
        bulk_ids[..8].iter().rev().copied().collect::<Vec<_>>()
    );
    assert!(second.contains("51–58 of 58"));
    // A page past the end shows the last one.
    assert_eq!(
        listed(&page(&manager, "/admin/outbox?page=99").await),
        listed(&second)
    );

    // One status; every status.
    assert_eq!(
        listed(&page(&manager, "/admin/outbox?status=sent").await),
        vec![gamma]
    );
    assert_eq!(
        listed(&page(&manager, "/admin/outbox?status=held").await),
        vec![beta]
    );
    assert_eq!(
        listed(&page(&manager, "/admin/outbox?status=queued").await),
        vec![delta]
    );
    let all = page(&manager, "/admin/outbox?status=all&page=1").await;
    assert_eq!(&listed(&all)[..4], &[delta, gamma, beta, alpha]);

    // A part of the address, in any case; its wildcards are taken as they are.
    let html = page(&manager, "/admin/outbox?recipient=ALPHA").await;
    assert_eq!(listed(&html), vec![alpha]);
    assert!(html.contains("Needs attention (1)") && html.contains("Failed (1)"));
    assert!(
        html.contains("value=\"ALPHA\""),
        "the filter keeps what was typed"
    );
    assert_eq!(
        listed(&page(&manager, "/admin/outbox?recipient=_").await),
        vec![delta]
    );
    let none = page(&manager, "/admin/outbox?recipient=%25&status=all").await;
    assert!(listed(&none).is_empty() && none.contains("No messages match."));

    // A template, combined with a status.
    assert_eq!(
        listed(&page(&manager, "/admin/outbox?template=review_reminder").await),
        vec![beta]
    );
    assert!(listed(
        &page(
            &manager,
            "/admin/outbox?template=review_reminder&status=failed"
        )
        .await
    )
    .is_empty());
    assert_eq!(
        listed(
            &page(
                &manager,
                "/admin/outbox?template=test_message&recipient=gamma&status=all"
            )
            .await
        ),
        vec![gamma]
    );

    // A release with no mail lists nothing; a value that is not one is refused beside its field.
    assert!(listed(&page(&manager, "/admin/outbox?release=4242&status=all").await).is_empty());
    let response = manager.get("/admin/outbox?release=x&status=nonsense").await;
    assert_eq!(response.status(), 422);
    let html = response.text().await.expect("page");
    assert!(html.contains("Choose a release from the list."));
    assert!(html.contains("Choose a status from the list."));
}

async fn only_a_failed_message_is_sent_again_and_only_by_release_managers_and_admins(
    backend: Backend,
) {
    let Some(app) = TestApp::spawn_with(backend, &[("EDL_OUTBOX_WORKERS", "0")], None).await else {
        return;
    };
    app.expect_undone_mail("no worker runs: a message sent again stays queued");
    let ids = app
        .enqueue_test_mail(&[
            "security@alpha.example",
            "security@beta.example",
            "security@delta.example",
        ])
        .await;
    let (failed, held, queued) = (ids[0], ids[1], ids[2]);
    set_state(&app, failed, OutboxStatus::Failed, Some(REFUSAL), None).await;
    set_state(
        &app,
        held,
        OutboxStatus::Held,
        None,
        Some("the member is no longer active"),
    )
    .await;
    let manager = signed_in(&app, "rm@project.example", &[Role::ReleaseManager]).await;

    // Held and queued messages are refused with the reason, and stay as they were.
    let response = manager.post(&resend_path(held), &[]).await;
    assert_eq!(response.status(), 409);
    let html = response.text().await.expect("page");
    assert!(
        html.contains("held back on purpose (the member is no longer active)"),
        "{html}"
    );
    assert!(listed(&html).contains(&held), "the page is shown again");
    let response = manager.post(&resend_path(queued), &[]).await;
    assert_eq!(response.status(), 409);
    assert!(response
        .text()
        .await
        .expect("page")
        .contains("already queued"));
    assert_eq!(manager.post(&resend_path(987_654), &[]).await.status(), 404);
    assert_eq!(row(&app, held).await.status, OutboxStatus::Held);
    assert_eq!(row(&app, queued).await.attempts, 0);

    // Without the CSRF token, or with another browser's, nothing happens.
    let response = manager
        .post_raw(&resend_path(failed), &[("status", "")])
        .await;
    assert_eq!(response.status(), 403);
    let response = manager
        .post_raw(
            &resend_path(failed),
            &[("csrf_token", "not-this-browsers-token")],
        )
        .await;
    assert_eq!(response.status(), 403);
    assert_eq!(row(&app, failed).await.status, OutboxStatus::Failed);

    // Reviewers, approvers and strangers neither see the page nor send anything again.
    for (email, role) in [
        ("reviewer@project.example", Role::Reviewer),
        ("approver@project.example", Role::Approver),
    ] {
        let browser = signed_in(&app, email, &[role]).await;
        assert_eq!(browser.get("/admin/outbox").await.status(), 403, "{email}");
        let response = browser.post(&resend_path(failed), &[]).await;
        assert_eq!(response.status(), 403, "{email}");
    }
    let stranger = Browser::open(&app).await;
    let response = stranger.get("/admin/outbox").await;
    assert_eq!(response.status(), 303);
    assert_eq!(stranger.post(&resend_path(failed), &[]).await.status(), 401);
    assert_eq!(row(&app, failed).await.status, OutboxStatus::Failed);
    assert!(sent_again_entries(&app).await.is_empty());

    // An admin may, and the page's own form carries what it needs, filters included.
    let admin = signed_in(&app, "admin@project.example", &[Role::Admin]).await;
    let html = page(&admin, "/admin/outbox?status=failed&recipient=alpha").await;
    assert_eq!(listed(&html), vec![failed]);
    let response = admin
        .post(
            &resend_path(failed),
            &[("status", "failed"), ("recipient", "alpha"), ("page", "1")],
        )
        .await;
    assert_eq!(response.status(), 303);
    let location = response
        .headers()
        .get("location")
        .and_then(|l| l.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    assert_eq!(
        location,
        format!("/admin/outbox?status=failed&recipient=alpha&notice=sent-again&id={failed}")
    );
    let requeued = row(&app, failed).await;
    assert_eq!(requeued.status, OutboxStatus::Queued);
    assert_eq!(requeued.attempts, 0);
    assert!(requeued.next_attempt_at <= app.clock.now_naive());
    let entries = sent_again_entries(&app).await;
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0].actor, "admin@project.example");
    // The admin index and the release managers' list lead here.
    assert!(page(&admin, "/admin")
        .await
        .contains("href=\"/admin/outbox\""));
    assert!(page(&manager, "/manage/releases")
        .await
        .contains("href=\"/admin/outbox\""));
}

const PROJECT_PATCH: &str = "From 1111111111111111111111111111111111111111 Mon Sep 17 00:00:00 2001
From: Pat Maintainer <pat@project.example>
Date: Tue, 10 Nov 2026 10:00:00 +0000
Subject: [PATCH] Normalize paths before authorization

---
 pilot/pkg/security/authz/path.go | 2 +-
 1 file changed, 1 insertion(+), 1 deletion(-)

diff --git a/pilot/pkg/security/authz/path.go b/pilot/pkg/security/authz/path.go
index 1111111..2222222 100644
--- a/pilot/pkg/security/authz/path.go
+++ b/pilot/pkg/security/authz/path.go
@@ -1,3 +1,3 @@
 package authz
-func normalize(p string) string { return p }
+func normalize(p string) string { return path.Clean(p) }
";

const SUMMARY: &str = "Authorization policy bypass with crafted paths.";

/// Plans, fills and approves the next Patch Tuesday release; returns its id and when members
/// are mailed.
async fn approved_release(
    app: &TestApp,
    planner: &Actor,
    approver: &Actor,
) -> (i64, DateTime<Utc>) {
    let calendar = app.settings.calendar();
    let (planner, approver) = (planner.clone(), approver.clone());
    let id = app
        .with_db(move |c| {
            let fail = |e: release::ReleaseError| edl::db::DbError::Task(e.to_string());
            let plan = Plan {
                kind: ReleaseKind::PatchTuesday,
                title: "Security release 1.9.5".into(),
                release_lines: vec!["1.9.5".into()],
                patch_tuesday: None,
                release_at: None,
                upstream_id: None,
                notice_hours: 0,
                members_may_deploy: false,
                notes: String::new(),
            };
            let id = release::plan(c, &calendar, &plan, &planner, Utc::now()).map_err(fail)?;
            let advisory = AdvisoryForm {
                cve_id: "CVE-2026-31337".into(),
                severity: "high".into(),
                cvss_vector: String::new(),
                summary: SUMMARY.into(),
                affected_versions: "1.9.0 to 1.9.4".into(),
                fixed_versions: "1.9.5".into(),
            }
            .parse()
            .expect("a valid advisory");
            release::add_advisory(c, id, &advisory, &planner).map_err(fail)?;
            let upload = Upload {
                filename: "0001-normalize-paths.patch".into(),
                bytes: PROJECT_PATCH.as_bytes().to_vec(),
                release_line: "1.9.5".into(),
                upstream_id: None,
                is_security_fix: true,
            };
            release::add_patch(c, id, &upload, &planner).map_err(fail)?;
            approval::approve(c, id, &approver).map_err(fail)?;
            Ok(id)
        })
        .await;
    let disclosure = app
        .with_db(move |c| Ok(release::find(c, id)?.expect("release").disclosure_at))
        .await
        .expect("a disclosure time");
    (id, disclosure.and_utc())
}

async fn the_check_before_sending_still_holds_back_embargoed_mail_sent_again(backend: Backend) {
    let Some(app) = TestApp::spawn_with_smtp(backend, &[("EDL_SCHEDULER_INTERVAL", "1h")]).await
    else {
        return;
    };
    let smtp = app.smtp();
    let planner_id = app
        .add_account(
            "rm1@project.example",
            "Rel One",
            &[Role::ReleaseManager],
            PASSWORD,
        )
        .await;
    let approver_id = app
        .add_account(
            "rm2@project.example",
            "Rel Two",
            &[Role::ReleaseManager],
            PASSWORD,
        )
        .await;
    let manager = Browser::open(&app).await;
    manager.sign_in("rm1@project.example", PASSWORD).await;
    let admin = signed_in(&app, "admin@project.example", &[Role::Admin]).await;
    let mut members = Vec::new();
    for domain in ["alpha", "beta", "gamma", "delta"] {
        let id = app
            .add_member(
                &format!("Org {domain}"),
                &format!("{domain}.example"),
                "active",
                1,
            )
            .await;
        members.push(id);
    }
    let (release_id, disclosure) = approved_release(
        &app,
        &Actor {
            account_id: planner_id,
            email: "rm1@project.example".into(),
        },
        &Actor {
            account_id: approver_id,
            email: "rm2@project.example".into(),
        },
    )
    .await;

    // The server refuses the embargoed mailing to every member for good.
    smtp.reply_to_every_data(Some(REFUSAL));
    let ctx = app.state.ctx.clone();
    app.with_db(move |c| {
        distribution::distribute(c, &ctx, disclosure + chrono::Duration::minutes(1))
            .map_err(|e| edl::db::DbError::Task(e.to_string()))
    })
    .await;
    app.state.mailer.wake_workers();
    let embargoed = eventually(WAIT, "the four embargoed messages to fail", || async {
        let rows: Vec<OutboxRow> = app
            .outbox_rows()
            .await
            .into_iter()
            .filter(|r| r.template == distribution::EMBARGOED)
            .collect();
        (rows.len() == 4 && rows.iter().all(|r| r.status == OutboxStatus::Failed)).then_some(rows)
    })
    .await;
    app.outbox_idle().await;
    smtp.reply_to_every_data(None);
    let of = |member: i64| {
        embargoed
            .iter()
            .find(|r| r.member_id == Some(member))
            .expect("the member's embargoed message")
            .clone()
    };
    let (alpha, beta, gamma, delta) = (
        of(members[0]),
        of(members[1]),
        of(members[2]),
        of(members[3]),
    );

    // The release's mail on the page: its reasons, the release, and none of its content.
    let html = page(
        &manager,
        &format!("/admin/outbox?release={release_id}&status=failed"),
    )
    .await;
    let mut shown = listed(&html);
    shown.sort_unstable();
    let mut expected: Vec<i64> = embargoed.iter().map(|r| r.id).collect();
    expected.sort_unstable();
    assert_eq!(shown, expected);
    assert!(html.contains("Security release 1.9.5"));
    for secret in [
        "CVE-2026-31337",
        SUMMARY,
        "normalize-paths",
        "path.Clean",
        &alpha.subject,
    ] {
        assert!(!html.contains(secret), "{secret} is on the outbox page");
    }

    // Sent again while nothing has changed, it leaves, still encrypted to the member's key.
    assert_eq!(
        manager.post(&resend_path(alpha.id), &[]).await.status(),
        303
    );
    eventually(WAIT, "alpha's embargoed mail at the server", || async {
        (copies(&smtp.received(), &alpha.message_id) == 1).then_some(())
    })
    .await;
    let delivered = smtp
        .to("security@alpha.example")
        .into_iter()
        .find(|m| m.wire_header("Message-ID").as_deref() == Some(alpha.message_id.as_str()))
        .expect("alpha's copy");
    assert!(delivered.encrypted);

    // A suspended and a removed member: sent again, the check before sending holds it back.
    for (member, path) in [(members[1], "suspend"), (members[2], "remove")] {
        let response = admin
            .post(
                &format!("/admin/members/{member}/{path}"),
                &[
                    ("reason", "Leaked an earlier advisory."),
                    ("confirm", "yes"),
                ],
            )
            .await;
        assert_eq!(response.status(), 303, "{path}");
    }
    for message in [&beta, &gamma] {
        assert_eq!(
            manager.post(&resend_path(message.id), &[]).await.status(),
            303
        );
        let held = eventually(WAIT, "the message held back", || async {
            Some(row(&app, message.id).await).filter(|r| r.status == OutboxStatus::Held)
        })
        .await;
        assert_eq!(
            held.held_reason.as_deref(),
            Some("the member is no longer active")
        );
    }

    // A cancelled release: the same.
    let response = manager
        .post(
            &format!("/manage/releases/{release_id}/cancel"),
            &[("reason", "Fixed another way."), ("confirm", "yes")],
        )
        .await;
    assert_eq!(response.status(), 303);
    assert_eq!(
        manager.post(&resend_path(delta.id), &[]).await.status(),
        303
    );
    let held = eventually(WAIT, "delta's message held back", || async {
        Some(row(&app, delta.id).await).filter(|r| r.status == OutboxStatus::Held)
    })
    .await;
    assert_eq!(
        held.held_reason.as_deref(),
        Some("the release was cancelled")
    );

    app.outbox_idle().await;
    let received = smtp.received();
    assert_eq!(copies(&received, &alpha.message_id), 1);
    for message in [&beta, &gamma, &delta] {
        assert_eq!(
            copies(&received, &message.message_id),
            0,
            "{}",
            message.recipient
        );
        assert!(
            smtp.to(&message.recipient).iter().all(|m| !m
                .header("Subject")
                .unwrap_or_default()
                .contains("public on")),
            "embargoed mail reached {}",
            message.recipient
        );
    }
    // Held on purpose, they are not offered again, and a second try is refused.
    let html = page(
        &manager,
        &format!("/admin/outbox?release={release_id}&status=held"),
    )
    .await;
    assert_eq!(listed(&html).len(), 3);
    assert!(
        html.contains("the member is no longer active")
            && html.contains("the release was cancelled")
    );
    assert!(!html.contains("Send again"));
    assert_eq!(
        manager.post(&resend_path(delta.id), &[]).await.status(),
        409
    );
    assert_eq!(sent_again_entries(&app).await.len(), 4);
}
