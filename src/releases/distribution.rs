//! Distribution: the scheduler's tick mails the approved revision of each release to eligible
//! members at the early-disclosure time, announces it and publishes it on time, and alerts
//! release managers about embargoed mail that failed for good. The mail worker asks
//! [`before_send`] about its messages just before they leave.
//!
//! Embargoed mail is encrypted to each member's key ([`member_seal`]), checked when the mail
//! is queued and again when it is sent. Under `EDL_ENCRYPTION=required` (the default) a member
//! without a usable key gets a signed notice instead of the content, the ledger says why, and
//! release managers are told how many.

use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;
use serde::Serialize;
use serde_json::json;

use crate::app::Context;
use crate::audit;
use crate::config::Encryption;
use crate::db::schema::{members, outbox, releases};
use crate::db::{self, DbConnection, DbError};
use crate::domain::{MemberStatus, OutboxStatus};
use crate::mail::outbox::OutboxRow;
use crate::mail::transport::Seal;
use crate::mail::worker::Verdict;
use crate::openpgp::member_key::{Judgements, UsableKey};
use crate::releases::calendar::Moment;
use crate::releases::release::{
    advisories_of, find, patches_of, pending_ids, subject, Release, ReleaseError,
};
use crate::releases::upstream;

/// The template of the embargoed mailing; its rows are what the delivery ledger lists.
pub const EMBARGOED: &str = "embargoed_release";

/// The notice a member without a usable key gets instead of the embargoed content; the ledger
/// lists these rows too.
pub const WITHHELD_FOR_KEY: &str = "embargoed_withheld";

/// The outer subject of every encrypted embargoed mail. It names no release: the real subject
/// travels inside the encrypted part.
pub const ENCRYPTED_SUBJECT: &str = "[EMBARGOED] Security release mail";

/// How embargoed content may reach one member now.
#[derive(Debug, Clone)]
pub enum KeySeal {
    /// Encrypted to this key.
    Encrypt(Box<UsableKey>),
    /// In clear (signed): encryption is off, or `when-key` and the key is not usable.
    Clear,
    /// Not at all: encryption is required and the key is not usable, for this reason.
    Withhold(String),
}

/// Whether embargoed mail to a member with `key` (armored, if any) at `alias` can be sent at
/// `now`, and sealed how. The key is judged now, not when the member applied: a key that has
/// expired or been revoked since is refused. `judgements` spares verifying again a key found
/// usable before and not expired since (see [`Judgements`]).
pub fn member_seal(
    encryption: Encryption,
    key: Option<&str>,
    alias: &str,
    now: DateTime<Utc>,
    judgements: &Judgements,
) -> KeySeal {
    if encryption == Encryption::Off {
        return KeySeal::Clear;
    }
    let usable = match key.map(str::trim).filter(|k| !k.is_empty()) {
        Some(armored) => judgements.usable(armored, alias, now),
        None => Err("No OpenPGP key is on record for this member.".to_owned()),
    };
    match (usable, encryption) {
        (Ok(key), _) => KeySeal::Encrypt(Box::new(key)),
        (Err(why), Encryption::Required) => KeySeal::Withhold(why),
        (Err(_), _) => KeySeal::Clear,
    }
}

/// What one distribution tick did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Tick {
    pub mailed: usize,
    pub announced: usize,
    pub published: usize,
    pub alerts: usize,
}

/// "13 days and 23 hours", "5 hours": how much notice members really have.
pub fn notice_text(span: chrono::Duration) -> String {
    let hours = span.num_hours().max(0);
    let (days, hours) = (hours / 24, hours % 24);
    let unit = |n: i64, one: &str| format!("{n} {one}{}", if n == 1 { "" } else { "s" });
    match (days, hours) {
        (0, 0) => "less than an hour".to_owned(),
        (0, h) => unit(h, "hour"),
        (d, 0) => unit(d, "day"),
        (d, h) => format!("{} and {}", unit(d, "day"), unit(h, "hour")),
    }
}

/// Sends, announces and publishes whatever is due at `now`. Idempotent: dedupe keys and the
/// recorded moments make a second run, or a second process, do nothing more.
pub fn distribute(
    conn: &mut DbConnection,
    ctx: &Context,
    now: DateTime<Utc>,
) -> Result<Tick, ReleaseError> {
    let mut tick = Tick::default();
    let now_naive = now.naive_utc();
    let due = pending_ids(conn)?;
    tick.alerts = db::write_transaction(conn, |conn| alert_failures(conn, ctx))?;
    for id in due {
        // The mailing goes first, in chunks of its own (see `mail_members`); then announcing
        // and publishing, in one transaction with the release's state read again under a
        // lock: a cancel or a change committed since the list was read is seen, and two
        // processes ticking at once do not both act. One release's failure does not stop the
        // others.
        let result = mail_members(conn, ctx, id, now).and_then(|mailed| {
            tick.mailed += mailed;
            db::write_transaction(conn, |conn| {
                db::lock_for_transaction(conn, &subject(id))?;
                let Some(release) = find(conn, id)? else {
                    return Ok(());
                };
                if !release.approved_current() || release.published_at.is_some() {
                    return Ok(());
                }
                let announce_due = release.announce_at.is_some_and(|a| a <= now_naive)
                    || release.release_at <= now_naive;
                if announce_due && release.announced_at.is_none() {
                    diesel::update(releases::table.filter(releases::id.eq(release.id)))
                        .set(releases::announced_at.eq(Some(now_naive)))
                        .execute(conn)?;
                    audit::record(
                        conn,
                        "edl",
                        "release.announced",
                        &subject(release.id),
                        json!({}),
                    )?;
                    tick.announced += 1;
                }
                if release.release_at <= now_naive {
                    diesel::update(releases::table.filter(releases::id.eq(release.id)))
                        .set(releases::published_at.eq(Some(now_naive)))
                        .execute(conn)?;
                    audit::record(
                        conn,
                        "edl",
                        "release.published",
                        &subject(release.id),
                        json!({ "revision": release.revision }),
                    )?;
                    tick.published += 1;
                }
                Ok::<_, ReleaseError>(())
            })
        });
        if let Err(error) = result {
            tracing::error!(release = id, %error, "Distributing a release failed; the others go on.");
        }
    }
    Ok(tick)
}

/// How many members' mail is rendered, then queued in one transaction.
const MAILING_CHUNK: i64 = 500;

/// Whether the release is still in the state its mailing was prepared for: approved at this
/// revision, not cancelled, not yet public, and inside its early-disclosure window at `now`.
fn mailing_due(release: &Release, revision: i32, now: NaiveDateTime) -> bool {
    release.approved_current()
        && release.revision == revision
        && release.published_at.is_none()
        && now < release.release_at
        && release.disclosure_at.is_some_and(|d| d <= now)
}

/// One embargoed mail per eligible member (active, on the current policy version) for the
/// release's current revision, if its early-disclosure window is open at `now`. Members are
/// read, checked and rendered in chunks outside any transaction, and each chunk is queued in a
/// short transaction of its own that first reads the release again under its lock, so a
/// cancel or a new revision stops the rest at once, the workers start on the first chunk while
/// the next is rendered, and memory does not grow with the list. Dedupe keys make a second run
/// (or process) queue only what is missing.
fn mail_members(
    conn: &mut DbConnection,
    ctx: &Context,
    id: i64,
    now: DateTime<Utc>,
) -> Result<usize, ReleaseError> {
    let now_naive = now.naive_utc();
    let Some(release) = find(conn, id)? else {
        return Ok(0);
    };
    if !mailing_due(&release, release.revision, now_naive) {
        return Ok(0);
    }
    // Members that have this revision's mail need nothing more from this tick. (One held
    // because the member's key stopped working is queued again when a key is stored.)
    let has_revision: std::collections::HashSet<i64> = outbox::table
        .filter(outbox::release_id.eq(release.id))
        .filter(outbox::template.eq(EMBARGOED))
        .filter(outbox::revision.eq(release.revision))
        .select(outbox::member_id.assume_not_null())
        .load::<i64>(conn)?
        .into_iter()
        .collect();
    let eligible = members::table
        .filter(members::status.eq(MemberStatus::Active))
        .filter(members::policy_version.ge(ctx.policy.version));
    let total: i64 = eligible.count().get_result(conn)?;
    if total <= i64::try_from(has_revision.len()).unwrap_or(i64::MAX) {
        let missing: i64 = eligible
            .filter(diesel::dsl::not(diesel::dsl::exists(
                outbox::table
                    .filter(outbox::release_id.eq(release.id))
                    .filter(outbox::template.eq(EMBARGOED))
                    .filter(outbox::revision.eq(release.revision))
                    .filter(outbox::member_id.eq(members::id.nullable())),
            )))
            .count()
            .get_result(conn)?;
        if missing == 0 {
            return Ok(0);
        }
    }
    let advisories = advisories_of(conn, release.id)?;
    let all_upstreams = upstream::list(conn)?;
    let patches = patches_of(conn, release.id)?;
    // A patch flagged after the approval (the same change was since filed as a withheld
    // upstream's) stops the mailing until a person sets its origin.
    if !upstream::blockers(&patches).is_empty() {
        tracing::error!(
            release = release.id,
            "A patch of an approved release now looks like a withheld upstream's; nothing is mailed until its origin is set."
        );
        return Ok(0);
    }
    let (attach, withheld) = upstream::split_for_mail(&patches, &all_upstreams);
    let attach_ids: Vec<i64> = attach.iter().map(|p| p.id).collect();
    let attached: Vec<serde_json::Value> = attach
        .iter()
        .map(|p| json!({ "filename": p.filename, "sha256": p.sha256, "release_line": p.release_line }))
        .collect();
    let release_at = release.release_at.and_utc();
    let when = Moment::new(release_at, ctx.timezone());
    let notice = release_at - now;
    let short_notice = ctx.settings.calendar().is_short_notice(
        release_at,
        release.disclosure_at.map(|t| t.and_utc()),
        now,
    );
    // Members mailed about an earlier revision get this one marked as revised.
    let mailed_before: std::collections::HashSet<i64> = outbox::table
        .filter(outbox::release_id.eq(release.id))
        .filter(outbox::template.eq(EMBARGOED))
        .filter(outbox::revision.ne(release.revision))
        .select(outbox::member_id.assume_not_null())
        .load::<i64>(conn)?
        .into_iter()
        .collect();
    // What every member's copy shares, rendered into each.
    let shared = json!({
        "title": release.title,
        "kind": release.kind,
        "revision": release.revision,
        "release_at": when.machine(),
        // For operators' templates written before `release_at|when`.
        "release_at_utc": when.utc_text(),
        "release_at_local": when.local_text(),
        "timezone": ctx.timezone().name(),
        "notice": notice_text(notice),
        "short_notice": short_notice,
        "release_lines": release.lines(),
        "advisories": advisories,
        "members_may_deploy": release.members_may_deploy,
        "patches": attached,
        "withheld": withheld,
        "policy_url": ctx.url("/embargo-policy"),
        "report_to": ctx.report_to(),
        "notes": release.notes,
    });
    let mut queued = 0;
    let mut withheld_now = 0;
    let mut after = 0i64;
    loop {
        let chunk: Vec<(i64, String, String, Option<String>)> = members::table
            .filter(members::status.eq(MemberStatus::Active))
            .filter(members::policy_version.ge(ctx.policy.version))
            .filter(members::id.gt(after))
            .order(members::id)
            .limit(MAILING_CHUNK)
            .select((
                members::id,
                members::security_alias,
                members::org_name,
                members::pgp_key,
            ))
            .load(conn)?;
        let Some(last) = chunk.last() else { break };
        after = last.0;
        // Checked and rendered outside the transaction: keys are read and judged, and the
        // templates rendered, while other writers go on.
        let mut mails = Vec::new();
        let mut no_key = Vec::new();
        for (member_id, alias, org_name, key) in chunk {
            if has_revision.contains(&member_id) {
                continue;
            }
            if let KeySeal::Withhold(why) = member_seal(
                ctx.settings.encryption,
                key.as_deref(),
                &alias,
                now,
                &ctx.keys,
            ) {
                no_key.push((member_id, alias, org_name, why));
                continue;
            }
            let mut context = shared.clone();
            if let Some(fields) = context.as_object_mut() {
                fields.insert("org_name".into(), json!(org_name));
                fields.insert("revised".into(), json!(mailed_before.contains(&member_id)));
                fields.insert(
                    "ack_url".into(),
                    json!(ctx.url(&format!(
                        "/releases/ack/{}",
                        ctx.links
                            .receipt_link(release.id, member_id, release.revision)
                    ))),
                );
            }
            mails.push(
                ctx.mailer
                    .render_for_member(
                        EMBARGOED,
                        &alias,
                        context,
                        crate::mail::ReleaseMail {
                            dedupe_key: format!(
                                "release:{}:rev:{}:member:{member_id}",
                                release.id, release.revision
                            ),
                            release_id: release.id,
                            member_id,
                            revision: release.revision,
                            attachments: attach_ids.clone(),
                        },
                    )
                    .map_err(crate::mail::MailError::from)?,
            );
        }
        if mails.is_empty() && no_key.is_empty() {
            continue;
        }
        let done = db::write_transaction(conn, |conn| {
            db::lock_for_transaction(conn, &subject(release.id))?;
            let current = find(conn, release.id)?;
            if !current.is_some_and(|c| mailing_due(&c, release.revision, now_naive)) {
                return Ok::<_, ReleaseError>(None);
            }
            let mut withheld_here = 0;
            for (member_id, alias, org_name, why) in &no_key {
                withheld_here += usize::from(withhold_for_key(
                    conn, ctx, &release, *member_id, alias, org_name, why, now,
                )?);
            }
            let queued_here = ctx.mailer.enqueue_many(conn, &mails)?;
            if queued_here > 0 && release.disclosed_at.is_none() {
                diesel::update(
                    releases::table
                        .filter(releases::id.eq(release.id))
                        .filter(releases::disclosed_at.is_null()),
                )
                .set(releases::disclosed_at.eq(Some(now_naive)))
                .execute(conn)?;
            }
            Ok(Some((queued_here, withheld_here)))
        })?;
        let Some((queued_here, withheld_here)) = done else {
            // Cancelled, revised or published since the mailing began: the rest waits for
            // the state it belongs to.
            break;
        };
        queued += queued_here;
        withheld_now += withheld_here;
        // The workers start on this chunk while the next one is rendered.
        ctx.mailer.wake_workers();
    }
    if queued > 0 || withheld_now > 0 {
        db::write_transaction(conn, |conn| {
            if withheld_now > 0 {
                alert_withheld(conn, ctx, &release)?;
            }
            if queued > 0 {
                audit::record(
                    conn,
                    "edl",
                    "release.disclosed",
                    &subject(release.id),
                    json!({ "revision": release.revision, "members": queued, "attached": attach_ids.len(), "withheld": withheld.len() }),
                )?;
            }
            Ok::<_, ReleaseError>(())
        })?;
    }
    Ok(queued)
}

/// Tells every release manager about each embargoed message that failed for good, once per
/// message, so someone reaches that member another way before the release. Mail held back on
/// purpose has its own status and is not a failure.
fn alert_failures(conn: &mut DbConnection, ctx: &Context) -> Result<usize, ReleaseError> {
    use crate::accounts::{self, Role};
    let failed: Vec<(i64, i64, Option<String>, String, String)> = outbox::table
        .inner_join(releases::table)
        .inner_join(members::table)
        .filter(outbox::status.eq(OutboxStatus::Failed))
        .filter(outbox::template.eq(EMBARGOED))
        .select((
            outbox::id,
            releases::id,
            outbox::last_error,
            releases::title,
            members::org_name,
        ))
        .load(conn)?;
    if failed.is_empty() {
        return Ok(0);
    }
    let managers = accounts::with_role(conn, Role::ReleaseManager)?;
    let mut queued = 0;
    for (row, release_id, reason, title, org_name) in failed {
        for manager in &managers {
            let done = ctx.mailer.enqueue(
                conn,
                "delivery_failed",
                &manager.email,
                json!({
                    "manager_name": manager.name,
                    "title": title,
                    "org_name": org_name,
                    "reason": reason.clone().unwrap_or_default(),
                    "release_url": ctx.url(&format!("/manage/releases/{release_id}")),
                }),
                Some(format!("alert:{row}:{}", manager.id)),
            )?;
            queued += usize::from(done.is_some());
        }
    }
    Ok(queued)
}

/// Why an embargoed message must not leave any more, however long it waited in the queue: its
/// release (whose cancellation and publication times are given, `None` if it is gone) was
/// cancelled or is already public, or its member (whose status is given) is no longer active.
fn stale_reason(
    release: Option<(Option<NaiveDateTime>, NaiveDateTime)>,
    member: MemberStatus,
    now: NaiveDateTime,
) -> Option<&'static str> {
    let Some((cancelled_at, release_at)) = release else {
        return Some("the release no longer exists");
    };
    if cancelled_at.is_some() {
        return Some("the release was cancelled");
    }
    if now >= release_at {
        return Some("the release is already public, so embargoed mail is no longer sent");
    }
    if member != MemberStatus::Active {
        return Some("the member is no longer active");
    }
    None
}

/// One message of a release's delivery ledger: what each member was sent, whether it left
/// encrypted, and, for a member without a usable key, why it got the notice instead.
#[derive(Debug, Clone, Serialize)]
pub struct LedgerLine {
    pub org_name: String,
    pub revision: Option<i32>,
    pub status: OutboxStatus,
    pub message_id: String,
    pub sent_at: Option<NaiveDateTime>,
    pub last_error: Option<String>,
    pub held_reason: Option<String>,
    /// Once sent, whether it left encrypted.
    pub encrypted: Option<bool>,
    /// For the notice sent instead of the content: why the member's key is not usable now,
    /// or that it works now and the mailing follows at the next run.
    pub no_key: Option<String>,
    pub acknowledged_at: Option<NaiveDateTime>,
}

/// Lines of the delivery ledger on one page of the release page.
pub const LEDGER_PAGE_SIZE: i64 = 100;

/// One page of a release's delivery ledger.
#[derive(Debug, Clone, Serialize)]
pub struct Ledger {
    pub lines: Vec<LedgerLine>,
    /// From 1; a page past the end shows the last one.
    pub page: i64,
    /// At least 1, even when nothing was sent.
    pub pages: i64,
    /// Lines on every page.
    pub total: i64,
}

/// Page `page` (from 1) of the delivery ledger of a release at `now`, `per_page` lines to a
/// page: every embargoed message and every notice sent instead, by member. A release to ten
/// thousand members has a line for each; the page reads, judges and shows only its own.
pub fn ledger(
    conn: &mut DbConnection,
    release_id: i64,
    now: DateTime<Utc>,
    page: i64,
    per_page: i64,
) -> Result<Ledger, DbError> {
    use crate::db::schema::release_receipts;
    type Row = (
        (i64, String),
        (
            String,
            Option<i32>,
            OutboxStatus,
            String,
            Option<NaiveDateTime>,
        ),
        (Option<String>, Option<String>, Option<bool>),
        Option<NaiveDateTime>,
    );
    let per_page = per_page.max(1);
    let total: i64 = outbox::table
        .inner_join(members::table)
        .filter(outbox::release_id.eq(release_id))
        .filter(outbox::template.eq_any([EMBARGOED, WITHHELD_FOR_KEY]))
        .count()
        .get_result(conn)?;
    let pages = ((total + per_page - 1) / per_page).max(1);
    let page = page.clamp(1, pages);
    // The page's messages first, ordered from the index and the members' names alone; then
    // those lines whole. On SQLite a message's later columns sit after its bodies, and sorting
    // whole lines would read every body the release sent.
    let ids: Vec<i64> = outbox::table
        .inner_join(members::table)
        .filter(outbox::release_id.eq(release_id))
        .filter(outbox::template.eq_any([EMBARGOED, WITHHELD_FOR_KEY]))
        .order((members::org_name, outbox::id))
        .offset((page - 1) * per_page)
        .limit(per_page)
        .select(outbox::id)
        .load(conn)?;
    let rows: Vec<Row> = outbox::table
        .inner_join(members::table)
        .left_join(
            release_receipts::table.on(release_receipts::release_id
                .nullable()
                .eq(outbox::release_id)
                .and(release_receipts::member_id.nullable().eq(outbox::member_id))
                .and(release_receipts::revision.nullable().eq(outbox::revision))),
        )
        .filter(outbox::id.eq_any(&ids))
        .order((members::org_name, outbox::id))
        .select((
            (members::id, members::org_name),
            (
                outbox::template,
                outbox::revision,
                outbox::status,
                outbox::message_id,
                outbox::sent_at,
            ),
            (outbox::last_error, outbox::held_reason, outbox::encrypted),
            release_receipts::acknowledged_at.nullable(),
        ))
        .load(conn)?;
    // Members of this page whose notice was followed by the mailing itself, once their key
    // worked (the mailing may be on another page).
    let noticed: Vec<i64> = rows
        .iter()
        .filter(|(_, (template, ..), ..)| template == WITHHELD_FOR_KEY)
        .map(|((member, _), ..)| *member)
        .collect();
    let mailed: std::collections::HashSet<(i64, Option<i32>)> = outbox::table
        .filter(outbox::release_id.eq(release_id))
        .filter(outbox::template.eq(EMBARGOED))
        .filter(outbox::status.eq(OutboxStatus::Sent))
        .filter(outbox::member_id.eq_any(&noticed))
        .select((outbox::member_id, outbox::revision))
        .load::<(Option<i64>, Option<i32>)>(conn)?
        .into_iter()
        .filter_map(|(member, revision)| Some((member?, revision)))
        .collect();
    // Why the others' keys do not work now: their keys are read, and only theirs.
    let waiting: Vec<i64> = rows
        .iter()
        .filter(|((member, _), (template, revision, ..), ..)| {
            template == WITHHELD_FOR_KEY && !mailed.contains(&(*member, *revision))
        })
        .map(|((member, _), ..)| *member)
        .collect();
    let keys: std::collections::HashMap<i64, (String, Option<String>)> = members::table
        .filter(members::id.eq_any(&waiting))
        .select((members::id, members::security_alias, members::pgp_key))
        .load::<(i64, String, Option<String>)>(conn)?
        .into_iter()
        .map(|(id, alias, key)| (id, (alias, key)))
        .collect();
    // A page judges each of its members' keys once; nothing is kept beyond the page.
    let judgements = Judgements::default();
    let lines = rows
        .into_iter()
        .map(
            |(
                (member, org_name),
                (template, revision, status, message_id, sent_at),
                (last_error, held_reason, encrypted),
                acknowledged_at,
            )| {
                let no_key = (template == WITHHELD_FOR_KEY).then(|| {
                    if mailed.contains(&(member, revision)) {
                        return "The mailing followed once the key worked.".to_owned();
                    }
                    let (alias, key) = keys.get(&member).cloned().unwrap_or_default();
                    match member_seal(
                        Encryption::Required,
                        key.as_deref(),
                        &alias,
                        now,
                        &judgements,
                    ) {
                        KeySeal::Withhold(why) => why,
                        _ => "The key works now; the mailing goes out at the next run.".to_owned(),
                    }
                });
                LedgerLine {
                    org_name,
                    revision,
                    status,
                    message_id,
                    sent_at,
                    last_error,
                    held_reason,
                    encrypted,
                    no_key,
                    acknowledged_at,
                }
            },
        )
        .collect();
    Ok(Ledger {
        lines,
        page,
        pages,
        total,
    })
}

/// Queues, once per revision, the signed notice that tells a member without a usable key that
/// an embargoed mailing was withheld, with a link to add a key. Returns whether it was queued
/// now.
#[allow(
    clippy::too_many_arguments,
    reason = "one member's facts, read by the caller"
)]
fn withhold_for_key(
    conn: &mut DbConnection,
    ctx: &Context,
    release: &Release,
    member_id: i64,
    alias: &str,
    org_name: &str,
    why: &str,
    now: DateTime<Utc>,
) -> Result<bool, crate::mail::MailError> {
    let (key_url, expires) = crate::membership::keys::key_link(ctx, member_id, now);
    let queued = ctx.mailer.enqueue_for_member(
        conn,
        WITHHELD_FOR_KEY,
        alias,
        json!({
            "org_name": org_name,
            "why": why,
            "key_url": key_url,
            "key_url_expires": ctx.moment(expires).local_date(),
            "policy_url": ctx.url("/embargo-policy"),
        }),
        crate::mail::ReleaseMail {
            dedupe_key: format!(
                "release:{}:rev:{}:member:{member_id}:no-key",
                release.id, release.revision
            ),
            release_id: release.id,
            member_id,
            revision: release.revision,
            attachments: Vec::new(),
        },
    )?;
    Ok(queued.is_some())
}

/// Tells every release manager how many members of the release's current revision got the
/// notice instead of the content, once for each new total.
fn alert_withheld(
    conn: &mut DbConnection,
    ctx: &Context,
    release: &Release,
) -> Result<(), ReleaseError> {
    use crate::accounts::{self, Role};
    let count: i64 = outbox::table
        .filter(outbox::release_id.eq(release.id))
        .filter(outbox::revision.eq(release.revision))
        .filter(outbox::template.eq(WITHHELD_FOR_KEY))
        .count()
        .get_result(conn)?;
    for manager in accounts::with_role(conn, Role::ReleaseManager)? {
        ctx.mailer.enqueue(
            conn,
            "members_without_key",
            &manager.email,
            json!({
                "manager_name": manager.name,
                "title": release.title,
                "revision": release.revision,
                "count": count,
                "release_url": ctx.url(&format!("/manage/releases/{}", release.id)),
            }),
            Some(format!(
                "no-key:{}:{}:{}:{count}",
                release.id, release.revision, manager.id
            )),
        )?;
    }
    Ok(())
}

/// Everything checked just before messages leave, for a worker's batch at once (one read of
/// its members, releases and patches): stale embargoed mail is held back; the upstream rule
/// reads the attachments, refusing any that may not be redistributed; and every mail to a
/// member about a release (the mailing, a postponement, a cancellation: each names the
/// release) is encrypted to the member's key as it is now. When encryption is required and the
/// key no longer works, it is held, the notice is queued and release managers are told; the
/// next run sends it once the key works. Every mail is signed. One verdict per row, in order.
pub fn before_send(
    conn: &mut DbConnection,
    ctx: &Context,
    rows: &[OutboxRow],
    now: NaiveDateTime,
) -> Result<Vec<Verdict>, DbError> {
    use std::collections::HashMap;
    let about_member = |row: &OutboxRow| {
        (row.release_id.is_some() && row.template != WITHHELD_FOR_KEY) || row.template == EMBARGOED
    };
    let member_ids: Vec<i64> = rows
        .iter()
        .filter(|r| about_member(r))
        .filter_map(|r| r.member_id)
        .collect();
    let members: HashMap<i64, (MemberStatus, String, String, Option<String>)> = members::table
        .filter(members::id.eq_any(&member_ids))
        .select((
            members::id,
            (
                members::status,
                members::security_alias,
                members::org_name,
                members::pgp_key,
            ),
        ))
        .load::<(i64, (MemberStatus, String, String, Option<String>))>(conn)?
        .into_iter()
        .collect();
    let release_ids: Vec<i64> = rows
        .iter()
        .filter(|r| r.template == EMBARGOED)
        .filter_map(|r| r.release_id)
        .collect();
    type ReleaseTimes = (Option<NaiveDateTime>, NaiveDateTime);
    let releases: HashMap<i64, ReleaseTimes> = releases::table
        .filter(releases::id.eq_any(&release_ids))
        .select((releases::id, (releases::cancelled_at, releases::release_at)))
        .load::<(i64, ReleaseTimes)>(conn)?
        .into_iter()
        .collect();
    let mut verdicts: Vec<Option<Verdict>> = vec![None; rows.len()];
    let mut seals: Vec<Seal> = vec![Seal::Signed; rows.len()];
    for (i, row) in rows.iter().enumerate() {
        if !about_member(row) {
            continue;
        }
        // A release's mail always names its member; one that does not is never sent as is.
        let Some((status, alias, org_name, key)) =
            row.member_id.and_then(|id| members.get(&id)).cloned()
        else {
            verdicts[i] = Some(Verdict::Hold("the member no longer exists".to_owned()));
            continue;
        };
        if row.template == EMBARGOED {
            let release = row.release_id.and_then(|id| releases.get(&id)).copied();
            if let Some(reason) = stale_reason(release, status, now) {
                verdicts[i] = Some(Verdict::Hold(reason.to_owned()));
                continue;
            }
        }
        match member_seal(
            ctx.settings.encryption,
            key.as_deref(),
            &alias,
            now.and_utc(),
            &ctx.keys,
        ) {
            KeySeal::Encrypt(key) => {
                seals[i] = Seal::Encrypted {
                    to: key,
                    outer_subject: ENCRYPTED_SUBJECT.to_owned(),
                }
            }
            KeySeal::Clear => {}
            KeySeal::Withhold(why) => {
                // The key was usable when the mail was queued and is not now.
                if let Some(release) = find(conn, row.release_id.unwrap_or_default())? {
                    let member_id = row.member_id.unwrap_or_default();
                    let noticed = withhold_for_key(
                        conn,
                        ctx,
                        &release,
                        member_id,
                        &alias,
                        &org_name,
                        &why,
                        now.and_utc(),
                    )
                    .map_err(|e| DbError::Task(e.to_string()))?;
                    if noticed {
                        alert_withheld(conn, ctx, &release)
                            .map_err(|e| DbError::Task(e.to_string()))?;
                    }
                }
                verdicts[i] = Some(Verdict::Hold(format!("no usable key: {why}")));
            }
        }
    }
    let leaving: Vec<i64> = rows
        .iter()
        .zip(&verdicts)
        .filter(|(_, v)| v.is_none())
        .map(|(r, _)| r.id)
        .collect();
    let mut attachments = upstream::attachments_for_send(conn, &leaving)?;
    Ok(rows
        .iter()
        .zip(verdicts)
        .zip(seals)
        .map(|((row, verdict), seal)| {
            verdict.unwrap_or_else(|| match attachments.remove(&row.id) {
                Some(Ok(attachments)) => Verdict::Send { attachments, seal },
                Some(Err(reason)) => Verdict::Refuse(reason),
                // Every row leaving was read above; one that was not does not leave unchecked.
                None => Verdict::Refuse("its attachments could not be checked".to_owned()),
            })
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notice_reads_as_time() {
        assert_eq!(notice_text(chrono::Duration::hours(14 * 24)), "14 days");
        assert_eq!(
            notice_text(chrono::Duration::hours(14 * 24 - 1)),
            "13 days and 23 hours"
        );
        assert_eq!(notice_text(chrono::Duration::hours(5)), "5 hours");
        assert_eq!(notice_text(chrono::Duration::hours(25)), "1 day and 1 hour");
        assert_eq!(
            notice_text(chrono::Duration::minutes(20)),
            "less than an hour"
        );
    }
}
