//! Releases and the embargoed distribution, over real SMTP: who receives what, when, and that
//! Envoy's patches never leave.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use edl::accounts::Role;
use edl::db::schema::upstreams;
use edl::domain::{OutboxStatus, ReleaseKind};
use edl::releases::distribution::{self, Tick};
use edl::releases::release::{self, Actor, AdvisoryForm, Plan, ReleaseError, Upload};
use edl::releases::{approval, upstream};

use crate::helpers::smtp::{Received, SmtpServer};
use crate::helpers::{Backend, Browser, TestApp};
use crate::on_both_backends;

pub(crate) const PASSWORD: &str = "tangerine-kettle-orbit-42";

on_both_backends!(
    an_approved_release_reaches_eligible_members_with_only_the_projects_patches,
    a_patch_that_looks_like_envoys_blocks_approval_until_reclassified,
    the_planner_cannot_approve_and_changes_need_a_new_approval,
    a_late_approval_is_sent_at_once_and_says_how_much_notice_is_left,
    a_late_approval_on_the_page_is_mailed_without_waiting_for_the_scheduler,
    nothing_embargoed_is_sent_once_the_release_is_public,
    the_worker_refuses_to_attach_an_upstream_patch_whatever_put_it_there,
    release_managers_plan_upload_approve_and_follow_delivery_in_the_browser,
    the_release_commands_plan_list_show_and_approve,
    cancelling_or_postponing_tells_the_members_who_were_mailed,
    a_failed_embargoed_delivery_alerts_the_release_managers,
    a_zero_day_gives_the_notice_asked_for_and_a_third_party_release_follows_the_lift,
    the_public_sees_only_what_has_been_announced_and_details_only_once_published,
    admins_add_upstreams_that_may_not_be_redistributed_by_default,
    whoever_changed_a_revision_cannot_approve_it,
    an_envoy_patch_filed_under_another_upstream_is_flagged_too,
    queued_embargoed_mail_is_not_sent_once_cancelled_or_public,
    concurrent_plans_by_one_account_each_get_their_own_release,
    reclassifying_a_patch_into_a_withheld_upstream_flags_its_copies,
    reasons_passed_on_to_members_or_the_approver_carry_no_diff_or_envoy_code,
    an_unknown_upstream_is_a_field_error,
    a_zero_days_notice_is_checked_by_the_workflow,
    the_set_origin_form_shows_the_current_origin_and_keeps_a_refused_choice,
    a_list_of_many_chunks_is_mailed_once_per_member,
    a_late_approval_from_the_command_line_is_queued_at_once,
);

pub(crate) const PROJECT_PATCH: &str =
    "From 1111111111111111111111111111111111111111 Mon Sep 17 00:00:00 2001
From: Pat Maintainer <pat@project.example>
Date: Tue, 10 Nov 2026 10:00:00 +0000
Subject: [PATCH] Normalize paths before authorization

Signed-off-by: Pat Maintainer <pat@project.example>
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

const ENVOY_PATCH: &str = "From 2222222222222222222222222222222222222222 Mon Sep 17 00:00:00 2001
From: Envoy Maintainer <maintainer@envoyproxy.io>
Date: Tue, 10 Nov 2026 10:00:00 +0000
Subject: [PATCH] jwt_authn: reject malformed tokens

Signed-off-by: Envoy Maintainer <maintainer@envoyproxy.io>
---
diff --git a/source/extensions/filters/http/jwt_authn/filter.cc b/source/extensions/filters/http/jwt_authn/filter.cc
index 3333333..4444444 100644
--- a/source/extensions/filters/http/jwt_authn/filter.cc
+++ b/source/extensions/filters/http/jwt_authn/filter.cc
@@ -1,3 +1,3 @@
 namespace Envoy {
-  bool ok = true;
+  bool ok = validate(token);
 }
";

pub(crate) struct Setup {
    pub app: TestApp,
    pub smtp: SmtpServer,
    pub planner: Actor,
    pub approver: Actor,
    pub envoy: i64,
}

async fn setup(backend: Backend) -> Option<Setup> {
    setup_with(backend, &[]).await
}

/// The release tests' app, with settings of the caller's added (a time zone, a lead time).
pub(crate) async fn setup_with(backend: Backend, extra: &[(&str, &str)]) -> Option<Setup> {
    let smtp = SmtpServer::start().await;
    let url = smtp.url();
    let mut vars = vec![
        ("EDL_SMTP_URL", url.as_str()),
        ("EDL_SCHEDULER_INTERVAL", "1h"),
        // Tests that stop the SMTP server keep retrying while they act, however slow the
        // machine, instead of giving up after ten quick attempts.
        ("EDL_OUTBOX_MAX_ATTEMPTS", "100"),
    ];
    vars.extend_from_slice(extra);
    let app = TestApp::spawn_with(backend, &vars, None).await?;
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
    let envoy: i64 = app
        .with_db(|c| {
            Ok(upstreams::table
                .filter(upstreams::slug.eq("envoy"))
                .select(upstreams::id)
                .first(c)?)
        })
        .await;
    Some(Setup {
        app,
        smtp,
        planner: Actor {
            account_id: planner_id,
            email: "rm1@project.example".into(),
        },
        approver: Actor {
            account_id: approver_id,
            email: "rm2@project.example".into(),
        },
        envoy,
    })
}

pub(crate) async fn add_member(
    app: &TestApp,
    domain: &str,
    status: &str,
    policy_version: i32,
) -> i64 {
    app.add_member(&format!("Org {domain}"), domain, status, policy_version)
        .await
}

pub(crate) fn err(e: ReleaseError) -> edl::db::DbError {
    edl::db::DbError::Task(e.to_string())
}

/// A plan of `kind` for release line 1.9.5, with nothing else chosen.
pub(crate) fn plan_of(kind: ReleaseKind) -> Plan {
    Plan {
        kind,
        title: "Security release 1.9.5".into(),
        release_lines: vec!["1.9.5".into()],
        patch_tuesday: None,
        release_at: None,
        upstream_id: None,
        notice_hours: 0,
        members_may_deploy: false,
        notes: String::new(),
    }
}

/// Plans the next Patch Tuesday release with one advisory; returns its id.
async fn planned(s: &Setup, now: DateTime<Utc>) -> i64 {
    planned_on(s, None, "Security release 1.9.5", now).await
}

/// Plans a Patch Tuesday release (the given one, or the next with its lead time) with one
/// advisory; returns its id.
pub(crate) async fn planned_on(
    s: &Setup,
    patch_tuesday: Option<chrono::NaiveDate>,
    title: &str,
    now: DateTime<Utc>,
) -> i64 {
    let calendar = s.app.settings.calendar();
    let planner = s.planner.clone();
    let title = title.to_owned();
    s.app
        .with_db(move |c| {
            let plan = Plan {
                patch_tuesday,
                title,
                ..plan_of(ReleaseKind::PatchTuesday)
            };
            let id = release::plan(c, &calendar, &plan, &planner, now).map_err(err)?;
            let advisory = AdvisoryForm {
                cve_id: "CVE-2026-31337".into(),
                severity: "high".into(),
                cvss_vector: String::new(),
                summary: "Authorization policy bypass with crafted paths.".into(),
                affected_versions: "1.9.0 to 1.9.4".into(),
                fixed_versions: "1.9.5".into(),
            }
            .parse()
            .expect("a valid advisory");
            release::add_advisory(c, id, &advisory, &planner).map_err(err)?;
            Ok(id)
        })
        .await
}

pub(crate) async fn add_patch(
    s: &Setup,
    id: i64,
    name: &str,
    content: &str,
    upstream: Option<i64>,
) -> Result<i64, String> {
    let (planner, name, content) = (
        s.planner.clone(),
        name.to_owned(),
        content.as_bytes().to_vec(),
    );
    let upload = Upload {
        filename: name,
        bytes: content,
        release_line: "1.9.5".into(),
        upstream_id: upstream,
        is_security_fix: true,
    };
    s.app
        .with_db(move |c| {
            Ok(release::add_patch(c, id, &upload, &planner).map_err(|e| e.to_string()))
        })
        .await
}

pub(crate) async fn approve(s: &Setup, id: i64, by: &Actor) -> Result<i32, String> {
    let by = by.clone();
    s.app
        .with_db(move |c| Ok(approval::approve(c, id, &by).map_err(|e| e.to_string())))
        .await
}

pub(crate) async fn distribute(s: &Setup, at: DateTime<Utc>) -> Tick {
    let ctx = s.app.state.ctx.clone();
    let tick = s
        .app
        .with_db(move |c| distribution::distribute(c, &ctx, at).map_err(err))
        .await;
    s.app.state.mailer.wake_workers();
    tick
}

pub(crate) async fn find(s: &Setup, id: i64) -> release::Release {
    s.app
        .with_db(move |c| Ok(release::find(c, id)?.expect("release")))
        .await
}

pub(crate) fn utc(t: chrono::NaiveDateTime) -> DateTime<Utc> {
    DateTime::from_naive_utc_and_offset(t, Utc)
}

fn attachment_names(mail: &Received) -> Vec<String> {
    let mut names: Vec<String> = mail.attachments().into_iter().map(|(n, _)| n).collect();
    names.sort();
    names
}

async fn an_approved_release_reaches_eligible_members_with_only_the_projects_patches(
    backend: Backend,
) {
    let Some(s) = setup(backend).await else {
        return;
    };
    add_member(&s.app, "alpha.example", "active", 1).await;
    add_member(&s.app, "beta.example", "active", 1).await;
    add_member(&s.app, "paused.example", "suspended", 1).await;
    add_member(&s.app, "stale.example", "active", 0).await;
    let now = Utc::now();
    let id = planned(&s, now).await;
    add_patch(&s, id, "0001-normalize-paths.patch", PROJECT_PATCH, None)
        .await
        .expect("project patch");
    add_patch(&s, id, "0002-envoy-jwt.patch", ENVOY_PATCH, Some(s.envoy))
        .await
        .expect("envoy patch");
    approve(&s, id, &s.approver).await.expect("approved");

    let r = find(&s, id).await;
    let disclosure = utc(r
        .disclosure_at
        .expect("a Patch Tuesday release has an early-disclosure time"));
    assert_eq!((utc(r.release_at) - disclosure).num_days(), 14);
    // Before the early-disclosure time, nothing goes out.
    assert_eq!(
        distribute(&s, disclosure - chrono::Duration::minutes(1))
            .await
            .mailed,
        0
    );
    // At it, every eligible member gets one message, once.
    assert_eq!(
        distribute(&s, disclosure + chrono::Duration::minutes(1))
            .await
            .mailed,
        2
    );
    assert_eq!(
        distribute(&s, disclosure + chrono::Duration::minutes(2))
            .await
            .mailed,
        0
    );

    for alias in ["security@alpha.example", "security@beta.example"] {
        let mail = s.smtp.wait_for(alias, "[EMBARGOED]").await;
        assert_eq!(
            attachment_names(&mail),
            vec!["0001-normalize-paths.patch"],
            "only the project's patch is attached"
        );
        let text = mail.text();
        assert!(
            text.contains("https://github.com/envoyproxy/envoy/security/policy"),
            "{text}"
        );
        assert!(
            text.contains("fixes from Envoy")
                || text.contains("fix from Envoy")
                || text.contains("from Envoy"),
            "{text}"
        );
        assert!(text.contains("CVE-2026-31337") && text.contains("NOT allowed"));
        let sha = edl::releases::patch::sha256_hex(PROJECT_PATCH.as_bytes());
        assert!(
            text.contains(&sha),
            "the attached patch's SHA-256 is in the mail"
        );
        // No trace of Envoy's patch content in any part of the message, decoded.
        let all = mail.decoded();
        assert!(
            !all.contains("jwt_authn") && !all.contains("validate(token)"),
            "Envoy's patch leaked"
        );
        // The attached patch arrives byte for byte.
        let attached = mail.attachments();
        assert!(
            attached
                .iter()
                .any(|(_, bytes)| bytes.as_slice() == PROJECT_PATCH.as_bytes()),
            "the project's patch is attached intact"
        );
    }
    assert!(
        s.smtp.to("security@paused.example").is_empty(),
        "a suspended member gets nothing"
    );
    assert!(
        s.smtp.to("security@stale.example").is_empty(),
        "a member on an old policy gets nothing"
    );

    // At the release time it becomes public, once.
    let tick = distribute(&s, utc(r.release_at) + chrono::Duration::minutes(1)).await;
    assert_eq!((tick.mailed, tick.published), (0, 1));
    assert!(find(&s, id).await.published_at.is_some());
}

async fn a_patch_that_looks_like_envoys_blocks_approval_until_reclassified(backend: Backend) {
    let Some(s) = setup(backend).await else {
        return;
    };
    let id = planned(&s, Utc::now()).await;
    // Uploaded as the project's own, but it is Envoy's.
    let patch = add_patch(&s, id, "0001-jwt.patch", ENVOY_PATCH, None)
        .await
        .expect("stored, flagged");
    let refused = approve(&s, id, &s.approver).await.expect_err("blocked");
    assert!(refused.contains("looks like an upstream's"), "{refused}");
    let (planner, envoy) = (s.planner.clone(), s.envoy);
    s.app
        .with_db(move |c| {
            release::reclassify_patch(
                c,
                id,
                patch,
                Some(envoy),
                "It is Envoy's fix, under Envoy's embargo.",
                &planner,
            )
            .map_err(err)
        })
        .await;
    approve(&s, id, &s.approver)
        .await
        .expect("approved once reclassified");
    // A Patch Tuesday release takes security fixes only, unless an exception is recorded.
    let id2 = planned(&s, Utc::now()).await;
    let (planner, bytes) = (s.planner.clone(), PROJECT_PATCH.as_bytes().to_vec());
    s.app
        .with_db(move |c| {
            let upload = Upload {
                filename: "0001-feature.patch".into(),
                bytes,
                release_line: "1.9.5".into(),
                upstream_id: None,
                is_security_fix: false,
            };
            release::add_patch(c, id2, &upload, &planner).map_err(err)
        })
        .await;
    let refused = approve(&s, id2, &s.approver).await.expect_err("blocked");
    assert!(refused.contains("not a security fix"), "{refused}");
    let planner = s.planner.clone();
    s.app
        .with_db(move |c| {
            release::set_exception(c, id2, "Needed to build the fix.", &planner).map_err(err)
        })
        .await;
    approve(&s, id2, &s.approver)
        .await
        .expect("approved with the exception");
}

async fn the_planner_cannot_approve_and_changes_need_a_new_approval(backend: Backend) {
    let Some(s) = setup(backend).await else {
        return;
    };
    add_member(&s.app, "alpha.example", "active", 1).await;
    let id = planned(&s, Utc::now()).await;
    add_patch(&s, id, "0001-normalize-paths.patch", PROJECT_PATCH, None)
        .await
        .expect("patch");
    let own = approve(&s, id, &s.planner)
        .await
        .expect_err("two-person rule");
    assert!(own.contains("cannot approve"), "{own}");
    assert_eq!(approve(&s, id, &s.approver).await, Ok(1));
    let r = find(&s, id).await;
    let disclosure = utc(r.disclosure_at.expect("time"));
    assert_eq!(
        distribute(&s, disclosure + chrono::Duration::minutes(1))
            .await
            .mailed,
        1
    );
    s.smtp
        .wait_for("security@alpha.example", "[EMBARGOED]")
        .await;

    // A change after approval makes revision 2, which is not sent until approved.
    add_patch(&s, id, "0002-more.patch", PROJECT_PATCH, None)
        .await
        .expect("patch");
    let r = find(&s, id).await;
    assert_eq!(r.revision, 2);
    assert!(!r.approved_current());
    let revisions = s.app.with_db(move |c| release::revisions_of(c, id)).await;
    let approved: Vec<(i32, Option<String>)> = revisions
        .iter()
        .map(|v| (v.revision, v.approved_by.clone()))
        .collect();
    assert_eq!(
        approved,
        [(2, None), (1, Some("rm2@project.example".to_owned()))],
        "revision 1 stays approved by the approver; revision 2 waits"
    );
    let changes: Vec<String> = revisions[0]
        .changes
        .iter()
        .map(|c| format!("{} by {}", c.change, c.changed_by))
        .collect();
    assert_eq!(changes, ["patch-added by rm1@project.example"]);
    assert_eq!(
        distribute(&s, disclosure + chrono::Duration::hours(1))
            .await
            .mailed,
        0
    );
    assert_eq!(approve(&s, id, &s.approver).await, Ok(2));
    assert_eq!(
        distribute(&s, disclosure + chrono::Duration::hours(2))
            .await
            .mailed,
        1
    );
    let revised = s.smtp.wait_for("security@alpha.example", "Revised").await;
    assert!(revised.text().contains("revision 2"));
    assert_eq!(attachment_names(&revised).len(), 2);
}

async fn a_late_approval_is_sent_at_once_and_says_how_much_notice_is_left(backend: Backend) {
    let Some(s) = setup(backend).await else {
        return;
    };
    add_member(&s.app, "alpha.example", "active", 1).await;
    let id = planned(&s, Utc::now()).await;
    let r = find(&s, id).await;
    add_patch(&s, id, "0001-normalize-paths.patch", PROJECT_PATCH, None)
        .await
        .expect("patch");
    approve(&s, id, &s.approver).await.expect("approved");
    // The distributor first runs 10 days after the early-disclosure time: 4 days are left.
    let late = utc(r.disclosure_at.expect("time")) + chrono::Duration::days(10);
    assert_eq!(distribute(&s, late).await.mailed, 1);
    let mail = s
        .smtp
        .wait_for("security@alpha.example", "[EMBARGOED]")
        .await;
    assert!(
        mail.text()
            .contains("4 days of notice, less than the usual lead time"),
        "{}",
        mail.text()
    );
}

async fn a_late_approval_on_the_page_is_mailed_without_waiting_for_the_scheduler(backend: Backend) {
    // The scheduler ticks hourly here: only the approval itself can start the mailing soon.
    let Some(s) = setup(backend).await else {
        return;
    };
    add_member(&s.app, "alpha.example", "active", 1).await;
    let id = planned(&s, Utc::now()).await;
    add_patch(&s, id, "0001-normalize-paths.patch", PROJECT_PATCH, None)
        .await
        .expect("patch");
    let r = find(&s, id).await;
    s.app
        .move_to(utc(r.disclosure_at.expect("time")) + chrono::Duration::hours(2));
    let approver = Browser::open(&s.app).await;
    approver.sign_in("rm2@project.example", PASSWORD).await;
    let approved = approver
        .post(&format!("/manage/releases/{id}/approve"), &[])
        .await;
    assert_eq!(approved.status(), 303);
    let mail = s
        .smtp
        .wait_for("security@alpha.example", "[EMBARGOED]")
        .await;
    assert!(
        mail.text().contains("less than the usual lead time"),
        "{}",
        mail.text()
    );
    assert!(find(&s, id).await.disclosed_at.is_some());
}

async fn nothing_embargoed_is_sent_once_the_release_is_public(backend: Backend) {
    let Some(s) = setup(backend).await else {
        return;
    };
    add_member(&s.app, "alpha.example", "active", 1).await;
    let id = planned(&s, Utc::now()).await;
    add_patch(&s, id, "0001-normalize-paths.patch", PROJECT_PATCH, None)
        .await
        .expect("patch");
    approve(&s, id, &s.approver).await.expect("approved");
    let r = find(&s, id).await;
    let tick = distribute(&s, utc(r.release_at) + chrono::Duration::minutes(5)).await;
    assert_eq!((tick.mailed, tick.published), (0, 1));
    s.app.outbox_idle().await;
    assert!(s.smtp.to("security@alpha.example").is_empty());
}

async fn the_worker_refuses_to_attach_an_upstream_patch_whatever_put_it_there(backend: Backend) {
    let Some(s) = setup(backend).await else {
        return;
    };
    let id = planned(&s, Utc::now()).await;
    let envoy_patch = add_patch(&s, id, "0002-envoy-jwt.patch", ENVOY_PATCH, Some(s.envoy))
        .await
        .expect("patch");
    let member = add_member(&s.app, "alpha.example", "active", 1).await;
    // A row that asks for Envoy's patch, as a bug or a hand-edited database might make.
    let mailer = s.app.state.mailer.clone();
    s.app
        .with_db(move |c| {
            mailer
                .enqueue_for_member(
                    c,
                    "test_message",
                    "security@alpha.example",
                    serde_json::json!({ "requested_by": "a bug" }),
                    edl::mail::ReleaseMail {
                        dedupe_key: "forged".into(),
                        release_id: id,
                        member_id: member,
                        revision: 1,
                        attachments: vec![envoy_patch],
                    },
                )
                .map_err(|e| edl::db::DbError::Task(e.to_string()))
        })
        .await
        .expect("a new row");
    s.app.state.mailer.wake_workers();
    let row = crate::helpers::eventually(
        std::time::Duration::from_secs(20),
        "the row refused",
        || async {
            s.app
                .outbox_rows()
                .await
                .into_iter()
                .find(|r| r.status == OutboxStatus::Failed)
        },
    )
    .await;
    assert!(row
        .last_error
        .unwrap_or_default()
        .contains("may not be redistributed"));
    assert!(s.smtp.received().is_empty());
}

async fn release_managers_plan_upload_approve_and_follow_delivery_in_the_browser(backend: Backend) {
    let Some(s) = setup(backend).await else {
        return;
    };
    add_member(&s.app, "alpha.example", "active", 1).await;
    let planner = Browser::open(&s.app).await;
    planner.sign_in("rm1@project.example", PASSWORD).await;

    // A mistake keeps what was typed and says what is wrong.
    let bad = planner
        .post(
            "/manage/releases",
            &[
                ("kind", "patch-tuesday"),
                ("title", "Security release 1.9.5"),
                ("release_lines", ""),
            ],
        )
        .await;
    assert_eq!(bad.status(), 422);
    let page = bad.text().await.expect("page");
    let hours = planner
        .post(
            "/manage/releases",
            &[
                ("kind", "zero-day"),
                ("title", "Urgent fix"),
                ("release_lines", "1.9.5"),
                ("notice_hours", "soon"),
            ],
        )
        .await;
    assert_eq!(hours.status(), 422);
    let hours = hours.text().await.expect("page");
    assert!(
        hours.contains("whole hours, from 0 to 72") && hours.contains("value=\"soon\""),
        "{hours}"
    );
    assert!(
        page.contains("Name at least one release line")
            && page.contains("value=\"Security release 1.9.5\"")
    );

    let planned = planner
        .post(
            "/manage/releases",
            &[
                ("kind", "patch-tuesday"),
                ("title", "Security release 1.9.5"),
                ("release_lines", "1.9.5"),
            ],
        )
        .await;
    assert_eq!(planned.status(), 303);
    let detail_path = planned.headers()["location"]
        .to_str()
        .expect("ascii")
        .to_owned();
    let id: i64 = detail_path
        .rsplit('/')
        .next()
        .expect("id")
        .parse()
        .expect("a number");
    // A bad advisory answers 422 and keeps every value typed, each problem beside its field.
    let typed = [
        ("cve_id", "CVE-26-1"),
        ("severity", "high"),
        ("cvss_vector", "CVSS:3.1/AV:N"),
        ("summary", "Authorization bypass with <crafted> paths."),
        ("affected_versions", "1.9.0-1.9.4"),
        ("fixed_versions", "1.9.5"),
    ];
    let bad = planner
        .post(&format!("{detail_path}/advisories"), &typed)
        .await;
    assert_eq!(bad.status(), 422);
    let bad = bad.text().await.expect("page");
    for expected in [
        "value=\"CVE-26-1\"",
        "value=\"CVSS:3.1/AV:N\"",
        "Authorization bypass with &lt;crafted&gt; paths.</textarea>",
        "value=\"1.9.0-1.9.4\"",
        "value=\"1.9.5\"",
        "<option selected>high</option>",
        "Give the CVE id as CVE-YYYY-NNNN.",
        "the base metric AC is missing",
    ] {
        assert!(bad.contains(expected), "{expected} missing from {bad}");
    }
    let advisories = s.app.with_db(move |c| release::advisories_of(c, id)).await;
    assert!(advisories.is_empty(), "nothing was stored");
    // With nothing to approve yet, a second release manager is told why, not given a button.
    let second = Browser::open(&s.app).await;
    second.sign_in("rm2@project.example", PASSWORD).await;
    let blocked = second.get(&detail_path).await.text().await.expect("page");
    assert!(blocked.contains("Add at least one advisory."), "{blocked}");
    assert!(blocked.contains("cannot be approved while anything above blocks it"));
    assert!(!blocked.contains(&format!("action=\"{detail_path}/approve\"")));

    let added = planner
        .post(
            &format!("{detail_path}/advisories"),
            &[
                ("cve_id", "CVE-2026-31337"),
                ("severity", "high"),
                ("summary", "Authorization bypass."),
                ("affected_versions", "1.9.0-1.9.4"),
                ("fixed_versions", "1.9.5"),
            ],
        )
        .await;
    assert_eq!(added.status(), 303);
    let envoy = s.envoy.to_string();
    let up = planner
        .post_file(
            &format!("{detail_path}/patches"),
            &[
                ("release_line", "1.9.5"),
                ("origin", ""),
                ("security_fix", "yes"),
            ],
            ("0001-normalize-paths.patch", PROJECT_PATCH.as_bytes()),
        )
        .await;
    assert_eq!(up.status(), 303);
    let up = planner
        .post_file(
            &format!("{detail_path}/patches"),
            &[
                ("release_line", "1.9.5"),
                ("origin", &envoy),
                ("security_fix", "yes"),
            ],
            ("0002-envoy-jwt.patch", ENVOY_PATCH.as_bytes()),
        )
        .await;
    assert_eq!(up.status(), 303);
    let not_a_patch = planner
        .post_file(
            &format!("{detail_path}/patches"),
            &[
                ("release_line", "1.9.5"),
                ("origin", ""),
                ("security_fix", "yes"),
            ],
            ("notes.txt", b"just some notes"),
        )
        .await;
    assert_eq!(not_a_patch.status(), 422);
    assert!(not_a_patch
        .text()
        .await
        .expect("page")
        .contains("no diff was found"));

    let page = planner.get(&detail_path).await.text().await.expect("page");
    assert!(
        page.contains("0001-normalize-paths.patch")
            && page.contains(&edl::releases::patch::sha256_hex(PROJECT_PATCH.as_bytes()))
    );
    assert!(page.contains("withheld from mail"));
    // The planner is not offered the button, and is told why; pressing it anyway is refused.
    assert!(!page.contains(&format!("action=\"{detail_path}/approve\"")));
    assert!(page.contains("The person who planned a release cannot approve it"));
    let ready = second.get(&detail_path).await.text().await.expect("page");
    assert!(
        ready.contains(&format!("action=\"{detail_path}/approve\"")),
        "{ready}"
    );
    let own = planner.post(&format!("{detail_path}/approve"), &[]).await;
    assert_eq!(own.status(), 409);
    assert!(own.text().await.expect("page").contains("cannot approve"));

    assert_eq!(
        second
            .post(&format!("{detail_path}/approve"), &[])
            .await
            .status(),
        303
    );

    let r = find(&s, id).await;
    distribute(
        &s,
        utc(r.disclosure_at.expect("time")) + chrono::Duration::minutes(1),
    )
    .await;
    let mail = s
        .smtp
        .wait_for("security@alpha.example", "[EMBARGOED]")
        .await;
    assert_eq!(attachment_names(&mail), vec!["0001-normalize-paths.patch"]);
    let ledger = crate::helpers::eventually(
        std::time::Duration::from_secs(20),
        "the ledger to show the delivery",
        || async {
            let page = planner.get(&detail_path).await.text().await.expect("page");
            page.contains("sent ").then_some(page)
        },
    )
    .await;
    assert!(ledger.contains("Org alpha.example") && ledger.contains("not yet"));

    // The member confirms receipt from the link in the mail.
    let ack = mail.link("/releases/ack/").expect("a receipt link");
    let member = Browser::open(&s.app).await;
    assert_eq!(member.get(&ack).await.status(), 200);
    assert_eq!(member.post(&ack, &[]).await.status(), 200);
    let page = planner.get(&detail_path).await.text().await.expect("page");
    assert!(!page.contains("not yet"), "the receipt shows in the ledger");
    let forged = ack.replacen("ack.", "ack.9", 1);
    assert_eq!(member.get(&forged).await.status(), 404);
}

fn edl_cli(app: &TestApp, args: &[&str]) -> std::process::Output {
    app.edl(args, "")
}

fn edl_cli_with_input(app: &TestApp, args: &[&str], input: &str) -> std::process::Output {
    app.edl(args, input)
}

async fn the_release_commands_plan_list_show_and_approve(backend: Backend) {
    let Some(s) = setup(backend).await else {
        return;
    };
    let planned = edl_cli(
        &s.app,
        &[
            "release",
            "plan",
            "--title",
            "Security release 1.9.5",
            "--line",
            "1.9.5",
            "--as",
            "rm1@project.example",
        ],
    );
    assert!(
        planned.status.success(),
        "{}",
        String::from_utf8_lossy(&planned.stderr)
    );
    let out = String::from_utf8_lossy(&planned.stdout).to_string();
    let id: i64 = out
        .split_whitespace()
        .nth(2)
        .and_then(|w| w.trim_end_matches('.').parse().ok())
        .expect("the new id");
    let listed = String::from_utf8_lossy(&edl_cli(&s.app, &["release", "list"]).stdout).to_string();
    assert!(
        listed.contains("Security release 1.9.5") && listed.contains("needs approval"),
        "{listed}"
    );
    // Approval by the planner, or while something blocks, fails with the reason.
    let own = edl_cli_with_input(
        &s.app,
        &[
            "release",
            "approve",
            &id.to_string(),
            "--as",
            "rm1@project.example",
            "--password-stdin",
        ],
        &format!("{PASSWORD}\n"),
    );
    assert!(!own.status.success());
    assert!(String::from_utf8_lossy(&own.stderr).contains("cannot approve"));
    let blocked = edl_cli_with_input(
        &s.app,
        &[
            "release",
            "approve",
            &id.to_string(),
            "--as",
            "rm2@project.example",
            "--password-stdin",
        ],
        &format!("{PASSWORD}\n"),
    );
    assert!(String::from_utf8_lossy(&blocked.stderr).contains("Add at least one advisory"));
    let planner = s.planner.clone();
    s.app
        .with_db(move |c| {
            let advisory = AdvisoryForm {
                cve_id: "CVE-2026-0042".into(),
                severity: "medium".into(),
                summary: "A fix.".into(),
                fixed_versions: "1.9.5".into(),
                ..AdvisoryForm::default()
            }
            .parse()
            .expect("a valid advisory");
            release::add_advisory(c, id, &advisory, &planner).map_err(err)
        })
        .await;
    let shown =
        String::from_utf8_lossy(&edl_cli(&s.app, &["release", "show", &id.to_string()]).stdout)
            .to_string();
    assert!(
        shown.contains("CVE-2026-0042") && shown.contains("early disclosure"),
        "{shown}"
    );
    let approved = edl_cli_with_input(
        &s.app,
        &[
            "release",
            "approve",
            &id.to_string(),
            "--as",
            "rm2@project.example",
            "--password-stdin",
        ],
        &format!("{PASSWORD}\n"),
    );
    assert!(
        approved.status.success(),
        "{}",
        String::from_utf8_lossy(&approved.stderr)
    );
    // An approval needs the approver's own password.
    let guessed = edl_cli_with_input(
        &s.app,
        &[
            "release",
            "approve",
            &id.to_string(),
            "--as",
            "rm2@project.example",
            "--password-stdin",
        ],
        "not-the-password\n",
    );
    assert!(String::from_utf8_lossy(&guessed.stderr)
        .contains("password of rm2@project.example is not right"));
    let unknown = edl_cli_with_input(
        &s.app,
        &[
            "release",
            "approve",
            &id.to_string(),
            "--as",
            "nobody@project.example",
            "--password-stdin",
        ],
        &format!("{PASSWORD}\n"),
    );
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("no account"));
}

async fn mailed_release(s: &Setup, members: &[&str]) -> (i64, release::Release) {
    for domain in members {
        add_member(&s.app, domain, "active", 1).await;
    }
    let id = planned(s, Utc::now()).await;
    add_patch(s, id, "0001-normalize-paths.patch", PROJECT_PATCH, None)
        .await
        .expect("patch");
    approve(s, id, &s.approver).await.expect("approved");
    let r = find(s, id).await;
    distribute(
        s,
        utc(r.disclosure_at.expect("time")) + chrono::Duration::minutes(1),
    )
    .await;
    (id, r)
}

async fn cancelling_or_postponing_tells_the_members_who_were_mailed(backend: Backend) {
    let Some(s) = setup(backend).await else {
        return;
    };
    let (id, r) = mailed_release(&s, &["alpha.example"]).await;
    s.smtp
        .wait_for("security@alpha.example", "[EMBARGOED]")
        .await;
    // A member who joined later was never told, and is not told now either.
    add_member(&s.app, "late.example", "active", 1).await;

    let calendar = s.app.settings.calendar();
    let later = {
        use chrono::Datelike;
        let pt = chrono::NaiveDate::from_ymd_opt(r.release_at.year(), r.release_at.month(), 1)
            .expect("date");
        let next = pt
            .checked_add_months(chrono::Months::new(1))
            .expect("month");
        calendar
            .month(next.year(), next.month())
            .expect("next Patch Tuesday")
            .patch_tuesday
    };
    let (env, planner) = (s.app.state.ctx.clone(), s.planner.clone());
    s.app
        .with_db(move |c| {
            release::postpone(
                c,
                &env,
                &calendar,
                id,
                release::Postponement::PatchTuesday(later),
                "A regression was found.",
                &planner,
            )
            .map_err(err)
        })
        .await;
    s.app.state.mailer.wake_workers();
    let mail = s.smtp.wait_for("security@alpha.example", "Postponed").await;
    assert!(
        mail.text().contains("A regression was found.") && mail.text().contains(&later.to_string())
    );
    // The new date is embargoed too: the postponement travels encrypted, under the neutral
    // subject.
    assert!(mail.encrypted);
    assert!(!mail.wire_decoded().contains("A regression was found."));
    let moved = find(&s, id).await;
    assert_eq!(moved.release_at.date(), later);
    assert!(
        !moved.approved_current(),
        "the new date needs a new approval"
    );

    let (env, planner) = (s.app.state.ctx.clone(), s.planner.clone());
    s.app
        .with_db(move |c| {
            release::cancel(c, &env, id, "Fixed upstream instead.", &planner).map_err(err)
        })
        .await;
    s.app.state.mailer.wake_workers();
    let mail = s.smtp.wait_for("security@alpha.example", "Cancelled").await;
    assert!(mail.text().contains("Fixed upstream instead."));
    s.app.outbox_idle().await;
    assert!(s.smtp.to("security@late.example").is_empty());
    // A cancelled release is never mailed or published.
    let tick = distribute(&s, utc(moved.release_at) + chrono::Duration::hours(1)).await;
    assert_eq!((tick.mailed, tick.published), (0, 0));
}

async fn a_failed_embargoed_delivery_alerts_the_release_managers(backend: Backend) {
    let Some(s) = setup(backend).await else {
        return;
    };
    s.smtp
        .refuse_recipient("security@broken.example", "550 5.1.1 no such mailbox");
    let (id, r) = mailed_release(&s, &["broken.example"]).await;
    crate::helpers::eventually(
        std::time::Duration::from_secs(20),
        "the delivery to fail",
        || async {
            s.app
                .outbox_rows()
                .await
                .into_iter()
                .find(|row| row.status == OutboxStatus::Failed && row.release_id == Some(id))
        },
    )
    .await;
    let tick = distribute(
        &s,
        utc(r.disclosure_at.expect("time")) + chrono::Duration::minutes(5),
    )
    .await;
    assert_eq!(tick.alerts, 2, "both release managers are told");
    assert_eq!(
        distribute(
            &s,
            utc(r.disclosure_at.expect("time")) + chrono::Duration::minutes(6)
        )
        .await
        .alerts,
        0,
        "once"
    );
    let alert = s.smtp.wait_for("rm1@project.example", "failed").await;
    assert!(
        alert.text().contains("Org broken.example") && alert.text().contains("550"),
        "{}",
        alert.text()
    );
}

async fn a_zero_day_gives_the_notice_asked_for_and_a_third_party_release_follows_the_lift(
    backend: Backend,
) {
    let Some(s) = setup(backend).await else {
        return;
    };
    add_member(&s.app, "alpha.example", "active", 1).await;
    let now = Utc::now();
    let calendar = s.app.settings.calendar();
    let (planner, envoy) = (s.planner.clone(), s.envoy);
    let (zero, third) = s
        .app
        .with_db(move |c| {
            let advisory = AdvisoryForm {
                cve_id: "CVE-2026-0099".into(),
                severity: "critical".into(),
                summary: "Exploited in the wild.".into(),
                fixed_versions: "1.9.5".into(),
                ..AdvisoryForm::default()
            }
            .parse()
            .expect("a valid advisory");
            let zero = release::plan(
                c,
                &calendar,
                &Plan {
                    kind: ReleaseKind::ZeroDay,
                    title: "0-day 1.9.5".into(),
                    release_lines: vec!["1.9.5".into()],
                    release_at: Some(now + chrono::Duration::hours(8)),
                    notice_hours: 6,
                    ..plan_of(ReleaseKind::ZeroDay)
                },
                &planner,
                now,
            )
            .map_err(err)?;
            release::add_advisory(c, zero, &advisory, &planner).map_err(err)?;
            // A title naming the upstream would reveal its embargo at the pre-announcement.
            let named = release::plan(
                c,
                &calendar,
                &Plan {
                    kind: ReleaseKind::ThirdParty,
                    title: "Envoy embargo 1.9.6".into(),
                    release_lines: vec!["1.9.6".into()],
                    release_at: Some(now + chrono::Duration::days(3)),
                    upstream_id: Some(envoy),
                    ..plan_of(ReleaseKind::ThirdParty)
                },
                &planner,
                now,
            );
            assert!(
                matches!(&named, Err(ReleaseError::Invalid(e)) if e["title"].contains("leave Envoy out")),
                "{named:?}"
            );
            let third = release::plan(
                c,
                &calendar,
                &Plan {
                    kind: ReleaseKind::ThirdParty,
                    title: "Security release 1.9.6".into(),
                    release_lines: vec!["1.9.6".into()],
                    release_at: Some(now + chrono::Duration::days(3)),
                    upstream_id: Some(envoy),
                    ..plan_of(ReleaseKind::ThirdParty)
                },
                &planner,
                now,
            )
            .map_err(err)?;
            release::add_advisory(c, third, &advisory, &planner).map_err(err)?;
            Ok((zero, third))
        })
        .await;
    approve(&s, zero, &s.approver).await.expect("approved");
    approve(&s, third, &s.approver).await.expect("approved");
    let z = find(&s, zero).await;
    assert_eq!(
        z.release_at - z.disclosure_at.expect("notice"),
        chrono::Duration::hours(6)
    );
    // Not before the notice window opens.
    assert_eq!(
        distribute(&s, now + chrono::Duration::hours(1))
            .await
            .mailed,
        1,
        "the third-party release goes out now"
    );
    let mail = s
        .smtp
        .wait_for("security@alpha.example", "Security release 1.9.6")
        .await;
    // The notice is counted from the moment of sending to the lift.
    let t = find(&s, third).await;
    let expected =
        distribution::notice_text(utc(t.release_at) - (now + chrono::Duration::hours(1)));
    assert!(
        mail.text().contains(&format!(
            "{expected} of notice, less than the usual lead time"
        )),
        "expected {expected}: {}",
        mail.text()
    );
    assert_eq!(
        distribute(&s, now + chrono::Duration::hours(3))
            .await
            .mailed,
        1,
        "the 0-day notice"
    );
    let mail = s.smtp.wait_for("security@alpha.example", "0-day").await;
    let z = find(&s, zero).await;
    let expected =
        distribution::notice_text(utc(z.release_at) - (now + chrono::Duration::hours(3)));
    assert!(
        expected.ends_with("hours") && mail.text().contains(&expected),
        "expected {expected}: {}",
        mail.text()
    );
    // The lift is closer than the lead time, so members are told as soon as it is approved.
    assert!(utc(t.disclosure_at.expect("time")) <= now + chrono::Duration::seconds(5));
    assert!(
        (utc(t.release_at) - (now + chrono::Duration::days(3)))
            .num_seconds()
            .abs()
            <= 1
    );
    let tick = distribute(
        &s,
        now + chrono::Duration::days(3) + chrono::Duration::minutes(1),
    )
    .await;
    assert_eq!(tick.published, 2);
}

async fn the_public_sees_only_what_has_been_announced_and_details_only_once_published(
    backend: Backend,
) {
    let Some(s) = setup(backend).await else {
        return;
    };
    let id = planned(&s, Utc::now()).await;
    add_patch(&s, id, "0001-normalize-paths.patch", PROJECT_PATCH, None)
        .await
        .expect("patch");
    approve(&s, id, &s.approver).await.expect("approved");
    let public = Browser::open(&s.app).await;
    // Embargoed: not listed, not reachable, not in the feeds.
    assert!(!public
        .get("/releases")
        .await
        .text()
        .await
        .expect("page")
        .contains("Security release 1.9.5"));
    assert_eq!(public.get(&format!("/releases/{id}")).await.status(), 404);
    assert!(!public
        .get("/feed.atom")
        .await
        .text()
        .await
        .expect("feed")
        .contains("Security release 1.9.5"));

    // Pre-announced: the date and the number of issues, no details.
    let r = find(&s, id).await;
    let tick = distribute(
        &s,
        utc(r.disclosure_at.expect("time")) + chrono::Duration::minutes(1),
    )
    .await;
    assert_eq!(tick.announced, 1);
    let page = public.get(&format!("/releases/{id}")).await;
    assert_eq!(page.status(), 200);
    let page = page.text().await.expect("page");
    assert!(
        page.contains("high")
            && !page.contains("CVE-2026-31337")
            && !page.contains("Authorization policy bypass")
    );
    assert!(
        !page.contains("normalize-paths"),
        "no patch is ever named in public"
    );
    let feed = public.get("/feed.atom").await;
    assert_eq!(
        feed.headers()["content-type"],
        "application/atom+xml; charset=utf-8"
    );
    let feed = feed.text().await.expect("feed");
    assert!(feed.contains("Security release planned") && !feed.contains("CVE-2026-31337"));
    let calendar = public.get("/calendar.ics").await;
    assert_eq!(
        calendar.headers()["content-type"],
        "text/calendar; charset=utf-8"
    );
    let calendar = calendar.text().await.expect("calendar");
    assert!(
        calendar.contains("BEGIN:VEVENT")
            && calendar.contains(&r.release_at.format("DTSTART:%Y%m%dT%H%M%SZ").to_string())
    );

    // Published: the advisories are public.
    distribute(&s, utc(r.release_at) + chrono::Duration::minutes(1)).await;
    let page = public
        .get(&format!("/releases/{id}"))
        .await
        .text()
        .await
        .expect("page");
    assert!(page.contains("CVE-2026-31337") && page.contains("Authorization policy bypass"));
    assert!(public
        .get("/feed.atom")
        .await
        .text()
        .await
        .expect("feed")
        .contains("Security release published"));
}

async fn admins_add_upstreams_that_may_not_be_redistributed_by_default(backend: Backend) {
    let Some(s) = setup(backend).await else {
        return;
    };
    s.app
        .add_account("root@project.example", "Root", &[Role::Admin], PASSWORD)
        .await;
    let admin = Browser::open(&s.app).await;
    admin.sign_in("root@project.example", PASSWORD).await;
    let page = admin
        .get("/admin/upstreams")
        .await
        .text()
        .await
        .expect("page");
    assert!(
        page.contains("Envoy")
            && page.contains("https://github.com/envoyproxy/envoy/security/policy")
    );
    assert!(page.contains("never attached"));
    let bad = admin
        .post(
            "/admin/upstreams",
            &[
                ("name", "Kubernetes"),
                ("policy_url", "http://k8s.example/security"),
            ],
        )
        .await;
    assert_eq!(bad.status(), 422);
    assert!(bad
        .text()
        .await
        .expect("page")
        .contains("value=\"Kubernetes\""));
    let ok = admin
        .post(
            "/admin/upstreams",
            &[
                ("name", "Kubernetes"),
                (
                    "policy_url",
                    "https://kubernetes.io/docs/reference/issues-security/security/",
                ),
            ],
        )
        .await;
    assert_eq!(ok.status(), 303);
    let all = s.app.with_db(upstream::list).await;
    let k8s = all.iter().find(|u| u.name == "Kubernetes").expect("added");
    assert!(
        !k8s.may_redistribute,
        "an upstream is withheld unless said otherwise"
    );
    let again = admin
        .post(
            "/admin/upstreams",
            &[
                ("name", "kubernetes"),
                ("policy_url", "https://kubernetes.io/security"),
            ],
        )
        .await;
    assert_eq!(again.status(), 422);
}

async fn whoever_changed_a_revision_cannot_approve_it(backend: Backend) {
    let Some(s) = setup(backend).await else {
        return;
    };
    let id = planned(&s, Utc::now()).await;
    // The second release manager adds the patch, then tries to approve their own work.
    let (approver, bytes) = (s.approver.clone(), PROJECT_PATCH.as_bytes().to_vec());
    s.app
        .with_db(move |c| {
            let upload = Upload {
                filename: "0001.patch".into(),
                bytes,
                release_line: "1.9.5".into(),
                upstream_id: None,
                is_security_fix: true,
            };
            release::add_patch(c, id, &upload, &approver).map_err(err)
        })
        .await;
    let refused = approve(&s, id, &s.approver).await.expect_err("refused");
    assert!(refused.contains("You changed this revision"), "{refused}");
    // A third, who changed nothing, may.
    let third = s
        .app
        .add_account(
            "rm3@project.example",
            "Rel Three",
            &[Role::ReleaseManager],
            PASSWORD,
        )
        .await;
    approve(
        &s,
        id,
        &Actor {
            account_id: third,
            email: "rm3@project.example".into(),
        },
    )
    .await
    .expect("approved");
}

async fn an_envoy_patch_filed_under_another_upstream_is_flagged_too(backend: Backend) {
    let Some(s) = setup(backend).await else {
        return;
    };
    let admin = Actor {
        account_id: s.planner.account_id,
        email: s.planner.email.clone(),
    };
    let other = s
        .app
        .with_db(move |c| {
            upstream::add(
                c,
                "Friendly Library",
                "https://friendly.example/security",
                true,
                &admin,
            )
            .map_err(err)
        })
        .await;
    let id = planned(&s, Utc::now()).await;
    add_patch(&s, id, "0001-jwt.patch", ENVOY_PATCH, Some(other))
        .await
        .expect("stored, flagged");
    let refused = approve(&s, id, &s.approver).await.expect_err("blocked");
    assert!(refused.contains("looks like an upstream's"), "{refused}");
}

async fn queued_embargoed_mail_is_not_sent_once_cancelled_or_public(backend: Backend) {
    let Some(s) = setup(backend).await else {
        return;
    };
    // The server answers every message with a temporary refusal, as a server that is down
    // for a while would (without giving its port away to another test).
    s.smtp
        .reply_to_every_data(Some("451 4.3.0 try again later"));
    add_member(&s.app, "alpha.example", "active", 1).await;
    let id = {
        let setup = s;
        let id = planned(&setup, Utc::now()).await;
        add_patch(
            &setup,
            id,
            "0001-normalize-paths.patch",
            PROJECT_PATCH,
            None,
        )
        .await
        .expect("patch");
        approve(&setup, id, &setup.approver)
            .await
            .expect("approved");
        let r = find(&setup, id).await;
        distribute(
            &setup,
            utc(r.disclosure_at.expect("time")) + chrono::Duration::minutes(1),
        )
        .await;
        // The mail waits in the queue (the server is down) while the release is cancelled.
        crate::helpers::eventually(
            std::time::Duration::from_secs(20),
            "a failed attempt",
            || async {
                setup.app.outbox_rows().await.into_iter().find(|row| {
                    // Recorded as failed and back in the queue, not still in flight.
                    row.template == "embargoed_release"
                        && row.status == OutboxStatus::Queued
                        && row.last_error.is_some()
                })
            },
        )
        .await;
        let (env, planner) = (setup.app.state.ctx.clone(), setup.planner.clone());
        setup
            .app
            .with_db(move |c| release::cancel(c, &env, id, "Withdrawn.", &planner).map_err(err))
            .await;
        setup.smtp.reply_to_every_data(None);
        let row = crate::helpers::eventually(
            std::time::Duration::from_secs(20),
            "the row to be held back",
            || async {
                setup.app.outbox_rows().await.into_iter().find(|row| {
                    row.template == "embargoed_release" && row.status == OutboxStatus::Held
                })
            },
        )
        .await;
        assert_eq!(
            row.held_reason.as_deref(),
            Some("the release was cancelled")
        );
        let received = setup.smtp.to("security@alpha.example");
        assert!(
            received.iter().all(|m| !m
                .header("Subject")
                .unwrap_or_default()
                .contains("[EMBARGOED] Security")),
            "the embargoed mail left after the cancel"
        );
        // Held back on purpose, so no one is alerted.
        let r = find(&setup, id).await;
        assert_eq!(distribute(&setup, utc(r.release_at)).await.alerts, 0);
        id
    };
    assert!(id > 0);
}

/// Many "plan release" posts by one account at once: each planner is sent to the release it
/// planned, and each release's audit entry names that release (ids come from the insert, not
/// from "the account's newest release").
async fn concurrent_plans_by_one_account_each_get_their_own_release(backend: Backend) {
    let Some(s) = setup(backend).await else {
        return;
    };
    let planner = Browser::open(&s.app).await;
    planner.sign_in("rm1@project.example", PASSWORD).await;
    let planner = std::sync::Arc::new(planner);
    let mut posts = tokio::task::JoinSet::new();
    for n in 0..200 {
        let planner = planner.clone();
        posts.spawn(async move {
            let title = format!("Concurrent release {n}");
            let response = planner
                .post(
                    "/manage/releases",
                    &[
                        ("kind", "zero-day"),
                        ("title", &title),
                        ("release_lines", "1.9.5"),
                    ],
                )
                .await;
            assert_eq!(response.status(), 303, "post {n}");
            let location = response.headers()["location"]
                .to_str()
                .expect("ascii")
                .to_owned();
            (title, location)
        });
    }
    let mut answers = Vec::new();
    while let Some(done) = posts.join_next().await {
        answers.push(done.expect("the post task"));
    }
    let releases = s.app.with_db(release::list).await;
    assert_eq!(releases.len(), 200);
    let entries = s
        .app
        .with_db(|c| {
            edl::audit::list(
                c,
                &edl::audit::Filter {
                    action: Some("release.planned".into()),
                    ..edl::audit::Filter::default()
                },
                0,
                1000,
            )
        })
        .await
        .0;
    assert_eq!(entries.len(), 200);
    for (title, location) in answers {
        let id: i64 = location
            .strip_prefix("/manage/releases/")
            .and_then(|id| id.parse().ok())
            .unwrap_or_else(|| panic!("{location} names a release"));
        let release = releases
            .iter()
            .find(|r| r.id == id)
            .expect("the release exists");
        assert_eq!(
            release.title, title,
            "the planner was sent to another's release"
        );
        let audited: Vec<&edl::audit::Entry> = entries
            .iter()
            .filter(|e| e.subject == format!("release:{id}"))
            .collect();
        assert_eq!(audited.len(), 1, "one planned entry for release {id}");
        assert!(
            audited[0].details.contains(&title),
            "{}",
            audited[0].details
        );
    }
}

async fn reclassify(
    s: &Setup,
    id: i64,
    patch: i64,
    upstream: Option<i64>,
    reason: &str,
) -> Result<(), ReleaseError> {
    let (planner, reason) = (s.planner.clone(), reason.to_owned());
    s.app
        .with_db(move |c| {
            Ok(release::reclassify_patch(
                c, id, patch, upstream, &reason, &planner,
            ))
        })
        .await
}

async fn patch_of(s: &Setup, id: i64, patch: i64) -> release::Patch {
    s.app
        .with_db(move |c| release::patches_of(c, id))
        .await
        .into_iter()
        .find(|p| p.id == patch)
        .expect("the patch")
}

/// The message a re-rendered page shows in the error paragraph with the id `id`.
fn error_beside(html: &str, id: &str) -> Option<String> {
    let pattern = format!(r#"<p class="error" id="{id}">([^<]*)</p>"#);
    let found = regex::Regex::new(&pattern).ok()?.captures(html)?;
    Some(found[1].to_owned())
}

/// The same change as `PROJECT_PATCH` (the same hunk), with other bytes.
fn project_patch_resent() -> String {
    PROJECT_PATCH.replace(
        "Subject: [PATCH] Normalize paths before authorization",
        "Subject: [PATCH] authz: clean paths first",
    )
}

async fn reclassifying_a_patch_into_a_withheld_upstream_flags_its_copies(backend: Backend) {
    let Some(s) = setup(backend).await else {
        return;
    };
    // The same project patch in two releases, and the same hunk in a third.
    let first = planned(&s, Utc::now()).await;
    let second = planned(&s, Utc::now()).await;
    let third = planned(&s, Utc::now()).await;
    let original = add_patch(&s, first, "0001-paths.patch", PROJECT_PATCH, None)
        .await
        .expect("stored");
    let copy = add_patch(&s, second, "0001-paths.patch", PROJECT_PATCH, None)
        .await
        .expect("stored");
    let resent = project_patch_resent();
    let same_hunk = add_patch(&s, third, "0001-clean.patch", &resent, None)
        .await
        .expect("stored");
    assert!(!patch_of(&s, second, copy).await.blocks());
    assert!(!patch_of(&s, third, same_hunk).await.blocks());

    // A person finds it is Envoy's after all.
    reclassify(
        &s,
        first,
        original,
        Some(s.envoy),
        "It is Envoy's fix under Envoy's embargo.",
    )
    .await
    .expect("reclassified");
    for (id, patch) in [(second, copy), (third, same_hunk)] {
        let stored = patch_of(&s, id, patch).await;
        assert!(stored.blocks(), "the copy in release {id} is flagged");
        assert_eq!(
            stored.upstream_signals.first().map(String::as_str),
            Some(format!("The same change was filed as Envoy's (patch {original}). Set its origin to Envoy.").as_str())
        );
        let approver = s.approver.clone();
        let refused = s
            .app
            .with_db(move |c| Ok(approval::approve(c, id, &approver)))
            .await;
        assert!(
            matches!(&refused, Err(ReleaseError::Refused(why)) if why.contains("looks like an upstream's")),
            "{refused:?}"
        );
    }
    // Moved back to the project and to Envoy again, a copy carries the sentence once.
    reclassify(&s, first, original, None, "Our own fix after all.")
        .await
        .expect("no other copy is Envoy's");
    reclassify(&s, first, original, Some(s.envoy), "Envoy's after all.")
        .await
        .expect("reclassified");
    let signals = patch_of(&s, second, copy).await.upstream_signals;
    assert_eq!(
        signals
            .iter()
            .filter(|signal| signal.contains(&format!("(patch {original})")))
            .count(),
        1,
        "{signals:?}"
    );
    // The copy cannot be moved back to the project now; it stays Envoy's.
    let back = reclassify(&s, second, copy, None, "Ours.").await;
    assert!(
        matches!(&back, Err(ReleaseError::Invalid(e)) if e["origin"].contains("stays that upstream's")),
        "{back:?}"
    );
    // Filed as Envoy's, it is withheld and no longer blocks.
    reclassify(&s, second, copy, Some(s.envoy), "The same Envoy fix.")
        .await
        .expect("reclassified");
    approve(&s, second, &s.approver)
        .await
        .expect("approved once filed as Envoy's");
    approve(&s, first, &s.approver)
        .await
        .expect("the release it was moved in is approved");
}

/// A form of the release page with a reason: its action, the fields sent, the id of the
/// message beside the reason, and how the typed reason shows again.
type ReasonCase<'a> = (&'a str, Vec<(&'a str, &'a str)>, &'a str, &'a str);

async fn reasons_passed_on_to_members_or_the_approver_carry_no_diff_or_envoy_code(
    backend: Backend,
) {
    let Some(s) = setup(backend).await else {
        return;
    };
    let id = planned(&s, Utc::now()).await;
    let r = find(&s, id).await;
    let page = format!("/manage/releases/{id}");
    let planner = Browser::open(&s.app).await;
    planner.sign_in("rm1@project.example", PASSWORD).await;

    // The workflow refuses it beside the field, whoever calls it.
    let (env, by) = (s.app.state.ctx.clone(), s.planner.clone());
    let refused = s
        .app
        .with_db(move |c| {
            Ok(release::cancel(
                c,
                &env,
                id,
                "Superseded by namespace Envoy { namespace Http {",
                &by,
            ))
        })
        .await;
    assert!(
        matches!(&refused, Err(ReleaseError::Invalid(e)) if e["reason"].starts_with("The reason cannot be used: the text carries Envoy")),
        "{refused:?}"
    );

    let later = {
        use chrono::Datelike;
        let first = chrono::NaiveDate::from_ymd_opt(r.release_at.year(), r.release_at.month(), 1)
            .expect("date")
            .checked_add_months(chrono::Months::new(1))
            .expect("month");
        s.app
            .settings
            .calendar()
            .month(first.year(), first.month())
            .expect("next Patch Tuesday")
            .patch_tuesday
            .to_string()
    };
    let cases: [ReasonCase; 3] = [
        (
            "cancel",
            vec![
                ("reason", "Replaced; see Envoy::Http::Utility::parse"),
                ("confirm", "yes"),
            ],
            "c-reason-error",
            "value=\"Replaced; see Envoy::Http::Utility::parse\"",
        ),
        (
            "postpone",
            vec![
                ("patch_tuesday", later.as_str()),
                ("reason", "@@ -10,7 +10,9 @@ bool validate()"),
            ],
            "pp-reason-error",
            "value=\"@@ -10,7 +10,9 @@ bool validate()\"",
        ),
        (
            "exception",
            vec![("reason", "Needed by Envoy::Http::Utility")],
            "e-reason-error",
            "value=\"Needed by Envoy::Http::Utility\"",
        ),
    ];
    for (form, fields, error_id, kept) in cases {
        let response = planner.post(&format!("{page}/{form}"), &fields).await;
        assert_eq!(response.status(), 422, "{form}");
        let html = response.text().await.expect("page");
        let message = error_beside(&html, error_id)
            .unwrap_or_else(|| panic!("{form}: no message beside the reason: {html}"));
        assert!(
            message.starts_with("The reason cannot be used: the text carries"),
            "{form}: {message}"
        );
        assert!(html.contains(kept), "{form}: the reason typed is kept");
    }
    let unchanged = find(&s, id).await;
    assert_eq!(
        (
            unchanged.revision,
            unchanged.release_at,
            unchanged.cancelled_at,
            unchanged.non_security_exception
        ),
        (r.revision, r.release_at, None, None),
        "nothing was changed"
    );
    // Prose goes through.
    let done = planner
        .post(
            &format!("{page}/exception"),
            &[("reason", "Needed to build the fix.")],
        )
        .await;
    assert_eq!(done.status(), 303);
    // A cancel asks first, on a page of its own, and a post that skipped it only shows it.
    let ask = planner.get(&format!("{page}/cancel")).await;
    assert_eq!(ask.status(), 200);
    let ask = ask.text().await.expect("page");
    assert!(ask.contains("This cannot be undone"), "{ask}");
    assert!(
        ask.contains("No member has been mailed about it yet"),
        "{ask}"
    );
    let skipped = planner
        .post(
            &format!("{page}/cancel"),
            &[("reason", "Fixed in a later release instead.")],
        )
        .await;
    assert_eq!(skipped.status(), 200);
    let skipped = skipped.text().await.expect("page");
    assert!(skipped.contains("value=\"Fixed in a later release instead.\""));
    assert!(
        find(&s, id).await.cancelled_at.is_none(),
        "not cancelled unconfirmed"
    );
    let bare = planner
        .post(
            &format!("{page}/cancel"),
            &[("reason", " "), ("confirm", "yes")],
        )
        .await;
    assert_eq!(bare.status(), 422);
    assert!(bare
        .text()
        .await
        .expect("page")
        .contains("id=\"c-reason-error\""));
    assert!(find(&s, id).await.cancelled_at.is_none());
    let done = planner
        .post(
            &format!("{page}/cancel"),
            &[
                ("reason", "Fixed in a later release instead."),
                ("confirm", "yes"),
            ],
        )
        .await;
    assert_eq!(done.status(), 303);
    assert_eq!(
        find(&s, id).await.cancel_reason.as_deref(),
        Some("Fixed in a later release instead.")
    );
    // Once cancelled, the confirmation page sends back to the release.
    assert_eq!(planner.get(&format!("{page}/cancel")).await.status(), 303);
}

async fn an_unknown_upstream_is_a_field_error(backend: Backend) {
    let Some(s) = setup(backend).await else {
        return;
    };
    let id = planned(&s, Utc::now()).await;
    let calendar = s.app.settings.calendar();
    let planner = s.planner.clone();
    let (upload, plan) = s
        .app
        .with_db(move |c| {
            let upload = release::add_patch(
                c,
                id,
                &Upload {
                    filename: "0001.patch".into(),
                    bytes: PROJECT_PATCH.as_bytes().to_vec(),
                    release_line: "1.9.5".into(),
                    upstream_id: Some(987_654),
                    is_security_fix: true,
                },
                &planner,
            );
            let plan = release::plan(
                c,
                &calendar,
                &Plan {
                    release_at: Some(Utc::now() + chrono::Duration::days(3)),
                    upstream_id: Some(987_654),
                    ..plan_of(ReleaseKind::ThirdParty)
                },
                &planner,
                Utc::now(),
            );
            Ok((upload, plan))
        })
        .await;
    assert!(
        matches!(&upload, Err(ReleaseError::Invalid(e)) if e["origin"] == "There is no such upstream."),
        "{upload:?}"
    );
    assert!(
        matches!(&plan, Err(ReleaseError::Invalid(e)) if e["upstream_id"] == "There is no such upstream."),
        "{plan:?}"
    );

    let page = format!("/manage/releases/{id}");
    let planner = Browser::open(&s.app).await;
    planner.sign_in("rm1@project.example", PASSWORD).await;
    for (origin, message) in [
        ("envoy", "Choose the project or one of the upstreams."),
        ("987654", "There is no such upstream."),
    ] {
        let response = planner
            .post_file(
                &format!("{page}/patches"),
                &[
                    ("release_line", "1.9.5"),
                    ("origin", origin),
                    ("security_fix", "yes"),
                ],
                ("0001-normalize-paths.patch", PROJECT_PATCH.as_bytes()),
            )
            .await;
        assert_eq!(response.status(), 422, "origin {origin}");
        let html = response.text().await.expect("page");
        assert_eq!(
            error_beside(&html, "u-origin-error").as_deref(),
            Some(message),
            "origin {origin}"
        );
        assert!(html
            .contains("id=\"u-line\" name=\"release_line\" placeholder=\"1.9.5\" value=\"1.9.5\""));
        assert!(html.contains("name=\"security_fix\" value=\"yes\" checked"));
    }
    // A file over the size limit is refused beside its field, and the form keeps the rest.
    let huge = vec![b'+'; 5 * 1024 * 1024 + 100 * 1024];
    let response = planner
        .post_file(
            &format!("{page}/patches"),
            &[
                ("release_line", "1.9.5"),
                ("origin", ""),
                ("security_fix", "yes"),
            ],
            ("0002-huge.patch", &huge),
        )
        .await;
    assert_eq!(response.status(), 422);
    let html = response.text().await.expect("page");
    assert!(
        error_beside(&html, "u-file-error").is_some_and(|m| m.contains("larger than 5 MiB")),
        "{:?}",
        error_beside(&html, "u-file-error")
    );
    assert!(html.contains("name=\"security_fix\" value=\"yes\" checked"));
    let stored = s.app.with_db(move |c| release::patches_of(c, id)).await;
    assert!(stored.is_empty(), "nothing was filed as the project's");

    let response = planner
        .post(
            "/manage/releases",
            &[
                ("kind", "third-party"),
                ("title", "Security release 1.9.6"),
                ("release_lines", "1.9.6"),
                ("release_at", "2099-01-05T12:00"),
                ("upstream_id", "987654"),
            ],
        )
        .await;
    assert_eq!(response.status(), 422);
    let html = response.text().await.expect("page");
    assert_eq!(
        error_beside(&html, "p-upstream_id-error").as_deref(),
        Some("There is no such upstream.")
    );
    assert!(
        html.contains("value=\"Security release 1.9.6\"")
            && html.contains("value=\"2099-01-05T12:00\"")
    );
    assert_eq!(s.app.with_db(release::list).await.len(), 1);
}

async fn a_zero_days_notice_is_checked_by_the_workflow(backend: Backend) {
    let Some(s) = setup(backend).await else {
        return;
    };
    let plan = |hours: &str| {
        edl_cli(
            &s.app,
            &[
                "release",
                "plan",
                "--kind",
                "zero-day",
                "--title",
                "Urgent fix 1.9.5",
                "--line",
                "1.9.5",
                "--at",
                "2099-01-05T12:00:00Z",
                "--notice-hours",
                hours,
                "--as",
                "rm1@project.example",
            ],
        )
    };
    let refused = plan("500");
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains("Give the member notice in whole hours, from 0 to 72."),
        "{stderr}"
    );
    assert!(s.app.with_db(release::list).await.is_empty());
    // The most it allows is given as asked, not capped.
    let planned = plan("72");
    assert!(
        planned.status.success(),
        "{}",
        String::from_utf8_lossy(&planned.stderr)
    );
    let r = s.app.with_db(release::list).await.remove(0);
    assert_eq!(r.notice_hours, 72);
    assert_eq!(
        r.release_at - r.disclosure_at.expect("notice"),
        chrono::Duration::hours(72)
    );

    // The web form reads the number and leaves the limit to the workflow.
    let planner = Browser::open(&s.app).await;
    planner.sign_in("rm1@project.example", PASSWORD).await;
    let response = planner
        .post(
            "/manage/releases",
            &[
                ("kind", "zero-day"),
                ("title", "Urgent fix 1.9.6"),
                ("release_lines", "1.9.6"),
                ("notice_hours", "500"),
            ],
        )
        .await;
    assert_eq!(response.status(), 422);
    let html = response.text().await.expect("page");
    assert_eq!(
        error_beside(&html, "p-notice_hours-error").as_deref(),
        Some("Give the member notice in whole hours, from 0 to 72.")
    );
    assert!(html.contains("value=\"500\"") && html.contains("value=\"Urgent fix 1.9.6\""));
    assert_eq!(s.app.with_db(release::list).await.len(), 1);
}

/// The `<select>` of the "Set origin" form of patch `patch`.
fn origin_select(html: &str, patch: i64) -> &str {
    let start = html
        .find(&format!("<select id=\"o-{patch}\""))
        .unwrap_or_else(|| panic!("patch {patch} has a Set origin form: {html}"));
    let end = html[start..].find("</select>").expect("the end") + start;
    &html[start..end]
}

/// The `<article>` of patch `patch` on the release page.
fn article_of(html: &str, patch: i64) -> &str {
    let start = html
        .find(&format!("<article class=\"patch\" id=\"patch-{patch}\">"))
        .unwrap_or_else(|| panic!("patch {patch} is listed"));
    let end = html[start..].find("</article>").expect("the end") + start;
    &html[start..end]
}

async fn the_set_origin_form_shows_the_current_origin_and_keeps_a_refused_choice(backend: Backend) {
    let Some(s) = setup(backend).await else {
        return;
    };
    let id = planned(&s, Utc::now()).await;
    let elsewhere = planned(&s, Utc::now()).await;
    let project = add_patch(&s, id, "0001-paths.patch", PROJECT_PATCH, None)
        .await
        .expect("stored");
    let flagged = add_patch(&s, id, "0002-jwt.patch", ENVOY_PATCH, None)
        .await
        .expect("stored, flagged");
    assert!(patch_of(&s, id, flagged).await.blocks());
    let page = format!("/manage/releases/{id}");
    let planner = Browser::open(&s.app).await;
    planner.sign_in("rm1@project.example", PASSWORD).await;
    let envoy = s.envoy.to_string();
    let envoy_option = format!("<option value=\"{envoy}\" selected>Envoy</option>");

    let html = planner.get(&page).await.text().await.expect("page");
    let select = origin_select(&html, project);
    assert!(
        select.contains("<option value=\"project\" selected>project</option>")
            && select.matches(" selected").count() == 1
            && !select.contains("required"),
        "{select}"
    );
    // A flagged patch nobody classified has no default: a reason alone cannot move it.
    let select = origin_select(&html, flagged);
    assert!(
        select.contains(" required")
            && select.contains("<option value=\"\" selected>choose…</option>")
            && select.matches(" selected").count() == 1,
        "{select}"
    );

    // A refusal shows the message beside that patch's form, with what was chosen.
    let response = planner
        .post(
            &format!("{page}/patches/{flagged}/reclassify"),
            &[("origin", envoy.as_str()), ("reason", " ")],
        )
        .await;
    assert_eq!(response.status(), 422);
    let html = response.text().await.expect("page");
    let article = article_of(&html, flagged);
    assert_eq!(
        error_beside(article, &format!("r-{flagged}-error")).as_deref(),
        Some("Give the reason for the classification.")
    );
    assert!(article.contains("<details open>"), "{article}");
    assert!(origin_select(article, flagged).contains(&envoy_option));
    assert!(
        !article_of(&html, project).contains("class=\"error\""),
        "only the form that was sent shows the message"
    );
    let response = planner
        .post(
            &format!("{page}/patches/{flagged}/reclassify"),
            &[("origin", "upstream"), ("reason", "Looked at it twice.")],
        )
        .await;
    assert_eq!(response.status(), 422);
    let html = response.text().await.expect("page");
    let article = article_of(&html, flagged);
    assert_eq!(
        error_beside(article, &format!("o-{flagged}-error")).as_deref(),
        Some("Choose the project or one of the upstreams.")
    );
    assert!(
        article.contains("value=\"Looked at it twice.\""),
        "{article}"
    );
    assert!(patch_of(&s, id, flagged).await.blocks(), "nothing moved");

    let done = planner
        .post(
            &format!("{page}/patches/{flagged}/reclassify"),
            &[("origin", envoy.as_str()), ("reason", "Envoy's fix.")],
        )
        .await;
    assert_eq!(done.status(), 303);
    let html = planner.get(&page).await.text().await.expect("page");
    let select = origin_select(&html, flagged);
    assert!(
        select.contains(&envoy_option) && !select.contains("required"),
        "{select}"
    );

    // Moving it away from Envoy while another release has the same change as Envoy's is
    // refused beside the form, and the reason typed stays.
    add_patch(&s, elsewhere, "0001-jwt.patch", ENVOY_PATCH, Some(s.envoy))
        .await
        .expect("stored as Envoy's");
    let response = planner
        .post(
            &format!("{page}/patches/{flagged}/reclassify"),
            &[
                ("origin", "project"),
                ("reason", "Our own rewrite, reviewed."),
            ],
        )
        .await;
    assert_eq!(response.status(), 422);
    let html = response.text().await.expect("page");
    let article = article_of(&html, flagged);
    let message = error_beside(article, &format!("o-{flagged}-error")).expect("a message");
    assert!(message.contains("stays that upstream"), "{message}");
    assert!(
        article.contains("value=\"Our own rewrite, reviewed.\""),
        "{article}"
    );
    assert!(origin_select(article, flagged).contains("<option value=\"project\" selected>"));
    assert_eq!(patch_of(&s, id, flagged).await.upstream_id, Some(s.envoy));
}

/// A list longer than the chunks the mailing is queued in: every eligible member gets one
/// message, the suspended ones none, a second tick adds nothing, and the disclosure is recorded
/// once with the whole count.
async fn a_list_of_many_chunks_is_mailed_once_per_member(backend: Backend) {
    use edl::db::schema::{audit_log, members, outbox};
    // Signed only: the members here have no keys, and this is about the count.
    let Some(s) = setup_with(backend, &[("EDL_ENCRYPTION", "off")]).await else {
        return;
    };
    const ACTIVE: usize = 1_234;
    s.app
        .with_db(|c| {
            edl::db::write_transaction(c, |c| {
                let now = edl::db::now();
                for i in 0..ACTIVE + 10 {
                    let domain = edl::domain::OrgDomain::parse(&format!("org{i}.example"))
                        .expect("a domain");
                    let alias = edl::domain::SecurityAlias::parse(&format!("security@{domain}"))
                        .expect("an alias");
                    let status = if i < ACTIVE {
                        edl::domain::MemberStatus::Active
                    } else {
                        edl::domain::MemberStatus::Suspended
                    };
                    diesel::insert_into(members::table)
                        .values((
                            members::org_name.eq(format!("Org {i}")),
                            members::org_domain.eq(&domain),
                            members::security_alias.eq(&alias),
                            members::policy_version.eq(1),
                            members::status.eq(status),
                            members::joined_at.eq(now),
                            members::last_reviewed_at.eq(now),
                            members::next_review_due.eq(now + chrono::Duration::days(365)),
                            members::created_at.eq(now),
                            members::updated_at.eq(now),
                        ))
                        .execute(c)?;
                }
                Ok::<_, edl::db::DbError>(())
            })
        })
        .await;
    let now = Utc::now();
    let id = planned(&s, now).await;
    add_patch(&s, id, "0001-normalize-paths.patch", PROJECT_PATCH, None)
        .await
        .expect("project patch");
    approve(&s, id, &s.approver).await.expect("approved");
    let disclosure = utc(find(&s, id).await.disclosure_at.expect("a disclosure time"));

    let at = disclosure + chrono::Duration::minutes(1);
    assert_eq!(distribute(&s, at).await.mailed, ACTIVE);
    assert_eq!(
        distribute(&s, at + chrono::Duration::minutes(1))
            .await
            .mailed,
        0
    );

    let (rows, members_mailed, attachments): (i64, i64, i64) = s
        .app
        .with_db(move |c| {
            let rows: i64 = outbox::table
                .filter(outbox::release_id.eq(id))
                .filter(outbox::template.eq(distribution::EMBARGOED))
                .count()
                .get_result(c)?;
            let members_mailed = outbox::table
                .filter(outbox::release_id.eq(id))
                .filter(outbox::template.eq(distribution::EMBARGOED))
                .select(outbox::member_id)
                .load::<Option<i64>>(c)?
                .into_iter()
                .collect::<std::collections::HashSet<_>>()
                .len() as i64;
            let attachments: i64 = edl::db::schema::outbox_attachments::table
                .inner_join(outbox::table)
                .filter(outbox::release_id.eq(id))
                .count()
                .get_result(c)?;
            Ok((rows, members_mailed, attachments))
        })
        .await;
    assert_eq!((rows, members_mailed, attachments), (1_234, 1_234, 1_234));
    let disclosed: Vec<String> = s
        .app
        .with_db(move |c| {
            Ok(audit_log::table
                .filter(audit_log::action.eq("release.disclosed"))
                .select(audit_log::details)
                .load(c)?)
        })
        .await;
    assert_eq!(disclosed.len(), 1, "{disclosed:?}");
    assert!(disclosed[0].contains("\"members\":1234"), "{disclosed:?}");
}

/// `edl release approve` runs in a process of its own, away from the service's scheduler (which
/// ticks hourly here): what is due at the approval is queued by the command itself, and the
/// service's workers send it.
async fn a_late_approval_from_the_command_line_is_queued_at_once(backend: Backend) {
    let Some(s) = setup(backend).await else {
        return;
    };
    add_member(&s.app, "alpha.example", "active", 1).await;
    let (calendar, planner) = (s.app.settings.calendar(), s.planner.clone());
    let now = Utc::now();
    // A 0-day whose early disclosure is due as soon as it is approved.
    let id = s
        .app
        .with_db(move |c| {
            release::plan(
                c,
                &calendar,
                &Plan {
                    kind: ReleaseKind::ZeroDay,
                    title: "0-day 1.9.5".into(),
                    release_at: Some(now + chrono::Duration::hours(8)),
                    notice_hours: 8,
                    ..plan_of(ReleaseKind::ZeroDay)
                },
                &planner,
                now,
            )
            .and_then(|id| {
                let advisory = AdvisoryForm {
                    cve_id: "CVE-2026-0099".into(),
                    severity: "critical".into(),
                    summary: "Exploited in the wild.".into(),
                    fixed_versions: "1.9.5".into(),
                    ..AdvisoryForm::default()
                }
                .parse()
                .expect("a valid advisory");
                release::add_advisory(c, id, &advisory, &planner).map(|_| id)
            })
            .map_err(err)
        })
        .await;
    add_patch(&s, id, "0001-normalize-paths.patch", PROJECT_PATCH, None)
        .await
        .expect("patch");
    let approved = edl_cli_with_input(
        &s.app,
        &[
            "release",
            "approve",
            &id.to_string(),
            "--as",
            "rm2@project.example",
            "--password-stdin",
        ],
        &format!("{PASSWORD}\n"),
    );
    let out = String::from_utf8_lossy(&approved.stdout).to_string();
    assert!(
        approved.status.success(),
        "{}",
        String::from_utf8_lossy(&approved.stderr)
    );
    assert!(
        out.contains("Queued the embargoed mail for 1 member;"),
        "{out}"
    );
    s.app.state.mailer.wake_workers();
    let mail = s
        .smtp
        .wait_for("security@alpha.example", "[EMBARGOED]")
        .await;
    assert!(mail.text().contains("0-day 1.9.5"), "{}", mail.text());
    assert!(find(&s, id).await.disclosed_at.is_some());
}
