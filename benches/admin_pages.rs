//! How fast are the admin pages with a list the size of a large project's?
//!
//! Starts the service in this process (SQLite by default, PostgreSQL with `--postgres`) and,
//! before any timing, fills its database: 10,000 members with OpenPGP keys of their own,
//! 10,000 applications in every status with their check results and, on some, votes and
//! comments, a working group of accounts, one approved release mailed to every member (queued
//! by the service's own distribution tick, then marked as the outbox workers would have left
//! it, with receipts from three members in five), the reminders the scheduler's membership
//! jobs queue for this data, and 100,000 audit entries chained by the service's own hash,
//! followed by what the service itself appends. The chain is then walked as `edl audit verify`
//! walks it and must be intact. On PostgreSQL the database is vacuumed and analysed, as
//! autovacuum would do after such a load. The checkpoint the admin pages verify from is left
//! where the migration made it: the first page view walks the whole chain and moves it, as in
//! normal operation, and that first view is timed on its own.
//!
//! Then it signs in over HTTP like a browser (the CSRF token from the form, the session cookie)
//! and asks each admin, review and release-manager page N times in a row (300 by default), then
//! again from C clients at once (8 by default, each signed in with a session of its own, N
//! requests in all), and prints p50 and p99 latency and the size of each page, beside `GET
//! /healthz` measured the same way in the same run as the reference. Target (issue 13): every
//! admin page's p99 under 50 ms.
//!
//! Run: `cargo bench --bench admin_pages` (options: `-- --requests N --clients C --members M
//! --applications A --audit E --postgres postgres://USER@HOST/DB --only TEXT --keep`; with
//! `--postgres`, the run uses a database created from that URL and dropped after; `--only`
//! measures only the pages whose label contains TEXT; `--keep` leaves the database behind and
//! prints where, for EXPLAIN).

#![allow(clippy::expect_used, reason = "a benchmark stops at its first failure")]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{NaiveDateTime, Utc};
use diesel::prelude::*;
use pgp::composed::{
    ArmorOptions, EncryptionCaps, KeyType, SecretKeyParamsBuilder, SubkeyParamsBuilder,
};
use pgp::crypto::ecc_curve::ECCCurve;
use rand_core06::OsRng;

use edl::accounts::{self, AccountEmail, Role};
use edl::app::Context;
use edl::audit;
use edl::config::Settings;
use edl::db::schema::{
    applications, audit_log, comments, criteria_results, members, outbox, release_receipts, votes,
};
use edl::db::{self, DbConnection, DbError, DbPool};
use edl::domain::ReleaseKind;
use edl::releases::distribution::{self, EMBARGOED};
use edl::releases::release::{self, Actor, AdvisoryForm, Plan, Upload};
use edl::startup::{Application, Options};

const PASSWORD: &str = "tangerine-kettle-orbit-42";
const ADMIN: &str = "admin@project.example";
/// The per-page target of issue 13.
const TARGET: Duration = Duration::from_millis(50);

const PATCH: &str = "From 1111111111111111111111111111111111111111 Mon Sep 17 00:00:00 2001
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

struct Args {
    requests: usize,
    clients: usize,
    members: usize,
    applications: usize,
    audit: usize,
    postgres: Option<String>,
    /// Measure only the pages whose label contains this.
    only: Option<String>,
    /// Leave the database behind (for EXPLAIN), and say where it is.
    keep: bool,
}

fn args() -> Args {
    let mut out = Args {
        requests: 300,
        clients: 8,
        members: 10_000,
        applications: 10_000,
        audit: 100_000,
        postgres: None,
        only: None,
        keep: false,
    };
    let argv: Vec<String> = std::env::args().collect();
    let mut i = 1;
    while i < argv.len() {
        let value = argv.get(i + 1);
        let number = value.and_then(|v| v.parse::<u64>().ok());
        match (argv[i].as_str(), number) {
            ("--requests", Some(v)) => out.requests = v.max(1) as usize,
            ("--clients", Some(v)) => out.clients = v.max(1) as usize,
            ("--members", Some(v)) => out.members = v.max(100) as usize,
            ("--applications", Some(v)) => out.applications = v.max(100) as usize,
            ("--audit", Some(v)) => out.audit = v as usize,
            ("--postgres", _) => out.postgres = value.cloned(),
            ("--only", _) => out.only = value.cloned(),
            ("--keep", _) => out.keep = true,
            _ => {}
        }
        i += 1;
    }
    out
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p / 100.0) * (sorted.len() as f64 - 1.0)).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

fn csrf_token_in(html: &str) -> Option<String> {
    let marker = "name=\"csrf_token\" value=\"";
    let start = html.find(marker)? + marker.len();
    let end = html[start..].find('"')? + start;
    Some(html[start..end].to_owned())
}

// ---------------------------------------------------------------------------------------------
// What the database holds: made up, but shaped like a large project's list

/// A small deterministic generator, so every run seeds the same data.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        self.0 >> 33
    }

    fn pick<'a>(&mut self, from: &[&'a str]) -> &'a str {
        from[self.next() as usize % from.len()]
    }
}

const FIRST: &[&str] = &[
    "Harbor",
    "Northwind",
    "Blue",
    "Granite",
    "Kestrel",
    "Summit",
    "Cobalt",
    "Maple",
    "Orbit",
    "Silver",
    "Quartz",
    "Tidal",
    "Aurora",
    "Beacon",
    "Cedar",
    "Delta",
    "Ember",
    "Falcon",
    "Glacier",
    "Horizon",
];
const SECOND: &[&str] = &[
    "Cloud",
    "Networks",
    "Systems",
    "Labs",
    "Mesh",
    "Data",
    "Works",
    "Platform",
    "Logic",
    "Software",
    "Computing",
    "Security",
];
const SUFFIX: &[&str] = &["Inc.", "GmbH", "Ltd", "B.V.", "S.A.", "LLC", "AB", "Oy"];

fn org_name(rng: &mut Lcg) -> String {
    format!(
        "{} {} {}",
        rng.pick(FIRST),
        rng.pick(SECOND),
        rng.pick(SUFFIX)
    )
}

/// The domain of member `i` (and of the approved application it came from).
fn member_domain(i: usize) -> String {
    format!("org{i:05}.example")
}

/// An Ed25519 key with a Curve25519 encryption subkey whose user ID names `alias`, armored.
fn member_key(alias: &str) -> String {
    let mut encryption = SubkeyParamsBuilder::default();
    encryption
        .key_type(KeyType::ECDH(ECCCurve::Curve25519Legacy))
        .can_encrypt(EncryptionCaps::All);
    let mut params = SecretKeyParamsBuilder::default();
    params
        .key_type(KeyType::Ed25519Legacy)
        .can_certify(true)
        .can_sign(true)
        .primary_user_id(format!("Security team <{alias}>"))
        .subkeys(vec![encryption.build().expect("subkey params")]);
    params
        .build()
        .expect("key params")
        .generate(OsRng)
        .expect("a key")
        .to_public_key()
        .to_armored_string(ArmorOptions::default())
        .expect("armor")
}

/// The domains of the members: first those of the approved applications they came from, in
/// order, then members from before applications were kept.
fn member_domains(members: usize, applications: usize) -> Vec<String> {
    (0..applications)
        .filter(|i| application_status(*i) == "approved")
        .chain(applications..)
        .take(members)
        .map(member_domain)
        .collect()
}

/// Members' keys with the fingerprint and expiry the service records for them, made on every
/// core. Every hundredth member has none.
type KeyFacts = Option<(String, String, Option<NaiveDateTime>)>;

fn member_keys(domains: &[String]) -> Vec<KeyFacts> {
    let threads = std::thread::available_parallelism().map_or(2, |p| p.get());
    let chunk = domains.len().div_ceil(threads).max(1);
    std::thread::scope(|scope| {
        let handles: Vec<_> = domains
            .chunks(chunk)
            .enumerate()
            .map(|(c, part)| {
                scope.spawn(move || {
                    part.iter()
                        .enumerate()
                        .map(|(k, domain)| {
                            if (c * chunk + k) % 100 == 99 {
                                return None;
                            }
                            let key = member_key(&format!("security@{domain}"));
                            let (fingerprint, expires) =
                                edl::openpgp::member_key::facts(&key).expect("a readable key");
                            Some((key, fingerprint, expires.map(|e| e.naive_utc())))
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("key generation"))
            .collect()
    })
}

async fn on_db<T, F>(pool: &DbPool, work: F) -> T
where
    T: Send + 'static,
    F: FnOnce(&mut DbConnection) -> Result<T, DbError> + Send + 'static,
{
    db::run(pool, work).await.expect("database work succeeds")
}

/// Runs `$body` with `$c` bound to the backend's own connection: diesel's multi-backend
/// connection cannot send a multi-row INSERT, each backend can.
macro_rules! on_backend {
    ($conn:expr, |$c:ident| $body:expr) => {
        match $conn {
            DbConnection::Postgresql($c) => $body,
            DbConnection::Sqlite($c) => $body,
        }
    };
}

/// Rows per multi-row INSERT: under SQLite's 32,766 bound parameters for the widest table.
const BATCH: usize = 500;

fn days(n: i64) -> chrono::Duration {
    chrono::Duration::days(n)
}

/// The working group: the admin (every role, so the review and release pages open too),
/// reviewers, approvers and release managers, made as `edl user add` makes them. One
/// password hash serves them all: hashing is not what is measured.
async fn add_accounts(pool: &DbPool) -> (Vec<i64>, Actor, Actor) {
    let hash = accounts::password::hash(PASSWORD).expect("hash");
    let mut people: Vec<(String, String, Vec<Role>)> = vec![(
        ADMIN.to_owned(),
        "Ada Admin".to_owned(),
        vec![
            Role::Admin,
            Role::Reviewer,
            Role::Approver,
            Role::ReleaseManager,
        ],
    )];
    for k in 0..14 {
        let roles = if k % 4 == 0 {
            vec![Role::Reviewer, Role::Approver]
        } else {
            vec![Role::Reviewer]
        };
        people.push((
            format!("reviewer{k:02}@project.example"),
            format!("Reviewer {k:02}"),
            roles,
        ));
    }
    for k in 0..3 {
        people.push((
            format!("release{k}@project.example"),
            format!("Release Manager {k}"),
            vec![Role::ReleaseManager],
        ));
    }
    on_db(pool, move |c| {
        let mut ids = Vec::new();
        for (email, name, roles) in &people {
            let address = AccountEmail::parse(email).expect("an email");
            let id = accounts::create(c, "cli", &address, name, &hash, roles, false)
                .map_err(|e| DbError::Task(e.to_string()))?;
            ids.push(id);
        }
        let reviewers = ids[1..15].to_vec();
        let actor = |i: usize| Actor {
            account_id: ids[i],
            email: people[i].0.clone(),
        };
        Ok((reviewers, actor(15), actor(16)))
    })
    .await
}

/// The status of application `i`: 40% approved, 15% rejected, 10% withdrawn, 20% in review,
/// 5% recommended, 10% waiting for their alias to be confirmed.
fn application_status(i: usize) -> &'static str {
    match i % 20 {
        0..=7 => "approved",
        8..=10 | 19 => "in-review",
        11 => "recommended",
        12..=14 => "rejected",
        15 | 16 => "withdrawn",
        _ => "awaiting-confirmation",
    }
}

/// Applications with their check results, votes and comments. Returns the ids, in order.
async fn add_applications(pool: &DbPool, n: usize, reviewers: Vec<i64>) -> Vec<i64> {
    on_db(pool, move |c| {
        db::write_transaction(c, |c| {
            let now = db::now();
            let mut rng = Lcg(7);
            let mut ids: Vec<i64> = Vec::with_capacity(n);
            for start in (0..n).step_by(BATCH) {
                let mut rows = Vec::new();
                for i in start..(start + BATCH).min(n) {
                    let status = application_status(i);
                    let domain = if status == "approved" {
                        member_domain(i)
                    } else {
                        format!("applicant{i:05}.example")
                    };
                    // Open applications are recent; decided ones spread over three years.
                    let created = match status {
                        "awaiting-confirmation" => now - chrono::Duration::hours((i % 48) as i64),
                        "in-review" | "recommended" => now - days((i % 90) as i64 + 1),
                        _ => now - days(1100) + days((i * 1000 / n) as i64),
                    };
                    let confirmed = (status != "awaiting-confirmation")
                        .then(|| created + chrono::Duration::hours(2));
                    let decided = matches!(status, "approved" | "rejected" | "withdrawn")
                        .then(|| created + days(14));
                    let name = org_name(&mut rng);
                    rows.push((
                        (
                            applications::status.eq(status),
                            applications::org_name.eq(name.clone()),
                            applications::org_domains.eq(format!("[\"{domain}\"]")),
                            applications::primary_domain.eq(domain.clone()),
                            applications::website.eq(format!("https://{domain}/")),
                            applications::security_alias.eq(format!("security@{domain}")),
                            applications::category.eq("distributor"),
                            applications::product_name.eq(format!("{name} Mesh")),
                            applications::product_url.eq(format!("https://{domain}/mesh")),
                            applications::redistribution
                                .eq("We build and ship the project in our distribution."),
                            applications::user_base
                                .eq("Several thousand companies run our distribution."),
                            applications::user_base_size.eq("about 3000 companies"),
                            applications::track_record
                                .eq(format!("[\"https://{domain}/security/advisories\"]")),
                            applications::community_links
                                .eq("[\"https://github.com/project/project/pull/1234\"]"),
                            applications::contributor_handles.eq("@robin-rep"),
                            applications::rep_name.eq("Robin Rep"),
                        ),
                        (
                            applications::rep_email.eq(format!("robin@{domain}")),
                            applications::rep_chat.eq(""),
                            applications::voucher_alias.eq(None::<String>),
                            applications::days_to_fix.eq(10),
                            applications::pgp_key.eq(None::<String>),
                            applications::policy_version.eq(1),
                            applications::attests_stage_privately.eq(true),
                            applications::attests_contribute_back.eq(true),
                            applications::status_token_hash.eq(format!("{i:064x}")),
                            applications::alias_confirmed_at.eq(confirmed),
                            applications::decided_at.eq(decided),
                            applications::decision_reason
                                .eq((status == "rejected").then_some("Not a distributor.")),
                            applications::created_at.eq(created),
                            applications::updated_at.eq(decided.or(confirmed).unwrap_or(created)),
                            applications::recommended_at
                                .eq((status == "recommended").then(|| created + days(7))),
                        ),
                    ));
                }
                ids.extend(on_backend!(c, |c| diesel::insert_into(
                    applications::table
                )
                .values(rows)
                .returning(applications::id)
                .get_results::<i64>(c))?);
            }

            // Every application whose alias was confirmed has its check results.
            let checks = edl::membership::checks::ALL_CHECKS;
            let mut results = Vec::new();
            for (i, id) in ids.iter().enumerate() {
                if application_status(i) == "awaiting-confirmation" {
                    continue;
                }
                for (k, (key, title)) in checks.iter().enumerate() {
                    let outcome = match (i + k) % 11 {
                        0 => "needs-review",
                        1 if application_status(i) == "rejected" => "fail",
                        _ => "pass",
                    };
                    results.push((
                        criteria_results::application_id.eq(*id),
                        criteria_results::check_key.eq(*key),
                        criteria_results::title.eq(*title),
                        criteria_results::outcome.eq(outcome),
                        criteria_results::reason.eq(format!("{title}: checked.")),
                        criteria_results::required.eq(k < 6),
                        criteria_results::checked_at.eq(now - days(1)),
                    ));
                }
            }
            for chunk in results.chunks(BATCH * 4) {
                on_backend!(c, |c| diesel::insert_into(criteria_results::table)
                    .values(chunk.to_vec())
                    .execute(c))?;
            }

            // Votes from two to four reviewers on every application that reached review, and
            // a comment or two on every third.
            let (mut cast, mut said) = (Vec::new(), Vec::new());
            for (i, id) in ids.iter().enumerate() {
                let status = application_status(i);
                if matches!(status, "awaiting-confirmation" | "withdrawn") {
                    continue;
                }
                let vote = if status == "rejected" {
                    "reject"
                } else {
                    "approve"
                };
                for k in 0..(2 + i % 3) {
                    let reviewer = reviewers[(i + k) % reviewers.len()];
                    cast.push((
                        votes::application_id.eq(*id),
                        votes::account_id.eq(reviewer),
                        votes::vote.eq(vote),
                        votes::reason.eq("Checked their advisories and release notes."),
                        votes::created_at.eq(now - days(2)),
                        votes::updated_at.eq(now - days(2)),
                    ));
                }
                if i % 3 == 0 {
                    for k in 0..(1 + i % 2) {
                        said.push((
                            comments::application_id.eq(*id),
                            comments::account_id.eq(reviewers[(i + k + 5) % reviewers.len()]),
                            comments::body.eq("Their security page lists a team alias and \
                                               two advisories from this year."),
                            comments::created_at.eq(now - days(3)),
                        ));
                    }
                }
            }
            for chunk in cast.chunks(BATCH * 4) {
                on_backend!(c, |c| diesel::insert_into(votes::table)
                    .values(chunk.to_vec())
                    .execute(c))?;
            }
            for chunk in said.chunks(BATCH * 4) {
                on_backend!(c, |c| diesel::insert_into(comments::table)
                    .values(chunk.to_vec())
                    .execute(c))?;
            }
            Ok::<_, DbError>(ids)
        })
    })
    .await
}

/// Members: those made from approved applications first, then members from before
/// applications were kept. 95% active, 3% suspended, 2% removed; 1% on an older policy
/// version; 3% due for their yearly review.
async fn add_members(
    pool: &DbPool,
    n: usize,
    applications: Arc<Vec<i64>>,
    domains: Vec<String>,
    keys: Vec<KeyFacts>,
    policy_version: i32,
) {
    on_db(pool, move |c| {
        db::write_transaction(c, |c| {
            let now = db::now();
            let mut rng = Lcg(11);
            let approved: Vec<i64> = applications
                .iter()
                .enumerate()
                .filter(|(i, _)| application_status(*i) == "approved")
                .map(|(_, id)| *id)
                .collect();
            let mut rows = Vec::new();
            for (j, (domain, key)) in domains.into_iter().zip(keys).enumerate().take(n) {
                let application = approved.get(j).copied();
                let (status, reason) = match j % 100 {
                    0..=2 => ("suspended", Some("Did not answer the yearly review.")),
                    3 | 4 => ("removed", Some("Left the project.")),
                    _ => ("active", None),
                };
                let joined = now - days(30 + (j % 1000) as i64);
                let reviewed = joined + days(((j % 1000) as i64 / 365) * 365);
                let due = if j % 33 == 0 {
                    now - days(5)
                } else {
                    now + days(1 + (j % 360) as i64)
                };
                let (pgp_key, fingerprint, expires) = match key {
                    Some((k, f, e)) => (Some(k), Some(f), e),
                    None => (None, None, None),
                };
                rows.push((
                    members::application_id.eq(application),
                    members::org_name.eq(org_name(&mut rng)),
                    members::org_domain.eq(domain.clone()),
                    members::security_alias.eq(format!("security@{domain}")),
                    members::pgp_key.eq(pgp_key),
                    members::policy_version.eq(if j % 100 == 50 {
                        policy_version - 1
                    } else {
                        policy_version
                    }),
                    members::status.eq(status),
                    members::status_reason.eq(reason),
                    members::joined_at.eq(joined),
                    members::last_reviewed_at.eq(reviewed),
                    members::next_review_due.eq(due),
                    members::created_at.eq(joined),
                    members::updated_at.eq(reviewed),
                    members::pgp_fingerprint.eq(fingerprint),
                    members::pgp_expires_at.eq(expires),
                    members::rep_name.eq(format!("Rep {j}")),
                    members::rep_email.eq(format!("rep{j}@{domain}")),
                ));
                if rows.len() == BATCH {
                    let batch = std::mem::take(&mut rows);
                    on_backend!(c, |c| diesel::insert_into(members::table)
                        .values(batch)
                        .execute(c))?;
                }
            }
            if !rows.is_empty() {
                on_backend!(c, |c| diesel::insert_into(members::table)
                    .values(rows)
                    .execute(c))?;
            }
            Ok::<_, DbError>(())
        })
    })
    .await
}

/// Appends `n` entries to the audit log, chained from its last entry with the service's own
/// hash, as `audit::record` would have chained them one by one over the past two years.
async fn add_audit_history(pool: &DbPool, n: usize, applications: usize, members: usize) {
    on_db(pool, move |c| {
        db::write_transaction(c, |c| {
            let last: Option<(i64, String)> = audit_log::table
                .order(audit_log::seq.desc())
                .select((audit_log::seq, audit_log::hash))
                .first(c)
                .optional()?;
            let (mut seq, mut prev) = last.unwrap_or((0, audit::GENESIS.to_owned()));
            let start = db::now() - days(730);
            let step_us = (730 * 86_400 * 1_000_000i64) / n.max(1) as i64;
            let actors = ["reviewer03@project.example", "cli", "scheduler", ADMIN];
            let mut rows = Vec::with_capacity(BATCH);
            for i in 0..n {
                seq += 1;
                let occurred_at = start + chrono::Duration::microseconds(step_us * i as i64);
                // Every application and member has a few entries of its own.
                let app = ((i / 10) * 7919) % applications + 1;
                let member = ((i / 10) * 104_729) % members + 1;
                let (actor, action, subject, details) = match i % 10 {
                    0 => (
                        "applicant",
                        "application.submitted",
                        format!("application:{app}"),
                        serde_json::json!({ "org_domains": [format!("applicant{app:05}.example")] }),
                    ),
                    1 => (
                        actors[(i / 10) % 2],
                        "application.vote",
                        format!("application:{app}"),
                        serde_json::json!({ "vote": "approve", "reason": "Checked their advisories." }),
                    ),
                    2 => (
                        "applicant",
                        "application.alias-confirmed",
                        format!("application:{app}"),
                        serde_json::json!({}),
                    ),
                    3 => (
                        ADMIN,
                        "member.created",
                        format!("member:{member}"),
                        serde_json::json!({ "application": app }),
                    ),
                    4 => (
                        "scheduler",
                        "member.policy-accepted",
                        format!("member:{member}"),
                        serde_json::json!({ "version": 1 }),
                    ),
                    5 => (
                        ADMIN,
                        "member.edited",
                        format!("member:{member}"),
                        serde_json::json!({ "rep_name": ["Rep", "Robin Rep"] }),
                    ),
                    6 => (
                        "unknown",
                        "login.failed",
                        "account:unknown".to_owned(),
                        serde_json::json!({ "email": "guess@example.org" }),
                    ),
                    _ => (
                        "member",
                        "release.receipt",
                        format!("release:{}", 1 + i / 5000),
                        serde_json::json!({ "member": member, "revision": 1 }),
                    ),
                };
                let details = details.to_string();
                let hash =
                    audit::entry_hash(&prev, seq, occurred_at, actor, action, &subject, &details);
                rows.push((
                    audit_log::seq.eq(seq),
                    audit_log::occurred_at.eq(occurred_at),
                    audit_log::actor.eq(actor),
                    audit_log::action.eq(action),
                    audit_log::subject.eq(subject),
                    audit_log::details.eq(details),
                    audit_log::prev_hash.eq(prev),
                    audit_log::hash.eq(hash.clone()),
                ));
                prev = hash;
                if rows.len() == BATCH * 4 {
                    let batch = std::mem::take(&mut rows);
                    on_backend!(c, |c| diesel::insert_into(audit_log::table)
                        .values(batch)
                        .execute(c))?;
                }
            }
            if !rows.is_empty() {
                on_backend!(c, |c| diesel::insert_into(audit_log::table)
                    .values(rows)
                    .execute(c))?;
            }
            Ok::<_, DbError>(())
        })
    })
    .await
}

/// One Patch Tuesday release, planned, filled and approved by two release managers, then
/// mailed to every member by the service's own distribution tick at its early-disclosure time.
/// The outbox is then left as the workers would have left it, sent, a few failed, and three
/// members in five have confirmed receipt.
async fn mail_a_release(pool: &DbPool, ctx: &Context, planner: Actor, approver: Actor) -> i64 {
    let calendar = ctx.settings.calendar();
    let tick_ctx = ctx.clone();
    on_db(pool, move |c| {
        let failed = |e: release::ReleaseError| DbError::Task(e.to_string());
        let now = Utc::now();
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
        let id = release::plan(c, &calendar, &plan, &planner, now).map_err(failed)?;
        let advisory = AdvisoryForm {
            cve_id: "CVE-2026-31337".into(),
            severity: "high".into(),
            cvss_vector: String::new(),
            summary: "Authorization policy bypass with crafted paths.".into(),
            affected_versions: "1.9.0 to 1.9.4".into(),
            fixed_versions: "1.9.5".into(),
        }
        .parse()
        .map_err(|e| DbError::Task(format!("{e:?}")))?;
        release::add_advisory(c, id, &advisory, &planner).map_err(failed)?;
        let upload = Upload {
            filename: "0001-normalize-paths.patch".into(),
            bytes: PATCH.as_bytes().to_vec(),
            release_line: "1.9.5".into(),
            upstream_id: None,
            is_security_fix: true,
        };
        release::add_patch(c, id, &upload, &planner).map_err(failed)?;
        edl::releases::approval::approve(c, id, &approver).map_err(failed)?;
        let disclosure = release::find(c, id)?
            .and_then(|r| r.disclosure_at)
            .expect("a Patch Tuesday release has an early-disclosure time");
        let at = disclosure.and_utc().max(now) + chrono::Duration::minutes(1);
        distribution::distribute(c, &tick_ctx, at).map_err(failed)?;
        // What the workers would have made of it: sent and encrypted, a few refused.
        let sent_at = db::now();
        diesel::update(
            outbox::table
                .filter(outbox::release_id.eq(id))
                .filter(outbox::template.eq(EMBARGOED))
                .filter(outbox::status.eq("queued")),
        )
        .set((
            outbox::status.eq("sent"),
            outbox::attempts.eq(1),
            outbox::sent_at.eq(Some(sent_at)),
            outbox::encrypted.eq(Some(true)),
            outbox::updated_at.eq(sent_at),
        ))
        .execute(c)?;
        let refused: Vec<i64> = outbox::table
            .filter(outbox::release_id.eq(id))
            .filter(outbox::template.eq(EMBARGOED))
            .order(outbox::id)
            .limit(25)
            .select(outbox::id)
            .load(c)?;
        diesel::update(outbox::table.filter(outbox::id.eq_any(refused)))
            .set((
                outbox::status.eq("failed"),
                outbox::attempts.eq(8),
                outbox::sent_at.eq(None::<NaiveDateTime>),
                outbox::encrypted.eq(None::<bool>),
                outbox::last_error.eq(Some("550 5.1.1 mailbox unavailable")),
            ))
            .execute(c)?;
        // Three members in five have confirmed receipt by following the link in the mail.
        let mailed: Vec<i64> = outbox::table
            .filter(outbox::release_id.eq(id))
            .filter(outbox::template.eq(EMBARGOED))
            .filter(outbox::status.eq("sent"))
            .select(outbox::member_id.assume_not_null())
            .load(c)?;
        let receipts: Vec<_> = mailed
            .iter()
            .filter(|member| *member % 5 < 3)
            .map(|member| {
                (
                    release_receipts::release_id.eq(id),
                    release_receipts::member_id.eq(*member),
                    release_receipts::revision.eq(1),
                    release_receipts::acknowledged_at.eq(sent_at),
                )
            })
            .collect();
        for chunk in receipts.chunks(BATCH * 4) {
            on_backend!(c, |c| diesel::insert_into(release_receipts::table)
                .values(chunk.to_vec())
                .execute(c))?;
        }
        Ok(id)
    })
    .await
}

/// How many rows a table holds, for the report.
async fn counts(pool: &DbPool) -> BTreeMap<&'static str, i64> {
    on_db(pool, |c| {
        let mut out = BTreeMap::new();
        out.insert("members", members::table.count().get_result(c)?);
        out.insert("applications", applications::table.count().get_result(c)?);
        out.insert(
            "check results",
            criteria_results::table.count().get_result(c)?,
        );
        out.insert("votes", votes::table.count().get_result(c)?);
        out.insert("comments", comments::table.count().get_result(c)?);
        out.insert("outbox", outbox::table.count().get_result(c)?);
        out.insert("receipts", release_receipts::table.count().get_result(c)?);
        out.insert("audit entries", audit_log::table.count().get_result(c)?);
        Ok(out)
    })
    .await
}

// ---------------------------------------------------------------------------------------------
// Measuring

/// A browser signed in as the admin: cookies kept, the CSRF token read from the form.
async fn signed_in(base: &str) -> reqwest::Client {
    let client = reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let form = client
        .get(format!("{base}/login"))
        .send()
        .await
        .expect("the sign-in form");
    let csrf = csrf_token_in(&form.text().await.expect("html")).expect("a CSRF token");
    let response = client
        .post(format!("{base}/login"))
        .form(&[
            ("csrf_token", csrf.as_str()),
            ("email", ADMIN),
            ("password", PASSWORD),
        ])
        .send()
        .await
        .expect("POST /login");
    assert_eq!(response.status(), 303, "the admin signs in");
    client
}

/// What one page answered, one run.
#[derive(Default)]
struct Run {
    latencies: Vec<Duration>,
    bytes: usize,
    statuses: BTreeMap<u16, u64>,
}

impl Run {
    fn merge(&mut self, other: Run) {
        self.latencies.extend(other.latencies);
        self.bytes = self.bytes.max(other.bytes);
        for (status, n) in other.statuses {
            *self.statuses.entry(status).or_default() += n;
        }
    }

    fn p(&mut self, p: f64) -> Duration {
        self.latencies.sort();
        percentile(&self.latencies, p)
    }
}

async fn fetch(client: &reqwest::Client, url: &str, run: &mut Run) {
    let start = Instant::now();
    let response = client.get(url).send().await.expect("the server answers");
    let status = response.status().as_u16();
    let body = response.bytes().await.expect("the body");
    run.latencies.push(start.elapsed());
    run.bytes = run.bytes.max(body.len());
    *run.statuses.entry(status).or_default() += 1;
}

async fn sequential(client: &reqwest::Client, url: &str, n: usize) -> Run {
    let mut run = Run::default();
    for _ in 0..n {
        fetch(client, url, &mut run).await;
    }
    run
}

/// `total` requests shared out between the clients, all asking at once.
async fn concurrent(clients: &[reqwest::Client], url: &str, total: usize) -> Run {
    let per_client = total.div_ceil(clients.len());
    let tasks: Vec<_> = clients
        .iter()
        .map(|client| {
            let (client, url) = (client.clone(), url.to_owned());
            tokio::spawn(async move { sequential(&client, &url, per_client).await })
        })
        .collect();
    let mut all = Run::default();
    for task in tasks {
        all.merge(task.await.expect("client"));
    }
    all
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let args = args();
    let dir = tempfile::tempdir().expect("temporary folder");
    let (database_url, scratch) = match &args.postgres {
        Some(admin_url) => {
            let name = format!("edl_bench_admin_{}", std::process::id());
            let mut admin = diesel::PgConnection::establish(admin_url).expect("PostgreSQL");
            diesel::sql_query(format!("CREATE DATABASE {name}"))
                .execute(&mut admin)
                .expect("create the benchmark database");
            let mut url = url::Url::parse(admin_url).expect("a URL");
            url.set_path(&name);
            (url.to_string(), Some((admin_url.clone(), name)))
        }
        None => (
            format!("sqlite://{}", dir.path().join("bench.sqlite3").display()),
            None,
        ),
    };
    let backend = if scratch.is_some() {
        "PostgreSQL"
    } else {
        "SQLite"
    };
    let data = dir.path().display().to_string();
    let mail = dir.path().join("mail").display().to_string();
    let settings = Settings::from_vars([
        ("EDL_DATABASE_URL", database_url.as_str()),
        ("EDL_DATA_DIR", data.as_str()),
        ("EDL_MAIL_DIR", mail.as_str()),
        ("EDL_BIND", "127.0.0.1:0"),
        // Mail is queued, never sent; the scheduler's periodic jobs are timed on their own
        // below, not left to run in the middle of a measurement.
        ("EDL_OUTBOX_WORKERS", "0"),
        ("EDL_SCHEDULER_INTERVAL", "24h"),
    ])
    .expect("settings");
    let app = Application::build(
        settings,
        Options {
            handle_signals: false,
            ..Options::default()
        },
    )
    .await
    .expect("the service starts");
    let base = format!("http://127.0.0.1:{}", app.port());
    let handle = app.handle();
    let pool = app.state.pool.clone();
    let ctx = app.state.ctx.clone();
    tokio::spawn(app.run_until_stopped());
    // The scheduler's first tick runs at start, on the empty database; let it finish.
    tokio::time::sleep(Duration::from_secs(1)).await;
    println!(
        "{backend}: {} members, {} applications, {} audit entries; {} requests per page in a \
         row, then {} clients at once",
        args.members, args.applications, args.audit, args.requests, args.clients
    );

    // ---- Seeding (not measured) ----
    let started = Instant::now();
    let domains = member_domains(args.members, args.applications);
    let keys = tokio::task::spawn_blocking({
        let domains = domains.clone();
        move || member_keys(&domains)
    })
    .await
    .expect("keys");
    println!(
        "seed: {} member keys made in {:.1?}",
        keys.len(),
        started.elapsed()
    );

    let started = Instant::now();
    add_audit_history(&pool, args.audit, args.applications, args.members).await;
    let (reviewers, planner, approver) = add_accounts(&pool).await;
    let application_ids = Arc::new(add_applications(&pool, args.applications, reviewers).await);
    add_members(
        &pool,
        args.members,
        application_ids.clone(),
        domains,
        keys,
        ctx.policy.version,
    )
    .await;
    println!("seed: rows inserted in {:.1?}", started.elapsed());

    let started = Instant::now();
    let release_id = mail_a_release(&pool, &ctx, planner, approver).await;
    println!(
        "seed: release {release_id} mailed to every member by the distribution tick in {:.1?}",
        started.elapsed()
    );

    // The scheduler's membership jobs on this data: the first run queues the reminders, the
    // second is what every later tick does (every minute by default).
    for which in ["first", "second"] {
        let jobs_ctx = ctx.clone();
        let started = Instant::now();
        let report = on_db(&pool, move |c| {
            edl::membership::run_jobs(c, &jobs_ctx, db::now())
                .map_err(|e| DbError::Task(e.to_string()))
        })
        .await;
        println!(
            "scheduler membership jobs, {which} run: {:.1?} ({} reminders, {} policy requests, \
             {} key reminders queued)",
            started.elapsed(),
            report.reminders,
            report.policy_requests,
            report.key_reminders
        );
    }
    // Reminders the workers would have sent; the newest 40 are still queued.
    on_db(&pool, |c| {
        let keep: Vec<i64> = outbox::table
            .filter(outbox::status.eq("queued"))
            .order(outbox::id.desc())
            .limit(40)
            .select(outbox::id)
            .load(c)?;
        let now = db::now();
        diesel::update(
            outbox::table
                .filter(outbox::status.eq("queued"))
                .filter(outbox::id.ne_all(keep)),
        )
        .set((
            outbox::status.eq("sent"),
            outbox::attempts.eq(1),
            outbox::sent_at.eq(Some(now)),
            outbox::updated_at.eq(now),
        ))
        .execute(c)?;
        Ok(())
    })
    .await;
    if scratch.is_some() {
        // What autovacuum does shortly after a load this size: statistics for the planner, and
        // the visibility map that lets a query answer from an index alone.
        on_db(&pool, |c| {
            diesel::sql_query("VACUUM ANALYZE").execute(c)?;
            Ok(())
        })
        .await;
    }

    let started = Instant::now();
    let chain = on_db(&pool, audit::verify).await;
    println!(
        "seed: audit chain walked as `edl audit verify` walks it in {:.1?}: {chain:?}",
        started.elapsed()
    );
    assert!(
        matches!(chain, audit::Verification::Intact { .. }),
        "the seeded audit chain verifies"
    );
    for (table, n) in counts(&pool).await {
        println!("  {table:<14} {n:>8}");
    }

    // Pages that show one thing: an application in review with votes and comments, a member.
    let detail = application_ids[8];
    let member_id: i64 = on_db(&pool, |c| {
        Ok(members::table
            .filter(members::status.eq("active"))
            .order(members::id)
            .offset(1234)
            .select(members::id)
            .first(c)?)
    })
    .await;

    // ---- Measuring ----
    let admin = signed_in(&base).await;
    let mut cold = Run::default();
    fetch(&admin, &format!("{base}/admin"), &mut cold).await;
    println!(
        "first GET /admin after seeding (audit checkpoint still at 0, the whole chain walked): \
         {} -> {:?}",
        ms(cold.latencies[0]),
        cold.statuses
    );
    let mut clients = Vec::new();
    for _ in 0..args.clients {
        clients.push(signed_in(&base).await);
    }

    let pages: Vec<(String, String)> = vec![
        ("GET /healthz (reference)".into(), "/healthz".into()),
        ("/admin".into(), "/admin".into()),
        ("/admin/members".into(), "/admin/members".into()),
        (
            "/admin/members?page=150".into(),
            "/admin/members?page=150".into(),
        ),
        (
            "/admin/members?q=harbor".into(),
            "/admin/members?q=harbor".into(),
        ),
        (
            "/admin/members/{id}/edit".into(),
            format!("/admin/members/{member_id}/edit"),
        ),
        ("/admin/users".into(), "/admin/users".into()),
        ("/admin/audit".into(), "/admin/audit".into()),
        (
            "/admin/audit?page=100".into(),
            "/admin/audit?page=100".into(),
        ),
        (
            "/admin/audit?subject=application:N".into(),
            format!("/admin/audit?subject=application:{detail}"),
        ),
        (
            "/admin/audit?action=member.edited".into(),
            "/admin/audit?action=member.edited".into(),
        ),
        (
            "/admin/audit?actor=reviewer03@…".into(),
            "/admin/audit?actor=reviewer03%40project.example".into(),
        ),
        ("/admin/outbox".into(), "/admin/outbox".into()),
        (
            "/admin/outbox?status=all".into(),
            "/admin/outbox?status=all".into(),
        ),
        ("/admin/upstreams".into(), "/admin/upstreams".into()),
        ("/review/applications".into(), "/review/applications".into()),
        (
            "/review/applications?page=40".into(),
            "/review/applications?page=40".into(),
        ),
        (
            "/review/applications/{id}".into(),
            format!("/review/applications/{detail}"),
        ),
        ("/manage/releases".into(), "/manage/releases".into()),
        (
            "/manage/releases/{id}".into(),
            format!("/manage/releases/{release_id}"),
        ),
        (
            "/manage/releases/{id}?ledger=50".into(),
            format!("/manage/releases/{release_id}?ledger=50"),
        ),
    ];

    println!();
    println!(
        "{:<38} {:>10} {:>10} | {:>10} {:>10} | {:>9} | statuses",
        "page",
        "p50",
        "p99",
        format!("p50 ×{}", args.clients),
        format!("p99 ×{}", args.clients),
        "bytes"
    );
    let mut over = Vec::new();
    for (label, path) in &pages {
        if args
            .only
            .as_ref()
            .is_some_and(|only| !label.contains(only.as_str()) && !label.contains("healthz"))
        {
            continue;
        }
        let url = format!("{base}{path}");
        // Warm up: templates, statement caches, the first connection of each client.
        sequential(&admin, &url, 5).await;
        let mut alone = sequential(&admin, &url, args.requests).await;
        let mut together = concurrent(&clients, &url, args.requests).await;
        let mut statuses = alone.statuses.clone();
        for (s, n) in &together.statuses {
            *statuses.entry(*s).or_default() += n;
        }
        let (p99_alone, p99_together) = (alone.p(99.0), together.p(99.0));
        println!(
            "{label:<38} {:>10} {:>10} | {:>10} {:>10} | {:>9} | {statuses:?}",
            ms(alone.p(50.0)),
            ms(p99_alone),
            ms(together.p(50.0)),
            ms(p99_together),
            alone.bytes,
        );
        if statuses.keys().any(|s| *s != 200) {
            over.push(format!("{label}: answered {statuses:?}"));
        }
        if p99_alone.max(p99_together) >= TARGET {
            over.push(format!(
                "{label}: p99 {} alone, {} with {} clients",
                ms(p99_alone),
                ms(p99_together),
                args.clients
            ));
        }
    }
    println!();
    if over.is_empty() {
        println!("every page's p99 is under {} (target met)", ms(TARGET));
    } else {
        println!("OVER TARGET (p99 under {}, answers 200):", ms(TARGET));
        for line in over {
            println!("  {line}");
        }
    }

    handle.stop(true).await;
    drop(pool);
    if args.keep {
        match &scratch {
            Some(_) => println!("kept the database: {database_url}"),
            None => println!("kept the database: {}", dir.keep().display()),
        }
        return;
    }
    if let Some((admin_url, name)) = scratch {
        // Give the pool a moment to close before the database goes.
        tokio::time::sleep(Duration::from_millis(500)).await;
        let mut admin = diesel::PgConnection::establish(&admin_url).expect("PostgreSQL");
        let _ = diesel::sql_query(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            .execute(&mut admin);
    }
}
