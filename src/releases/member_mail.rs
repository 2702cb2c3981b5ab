//! What a member was mailed about releases, as its own page shows it: each embargoed mail (or
//! the notice sent instead) with its state read from the outbox and the receipts, and the
//! member's acknowledgement of one it received. Metadata only: a release's title and dates are
//! shown for mail that reached the member, or once the release is public; never its advisories
//! or patches.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use serde::Serialize;

use crate::db::schema::{outbox, release_receipts, releases};
use crate::db::{DbConnection, DbError};
use crate::domain::OutboxStatus;
use crate::releases::distribution::{EMBARGOED, WITHHELD_FOR_KEY};
use crate::releases::release::{self, ReleaseError};

/// One mail of the member's, as its page lists it.
#[derive(Debug, Clone, Serialize)]
pub struct Mailing {
    /// The outbox row, which the acknowledge button names.
    pub id: i64,
    /// `None` when the mail did not reach the member and the release is not public.
    pub title: Option<String>,
    pub release_at: Option<NaiveDateTime>,
    pub revision: Option<i32>,
    /// A notice that the content was withheld (no usable key), not the content.
    pub notice: bool,
    /// `sent`, `acknowledged`, `held`, `waiting` or `failed`.
    pub state: &'static str,
    pub held_reason: Option<String>,
    pub sent_at: Option<NaiveDateTime>,
    pub acknowledged_at: Option<NaiveDateTime>,
    pub can_acknowledge: bool,
}

type Row = (
    (
        i64,
        String,
        OutboxStatus,
        Option<String>,
        Option<NaiveDateTime>,
    ),
    Option<i32>,
    (
        String,
        NaiveDateTime,
        Option<NaiveDateTime>,
        Option<NaiveDateTime>,
        Option<NaiveDateTime>,
    ),
    Option<NaiveDateTime>,
);

/// Every release mail of `member_id`, newest first.
pub fn mailings(conn: &mut DbConnection, member_id: i64) -> Result<Vec<Mailing>, DbError> {
    let rows: Vec<Row> = outbox::table
        .inner_join(releases::table.on(outbox::release_id.eq(releases::id.nullable())))
        .left_join(
            release_receipts::table.on(release_receipts::release_id
                .nullable()
                .eq(outbox::release_id)
                .and(release_receipts::member_id.nullable().eq(outbox::member_id))
                .and(release_receipts::revision.nullable().eq(outbox::revision))),
        )
        .filter(outbox::member_id.eq(member_id))
        .filter(outbox::template.eq_any([EMBARGOED, WITHHELD_FOR_KEY]))
        .order(outbox::id.desc())
        .select((
            (
                outbox::id,
                outbox::template,
                outbox::status,
                outbox::held_reason,
                outbox::sent_at,
            ),
            outbox::revision,
            (
                releases::title,
                releases::release_at,
                releases::cancelled_at,
                releases::announced_at,
                releases::published_at,
            ),
            release_receipts::acknowledged_at.nullable(),
        ))
        .load(conn)?;
    Ok(rows
        .into_iter()
        .map(
            |(
                (id, template, status, held_reason, sent_at),
                revision,
                (title, release_at, cancelled_at, announced_at, published_at),
                acknowledged_at,
            )| {
                let public =
                    cancelled_at.is_none() && (announced_at.is_some() || published_at.is_some());
                let reached = status == OutboxStatus::Sent;
                let notice = template == WITHHELD_FOR_KEY;
                let state = match status {
                    OutboxStatus::Sent if acknowledged_at.is_some() => "acknowledged",
                    OutboxStatus::Sent => "sent",
                    OutboxStatus::Held => "held",
                    OutboxStatus::Failed => "failed",
                    OutboxStatus::Queued | OutboxStatus::Sending => "waiting",
                };
                let shown = reached || public;
                Mailing {
                    id,
                    title: shown.then_some(title),
                    release_at: shown.then_some(release_at),
                    revision,
                    notice,
                    state,
                    held_reason: (status == OutboxStatus::Held)
                        .then_some(held_reason)
                        .flatten(),
                    sent_at,
                    can_acknowledge: reached && !notice && acknowledged_at.is_none(),
                    acknowledged_at,
                }
            },
        )
        .collect())
}

/// The member acknowledges the embargoed mail `outbox_id`: only its own, and only one that
/// reached it. Anything else is "not found", whoever's it is. Audited with `actor`.
pub fn acknowledge(
    conn: &mut DbConnection,
    member_id: i64,
    outbox_id: i64,
    actor: &str,
) -> Result<bool, ReleaseError> {
    let found: Option<(Option<i64>, Option<i32>)> = outbox::table
        .filter(outbox::id.eq(outbox_id))
        .filter(outbox::member_id.eq(member_id))
        .filter(outbox::template.eq(EMBARGOED))
        .filter(outbox::status.eq(OutboxStatus::Sent))
        .select((outbox::release_id, outbox::revision))
        .first(conn)
        .optional()
        .map_err(DbError::from)?;
    let Some((Some(release_id), Some(revision))) = found else {
        return Err(ReleaseError::NotFound);
    };
    Ok(release::acknowledge_as(
        conn, release_id, member_id, revision, actor,
    )?)
}
