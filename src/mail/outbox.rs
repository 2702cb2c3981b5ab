//! The outbox: every mail is a row, written in the same transaction as the change that causes
//! it. Workers claim due rows with a lease in one short transaction, commit, send, and record
//! the outcome in another; no transaction is ever open while SMTP is spoken. A row whose worker
//! died stays `sending` until its lease expires and is then claimed again.

use std::time::Duration;

use chrono::NaiveDateTime;
use diesel::prelude::*;
use rand::Rng;
use serde::Serialize;

use crate::db::schema::{outbox, outbox_attachments, outbox_bodies};
use crate::db::search::{self, lower};
use crate::db::{DbConnection, DbError};
use crate::domain::OutboxStatus;
use crate::mail::templates::RenderedMail;
use OutboxStatus::{Failed, Held, Queued, Sending, Sent};

#[derive(Debug, Clone, Queryable, Selectable, Serialize)]
#[diesel(table_name = outbox)]
pub struct OutboxRow {
    pub id: i64,
    pub template: String,
    pub recipient: String,
    pub subject: String,
    /// The bodies are rows of their own (`outbox_bodies`), read with the row.
    #[diesel(select_expression = outbox_bodies::body_text)]
    pub body_text: String,
    #[diesel(select_expression = outbox_bodies::body_html)]
    pub body_html: String,
    pub dedupe_key: Option<String>,
    pub status: OutboxStatus,
    pub attempts: i32,
    pub next_attempt_at: NaiveDateTime,
    pub lease_until: Option<NaiveDateTime>,
    pub leased_by: Option<String>,
    pub last_error: Option<String>,
    /// Why a held message was kept back on purpose.
    pub held_reason: Option<String>,
    pub message_id: String,
    pub sent_at: Option<NaiveDateTime>,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
    pub release_id: Option<i64>,
    pub member_id: Option<i64>,
    /// The revision of the release a release mail is about.
    pub revision: Option<i32>,
    /// Once sent, whether it left encrypted to its recipient.
    pub encrypted: Option<bool>,
}

/// A mail to put in the outbox.
#[derive(Debug, Clone)]
pub struct NewMail {
    pub template: String,
    pub recipient: String,
    pub rendered: RenderedMail,
    /// A key that makes a second enqueue of the same logical message a no-op, e.g.
    /// `release:12:rev:2:member:7`.
    pub dedupe_key: Option<String>,
    /// The release, member and revision a release mail belongs to, for the delivery ledger.
    pub release_id: Option<i64>,
    pub member_id: Option<i64>,
    pub revision: Option<i32>,
    /// Patches attached when the message is sent (read then, so they are stored once).
    pub attachments: Vec<i64>,
}

#[derive(Insertable)]
#[diesel(table_name = outbox)]
struct InsertRow<'a> {
    template: &'a str,
    recipient: &'a str,
    subject: &'a str,
    dedupe_key: Option<&'a str>,
    status: OutboxStatus,
    attempts: i32,
    next_attempt_at: NaiveDateTime,
    message_id: &'a str,
    created_at: NaiveDateTime,
    updated_at: NaiveDateTime,
    release_id: Option<i64>,
    member_id: Option<i64>,
    revision: Option<i32>,
}

/// A Message-ID of our own, fixed at enqueue time: every retry of a row carries the same one.
pub fn new_message_id(domain: &str) -> String {
    let bytes: [u8; 16] = rand::rng().random();
    format!("<{}@{}>", hex::encode(bytes), domain)
}

/// Adds one mail to the outbox inside the caller's transaction. Returns the new row's id, or
/// `None` when a row with the same dedupe key already exists.
pub fn enqueue(
    conn: &mut DbConnection,
    mail: &NewMail,
    id_domain: &str,
) -> Result<Option<i64>, DbError> {
    if let Some(key) = &mail.dedupe_key {
        let existing = outbox::table
            .filter(outbox::dedupe_key.eq(key))
            .select(outbox::id)
            .first::<i64>(conn)
            .optional()?;
        if existing.is_some() {
            return Ok(None);
        }
    }
    // A savepoint, so that losing a race on the dedupe key leaves the caller's transaction usable.
    let inserted = conn.transaction(|conn| {
        let id = insert_row(conn, mail, id_domain, crate::db::now())?;
        for patch in &mail.attachments {
            diesel::insert_into(outbox_attachments::table)
                .values((
                    outbox_attachments::outbox_id.eq(id),
                    outbox_attachments::patch_id.eq(*patch),
                ))
                .execute(conn)?;
        }
        Ok::<_, diesel::result::Error>(id)
    });
    match inserted {
        Ok(id) => Ok(Some(id)),
        Err(diesel::result::Error::DatabaseError(
            diesel::result::DatabaseErrorKind::UniqueViolation,
            _,
        )) if mail.dedupe_key.is_some() => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// One queued row and its bodies, under a Message-ID of its own; returns the row's id.
fn insert_row(
    conn: &mut DbConnection,
    mail: &NewMail,
    id_domain: &str,
    now: NaiveDateTime,
) -> Result<i64, diesel::result::Error> {
    let message_id = new_message_id(id_domain);
    let id: i64 = diesel::insert_into(outbox::table)
        .values(&InsertRow {
            template: &mail.template,
            recipient: &mail.recipient,
            subject: &mail.rendered.subject,
            dedupe_key: mail.dedupe_key.as_deref(),
            status: Queued,
            attempts: 0,
            next_attempt_at: now,
            message_id: &message_id,
            created_at: now,
            updated_at: now,
            release_id: mail.release_id,
            member_id: mail.member_id,
            revision: mail.revision,
        })
        .returning(outbox::id)
        .get_result(conn)?;
    diesel::insert_into(outbox_bodies::table)
        .values((
            outbox_bodies::outbox_id.eq(id),
            outbox_bodies::body_text.eq(&mail.rendered.text),
            outbox_bodies::body_html.eq(&mail.rendered.html),
        ))
        .execute(conn)?;
    Ok(id)
}

/// Up to this many rows, an insert into the outbox is kept prepared on PostgreSQL
/// ([`crate::db::KeptPrepared`]): one request's mail recurs at these counts, a mailing's chunks
/// do not.
const KEPT_PREPARED_ROWS: usize = 8;

/// Adds mails to the outbox inside the caller's transaction, which must keep another writer
/// from adding the same dedupe keys meanwhile (a lock on what the mails are about): one read of
/// the keys already present, then the new rows, their bodies and their attachment rows, in a
/// statement each per 500 on PostgreSQL. Returns how many rows were added.
pub fn enqueue_many(
    conn: &mut DbConnection,
    mails: &[NewMail],
    id_domain: &str,
) -> Result<usize, DbError> {
    let keys: Vec<&str> = mails
        .iter()
        .filter_map(|m| m.dedupe_key.as_deref())
        .collect();
    let present: std::collections::HashSet<String> = if keys.is_empty() {
        Default::default()
    } else {
        outbox::table
            .filter(outbox::dedupe_key.eq_any(&keys))
            .select(outbox::dedupe_key.assume_not_null())
            .load::<String>(conn)?
            .into_iter()
            .collect()
    };
    let now = crate::db::now();
    let new: Vec<&NewMail> = mails
        .iter()
        .filter(|m| {
            !m.dedupe_key
                .as_ref()
                .is_some_and(|key| present.contains(key))
        })
        .collect();
    let ids: Vec<i64> = match conn {
        // PostgreSQL: one statement for the rows and one for their bodies, not a round trip
        // per row to a server that may be across a network.
        DbConnection::Postgresql(pg) => {
            let message_ids: Vec<String> = new.iter().map(|_| new_message_id(id_domain)).collect();
            let rows: Vec<InsertRow<'_>> = new
                .iter()
                .zip(&message_ids)
                .map(|(mail, message_id)| InsertRow {
                    template: &mail.template,
                    recipient: &mail.recipient,
                    subject: &mail.rendered.subject,
                    dedupe_key: mail.dedupe_key.as_deref(),
                    status: Queued,
                    attempts: 0,
                    next_attempt_at: now,
                    message_id,
                    created_at: now,
                    updated_at: now,
                    release_id: mail.release_id,
                    member_id: mail.member_id,
                    revision: mail.revision,
                })
                .collect();
            let mut ids = Vec::with_capacity(rows.len());
            for (rows, mails) in rows.chunks(500).zip(new.chunks(500)) {
                // Matched by Message-ID, which is unique, not by the order rows come back in.
                // A few rows (one request's mail) make a statement that recurs: kept prepared.
                let few = rows.len() <= KEPT_PREPARED_ROWS;
                let returned: std::collections::HashMap<String, i64> = crate::db::kept_prepared_if(
                    few,
                    diesel::insert_into(outbox::table)
                        .values(rows)
                        .returning((outbox::message_id, outbox::id)),
                )
                .get_results::<(String, i64)>(pg)?
                .into_iter()
                .collect();
                let chunk_ids: Vec<i64> = rows
                    .iter()
                    .map(|r| returned.get(r.message_id).copied())
                    .collect::<Option<_>>()
                    .ok_or(diesel::result::Error::NotFound)?;
                let bodies: Vec<_> = chunk_ids
                    .iter()
                    .zip(mails)
                    .map(|(id, mail)| {
                        (
                            outbox_bodies::outbox_id.eq(*id),
                            outbox_bodies::body_text.eq(&mail.rendered.text),
                            outbox_bodies::body_html.eq(&mail.rendered.html),
                        )
                    })
                    .collect();
                crate::db::kept_prepared_if(
                    few,
                    diesel::insert_into(outbox_bodies::table)
                        .values(&bodies)
                        .returning(outbox_bodies::outbox_id),
                )
                .load::<i64>(pg)?;
                ids.extend(chunk_ids);
            }
            ids
        }
        DbConnection::Sqlite(_) => new
            .iter()
            .map(|mail| insert_row(conn, mail, id_domain, now))
            .collect::<Result<_, _>>()?,
    };
    let added = ids.len();
    let attachments: Vec<(i64, i64)> = ids
        .iter()
        .zip(&new)
        .flat_map(|(id, mail)| mail.attachments.iter().map(move |patch| (*id, *patch)))
        .collect();
    for rows in attachments.chunks(500) {
        let values: Vec<_> = rows
            .iter()
            .map(|(outbox_id, patch_id)| {
                (
                    outbox_attachments::outbox_id.eq(*outbox_id),
                    outbox_attachments::patch_id.eq(*patch_id),
                )
            })
            .collect();
        // One statement for the chunk; the enum connection cannot say that to both backends.
        let insert = diesel::insert_into(outbox_attachments::table).values(&values);
        match conn {
            DbConnection::Postgresql(pg) => insert.execute(pg)?,
            DbConnection::Sqlite(sq) => insert.execute(sq)?,
        };
    }
    Ok(added)
}

/// Claims up to `batch` due rows for `worker` until `now + lease`, and returns them. Due means
/// queued with its retry time reached, or `sending` with an expired lease (its worker died).
///
/// This is the one place where the backends differ: PostgreSQL skips rows another worker has
/// locked (`FOR UPDATE SKIP LOCKED`), so several processes claim disjoint batches; SQLite has a
/// single writer, so an immediate transaction with a guarded update is enough.
pub fn claim(
    conn: &mut DbConnection,
    worker: &str,
    batch: u32,
    lease: Duration,
    now: NaiveDateTime,
) -> Result<Vec<OutboxRow>, DbError> {
    let lease_until =
        now + chrono::Duration::from_std(lease).unwrap_or(chrono::Duration::minutes(5));
    let limit = i64::from(batch);
    macro_rules! due {
        () => {
            outbox::status
                .eq(Queued)
                .and(outbox::next_attempt_at.le(now))
                .or(outbox::status.eq(Sending).and(outbox::lease_until.lt(now)))
        };
    }
    macro_rules! take {
        ($ids:expr) => {
            (
                outbox::status.eq(Sending),
                outbox::attempts.eq(outbox::attempts + 1),
                outbox::lease_until.eq(Some(lease_until)),
                outbox::leased_by.eq(Some(worker)),
                outbox::updated_at.eq(now),
            )
        };
    }
    // Two queries an index each serves in its own order, rather than one OR that sorts every
    // due row: rows whose worker's lease ran out first (they are the most overdue), then queued
    // rows by when they fell due.
    macro_rules! candidates {
        ($conn:expr $(, $lock:ident)*) => {{
            let mut ids: Vec<i64> = outbox::table
                .filter(outbox::status.eq(Sending))
                .filter(outbox::lease_until.lt(now))
                .order((outbox::lease_until, outbox::id))
                .limit(limit)
                .select(outbox::id)
                $(.$lock())*
                .load($conn)?;
            let room = limit - i64::try_from(ids.len()).unwrap_or(limit);
            if room > 0 {
                ids.extend(
                    outbox::table
                        .filter(outbox::status.eq(Queued))
                        .filter(outbox::next_attempt_at.le(now))
                        .order((outbox::next_attempt_at, outbox::id))
                        .limit(room)
                        .select(outbox::id)
                        $(.$lock())*
                        .load::<i64>($conn)?,
                );
            }
            ids
        }};
    }
    let claimed: Vec<i64> = match conn {
        DbConnection::Postgresql(pg) => pg.transaction(|pg| {
            let ids: Vec<i64> = candidates!(pg, for_update, skip_locked);
            diesel::update(outbox::table.filter(outbox::id.eq_any(&ids)))
                .set(take!(ids))
                .execute(pg)?;
            Ok::<_, diesel::result::Error>(ids)
        })?,
        DbConnection::Sqlite(sq) => {
            let _turn = crate::db::sqlite_write_turn();
            sq.immediate_transaction(|sq| {
                let candidates: Vec<i64> = candidates!(sq);
                let mut ids = Vec::with_capacity(candidates.len());
                for id in candidates {
                    // Guarded: only a row that is still due changes hands.
                    let taken =
                        diesel::update(outbox::table.filter(outbox::id.eq(id)).filter(due!()))
                            .set(take!(id))
                            .execute(sq)?;
                    if taken == 1 {
                        ids.push(id);
                    }
                }
                Ok::<_, diesel::result::Error>(ids)
            })?
        }
    };
    if claimed.is_empty() {
        return Ok(Vec::new());
    }
    let rows = outbox::table
        .inner_join(outbox_bodies::table)
        .filter(outbox::id.eq_any(&claimed))
        .order(outbox::id)
        .select(OutboxRow::as_select())
        .load(conn)?;
    Ok(rows)
}

/// The rows `which` picks (`outbox::id.eq(id)`, `outbox::id.eq_any(ids)`) while `worker`
/// still holds their lease: outcomes, renewals and hand-backs only touch these.
macro_rules! held {
    ($which:expr, $worker:expr) => {
        outbox::table
            .filter($which)
            .filter(outbox::leased_by.eq($worker))
            .filter(outbox::status.eq(Sending))
    };
}

/// Extends the lease on rows of a batch still to be sent, so a long batch behind a slow
/// server never outlives its lease. Returns the ids that are still this worker's.
pub fn renew(
    conn: &mut DbConnection,
    ids: &[i64],
    worker: &str,
    lease: Duration,
    now: NaiveDateTime,
) -> Result<Vec<i64>, DbError> {
    let lease_until =
        now + chrono::Duration::from_std(lease).unwrap_or(chrono::Duration::minutes(5));
    Ok(diesel::update(held!(outbox::id.eq_any(ids), worker))
        .set((
            outbox::lease_until.eq(Some(lease_until)),
            outbox::updated_at.eq(now),
        ))
        .returning(outbox::id)
        .get_results(conn)?)
}

/// Claims one given row if it is due: for sending a single message at once (`edl mail test`).
/// A single guarded update is atomic on both backends.
pub fn claim_one(
    conn: &mut DbConnection,
    id: i64,
    worker: &str,
    lease: Duration,
    now: NaiveDateTime,
) -> Result<Option<OutboxRow>, DbError> {
    let lease_until =
        now + chrono::Duration::from_std(lease).unwrap_or(chrono::Duration::minutes(5));
    let due = outbox::status
        .eq(Queued)
        .and(outbox::next_attempt_at.le(now))
        .or(outbox::status.eq(Sending).and(outbox::lease_until.lt(now)));
    let taken = diesel::update(outbox::table.filter(outbox::id.eq(id)).filter(due))
        .set((
            outbox::status.eq(Sending),
            outbox::attempts.eq(outbox::attempts + 1),
            outbox::lease_until.eq(Some(lease_until)),
            outbox::leased_by.eq(Some(worker)),
            outbox::updated_at.eq(now),
        ))
        .execute(conn)?;
    if taken == 0 {
        return Ok(None);
    }
    Ok(Some(
        outbox::table
            .inner_join(outbox_bodies::table)
            .filter(outbox::id.eq(id))
            .select(OutboxRow::as_select())
            .first(conn)?,
    ))
}

/// Records deliveries, several in one statement: each row still leased to `worker` is marked
/// sent at `now`. Returns the ids recorded; an id missing from them was no longer this
/// worker's (its lease ran out and another worker took it over).
pub fn mark_sent(
    conn: &mut DbConnection,
    ids: &[i64],
    worker: &str,
    encrypted: bool,
    now: NaiveDateTime,
) -> Result<Vec<i64>, DbError> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    Ok(diesel::update(held!(outbox::id.eq_any(ids), worker))
        .set((
            outbox::status.eq(Sent),
            outbox::encrypted.eq(Some(encrypted)),
            outbox::sent_at.eq(Some(now)),
            outbox::lease_until.eq(None::<NaiveDateTime>),
            outbox::last_error.eq(None::<String>),
            outbox::updated_at.eq(now),
        ))
        .returning(outbox::id)
        .get_results(conn)?)
}

/// Puts a row back in the queue to be tried again at `next_attempt_at`.
pub fn mark_retry(
    conn: &mut DbConnection,
    id: i64,
    worker: &str,
    reason: &str,
    next_attempt_at: NaiveDateTime,
    now: NaiveDateTime,
) -> Result<bool, DbError> {
    let n = diesel::update(held!(outbox::id.eq(id), worker))
        .set((
            outbox::status.eq(Queued),
            outbox::next_attempt_at.eq(next_attempt_at),
            outbox::lease_until.eq(None::<NaiveDateTime>),
            outbox::leased_by.eq(None::<String>),
            outbox::last_error.eq(Some(reason)),
            outbox::updated_at.eq(now),
        ))
        .execute(conn)?;
    Ok(n == 1)
}

/// Gives up on a row; the reason stays for the people who have to act on it.
pub fn mark_failed(
    conn: &mut DbConnection,
    id: i64,
    worker: &str,
    reason: &str,
    now: NaiveDateTime,
) -> Result<bool, DbError> {
    let n = diesel::update(held!(outbox::id.eq(id), worker))
        .set((
            outbox::status.eq(Failed),
            outbox::lease_until.eq(None::<NaiveDateTime>),
            outbox::last_error.eq(Some(reason)),
            outbox::updated_at.eq(now),
        ))
        .execute(conn)?;
    Ok(n == 1)
}

/// Keeps a row back on purpose, with the reason: it is not sent, not retried, and not a
/// delivery failure anyone is alerted about.
pub fn mark_held(
    conn: &mut DbConnection,
    id: i64,
    worker: &str,
    reason: &str,
    now: NaiveDateTime,
) -> Result<bool, DbError> {
    let n = diesel::update(held!(outbox::id.eq(id), worker))
        .set((
            outbox::status.eq(Held),
            outbox::lease_until.eq(None::<NaiveDateTime>),
            outbox::held_reason.eq(Some(reason)),
            outbox::updated_at.eq(now),
        ))
        .execute(conn)?;
    Ok(n == 1)
}

/// Hands claimed but unsent rows back at shutdown, without counting an attempt.
pub fn release(conn: &mut DbConnection, ids: &[i64], worker: &str) -> Result<usize, DbError> {
    let n = diesel::update(held!(outbox::id.eq_any(ids), worker))
        .set((
            outbox::status.eq(Queued),
            outbox::attempts.eq(outbox::attempts - 1),
            outbox::lease_until.eq(None::<NaiveDateTime>),
            outbox::leased_by.eq(None::<String>),
        ))
        .execute(conn)?;
    Ok(n)
}

/// Puts a member's held release mail back in the queue, due at `now`, so that the last check
/// before sending decides again (after the member's key changed, say). Returns how many.
pub fn requeue_held_for_member(
    conn: &mut DbConnection,
    member_id: i64,
    now: NaiveDateTime,
) -> Result<usize, DbError> {
    Ok(diesel::update(
        outbox::table
            .filter(outbox::member_id.eq(member_id))
            .filter(outbox::release_id.is_not_null())
            .filter(outbox::status.eq(Held)),
    )
    .set((
        outbox::status.eq(Queued),
        outbox::held_reason.eq(None::<String>),
        outbox::next_attempt_at.eq(now),
        outbox::lease_until.eq(None::<NaiveDateTime>),
        outbox::leased_by.eq(None::<String>),
        outbox::updated_at.eq(now),
    ))
    .execute(conn)?)
}

/// How long to wait before attempt `attempt + 1`: the base doubled per attempt, capped, then
/// "equal jitter" (a random point in the upper half) so that a burst of failures spreads out.
pub fn backoff(attempt: u32, base: Duration, max: Duration) -> Duration {
    let exponent = attempt.saturating_sub(1).min(30);
    let delay = base.saturating_mul(1u32 << exponent).min(max);
    let factor: f64 = rand::rng().random_range(0.5..=1.0);
    delay.mul_f64(factor)
}

/// How many rows are in each state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    pub queued: i64,
    pub sending: i64,
    pub sent: i64,
    pub failed: i64,
    pub held: i64,
}

pub fn counts(conn: &mut DbConnection) -> Result<Counts, DbError> {
    counts_matching(conn, &Filter::default())
}

/// The patch ids a row attaches.
pub fn attachment_ids(conn: &mut DbConnection, id: i64) -> Result<Vec<i64>, DbError> {
    Ok(outbox_attachments::table
        .filter(outbox_attachments::outbox_id.eq(id))
        .order(outbox_attachments::patch_id)
        .select(outbox_attachments::patch_id)
        .load(conn)?)
}

/// Rows not yet in a final state (queued or being sent), oldest first: work left undone.
pub fn unfinished(conn: &mut DbConnection) -> Result<Vec<OutboxRow>, DbError> {
    Ok(outbox::table
        .inner_join(outbox_bodies::table)
        .filter(outbox::status.eq_any([Queued, Sending]))
        .order(outbox::id)
        .select(OutboxRow::as_select())
        .load(conn)?)
}

/// One row by id.
pub fn find(conn: &mut DbConnection, id: i64) -> Result<Option<OutboxRow>, DbError> {
    Ok(outbox::table
        .inner_join(outbox_bodies::table)
        .filter(outbox::id.eq(id))
        .select(OutboxRow::as_select())
        .first(conn)
        .optional()?)
}

/// All rows, newest first: for operators and tests.
pub fn recent(conn: &mut DbConnection, limit: i64) -> Result<Vec<OutboxRow>, DbError> {
    Ok(outbox::table
        .inner_join(outbox_bodies::table)
        .order(outbox::id.desc())
        .limit(limit)
        .select(OutboxRow::as_select())
        .load(conn)?)
}

// The outbox page: what operators see of the queue, and sending a failed message again.

/// What the outbox page lists: any of `statuses` (all when empty), and each other filter
/// when given. `recipient` is a part of the address, in any case.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub statuses: Vec<OutboxStatus>,
    pub template: Option<String>,
    pub recipient: Option<String>,
    pub release_id: Option<i64>,
}

/// A message as the outbox page shows it: where it stands and why, never its subject, bodies
/// or attachments (an embargoed mail's content stays out of the page).
#[derive(Debug, Clone, Queryable, Selectable, Serialize)]
#[diesel(table_name = outbox)]
pub struct Listed {
    pub id: i64,
    pub template: String,
    pub recipient: String,
    pub status: OutboxStatus,
    pub attempts: i32,
    pub next_attempt_at: NaiveDateTime,
    pub lease_until: Option<NaiveDateTime>,
    pub last_error: Option<String>,
    pub held_reason: Option<String>,
    pub sent_at: Option<NaiveDateTime>,
    pub created_at: NaiveDateTime,
    pub release_id: Option<i64>,
    pub member_id: Option<i64>,
    pub revision: Option<i32>,
}

/// `$query`, boxed, narrowed to the rows that match every filter but the status one.
macro_rules! matching {
    ($query:expr, $filter:expr) => {{
        let filter: &Filter = $filter;
        let mut query = $query.into_boxed();
        if let Some(template) = &filter.template {
            query = query.filter(outbox::template.eq(template.clone()));
        }
        if let Some(part) = &filter.recipient {
            query = query.filter(
                lower(outbox::recipient)
                    .like(search::contains(part))
                    .escape(search::ESCAPE),
            );
        }
        if let Some(release) = filter.release_id {
            query = query.filter(outbox::release_id.eq(release));
        }
        query
    }};
}

/// How many rows of each state match the filter's other conditions, so the page can say what
/// each status choice would show.
pub fn counts_matching(conn: &mut DbConnection, filter: &Filter) -> Result<Counts, DbError> {
    let rows: Vec<(OutboxStatus, i64)> = matching!(
        outbox::table
            .group_by(outbox::status)
            .select((outbox::status, diesel::dsl::count_star())),
        filter
    )
    .load(conn)?;
    let mut counts = Counts::default();
    for (status, n) in rows {
        match status {
            Queued => counts.queued = n,
            Sending => counts.sending = n,
            Sent => counts.sent = n,
            Failed => counts.failed = n,
            Held => counts.held = n,
        }
    }
    Ok(counts)
}

/// One page of matching rows, newest first. Filtering, ordering and paging happen in the
/// database, in two steps: the page's ids from the index alone, then those rows, without
/// their bodies. On SQLite a row's later columns sit after its bodies, so sorting whole rows
/// would read every matching body.
pub fn list(
    conn: &mut DbConnection,
    filter: &Filter,
    offset: i64,
    limit: i64,
) -> Result<Vec<Listed>, DbError> {
    let mut query = matching!(outbox::table.select(outbox::id), filter);
    if !filter.statuses.is_empty() {
        query = query.filter(outbox::status.eq_any(filter.statuses.clone()));
    }
    // Ordered by an expression on purpose when anything filters: SQLite then finds the rows
    // through the index on status and sorts the ids it found, rather than walking the whole
    // table newest first and reading each row's status. With no filter at all there is
    // nothing to read, and the newest ids come straight from the primary key.
    let unfiltered = filter.statuses.is_empty()
        && filter.template.is_none()
        && filter.recipient.is_none()
        && filter.release_id.is_none();
    query = if unfiltered {
        query.order(outbox::id.desc())
    } else {
        query.order((outbox::id + 0i64).desc())
    };
    let ids: Vec<i64> = query.offset(offset.max(0)).limit(limit).load(conn)?;
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    Ok(outbox::table
        .filter(outbox::id.eq_any(&ids))
        .order(outbox::id.desc())
        .select(Listed::as_select())
        .load(conn)?)
}

/// The templates that have mail in the outbox, in order, for the page's filter. Each is the
/// first template after the one before it, found in the index on templates: a lookup per
/// template however many messages there are, where `SELECT DISTINCT` would read them all.
pub fn templates_in_use(conn: &mut DbConnection) -> Result<Vec<String>, DbError> {
    let mut found: Vec<String> = Vec::new();
    loop {
        let mut next = outbox::table
            .select(diesel::dsl::min(outbox::template))
            .into_boxed();
        if let Some(last) = found.last() {
            next = next.filter(outbox::template.gt(last.clone()));
        }
        match next.get_result::<Option<String>>(conn)? {
            Some(template) => found.push(template),
            None => return Ok(found),
        }
    }
}

/// Why a message could not be put back in the queue.
#[derive(Debug, thiserror::Error)]
pub enum SendAgainError {
    #[error("not found")]
    NotFound,
    /// Only a failed message may be sent again: a sent one would arrive twice, a queued or
    /// sending one is on its way, a held one was kept back on purpose.
    #[error("{}", not_failed_text(*id, *status, held_reason.as_deref()))]
    NotFailed {
        id: i64,
        status: OutboxStatus,
        held_reason: Option<String>,
    },
    #[error(transparent)]
    Db(#[from] DbError),
}

impl From<diesel::result::Error> for SendAgainError {
    fn from(error: diesel::result::Error) -> Self {
        Self::Db(error.into())
    }
}

fn not_failed_text(id: i64, status: OutboxStatus, held_reason: Option<&str>) -> String {
    let why = match status {
        Sent => "it was sent already, and sending it again would deliver a second copy".to_owned(),
        Queued => "it is already queued and leaves at its next attempt".to_owned(),
        Sending => "a worker is sending it right now".to_owned(),
        Held => format!(
            "it is held back on purpose ({})",
            held_reason.unwrap_or("no reason recorded")
        ),
        Failed => "it is failed".to_owned(),
    };
    format!("Message #{id} was not queued again: {why}. Only a failed message can be sent again.")
}

/// Puts a failed message back in the queue, due at `now`, with its attempts counted afresh,
/// and records who did so in the audit log, in one transaction. The guarded update makes it
/// atomic: a message that is not failed (above all, one already sent) is never queued again,
/// however many people press the button at once. The last check before sending still runs
/// when a worker picks it up, so mail that may no longer leave is held back then.
pub fn send_again(
    conn: &mut DbConnection,
    id: i64,
    actor: &str,
    now: NaiveDateTime,
) -> Result<Listed, SendAgainError> {
    crate::db::write_transaction(conn, |conn| {
        let before: Listed = outbox::table
            .filter(outbox::id.eq(id))
            .select(Listed::as_select())
            .first(conn)
            .optional()?
            .ok_or(SendAgainError::NotFound)?;
        let requeued = diesel::update(
            outbox::table
                .filter(outbox::id.eq(id))
                .filter(outbox::status.eq(Failed)),
        )
        .set((
            outbox::status.eq(Queued),
            outbox::attempts.eq(0),
            outbox::next_attempt_at.eq(now),
            outbox::lease_until.eq(None::<NaiveDateTime>),
            outbox::leased_by.eq(None::<String>),
            outbox::updated_at.eq(now),
        ))
        .execute(conn)?;
        if requeued == 0 {
            // Read again: someone else may have changed it since.
            let (status, held_reason) = outbox::table
                .filter(outbox::id.eq(id))
                .select((outbox::status, outbox::held_reason))
                .first(conn)?;
            return Err(SendAgainError::NotFailed {
                id,
                status,
                held_reason,
            });
        }
        crate::audit::record(
            conn,
            actor,
            "mail.sent-again",
            &format!("outbox:{id}"),
            serde_json::json!({
                "template": before.template,
                "recipient": before.recipient,
                "release_id": before.release_id,
                "member_id": before.member_id,
                "attempts_before": before.attempts,
                "last_error": before.last_error,
            }),
        )?;
        Ok(before)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_caps_and_jitters() {
        let base = Duration::from_secs(30);
        let max = Duration::from_secs(3600);
        for attempt in 1..=12 {
            let full = base.saturating_mul(1 << (attempt - 1)).min(max);
            for _ in 0..50 {
                let d = backoff(attempt, base, max);
                assert!(
                    d >= full / 2 && d <= full,
                    "attempt {attempt}: {d:?} not in [{:?}, {full:?}]",
                    full / 2
                );
            }
        }
        assert!(backoff(100, base, max) <= max);
    }

    #[test]
    fn message_ids_are_unique_and_well_formed() {
        let a = new_message_id("edl.example.org");
        let b = new_message_id("edl.example.org");
        assert_ne!(a, b);
        assert!(
            a.starts_with('<') && a.ends_with("@edl.example.org>"),
            "{a}"
        );
    }
}
