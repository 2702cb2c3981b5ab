//! Releases: the Patch Tuesday calendar and, around it, releases, patches and the rule that an
//! upstream's embargoed fixes (Envoy's) are never redistributed.

pub mod calendar;
pub mod feeds;
pub mod patch;
pub mod release;

/// Envoy's security policy, linked wherever Envoy's fixes are withheld. The same URL is seeded
/// into the `upstreams` table by the first migration.
pub const ENVOY_POLICY_URL: &str = "https://github.com/envoyproxy/envoy/security/policy";

use diesel::prelude::*;

use crate::db::schema::{patches, upstreams};
use crate::db::{DbConnection, DbError};
use crate::mail::transport::Attachment;

/// A patch's id, file name, content, and the name and redistribution flag of its upstream.
type PatchFile = (i64, String, Vec<u8>, Option<String>, Option<bool>);

/// The patch files to attach to a message. Refuses (with the reason) if any of them belongs to
/// an upstream whose fixes may not be redistributed: this is the last check before anything
/// leaves, whatever path put the patch id in the message.
pub fn attachable_patches(
    conn: &mut DbConnection,
    ids: &[i64],
) -> Result<Result<Vec<Attachment>, String>, DbError> {
    let rows: Vec<PatchFile> = patches::table
        .left_join(upstreams::table)
        .filter(patches::id.eq_any(ids))
        .select((
            patches::id,
            patches::filename,
            patches::content,
            upstreams::name.nullable(),
            upstreams::may_redistribute.nullable(),
        ))
        .load(conn)?;
    if rows.len() != ids.len() {
        return Ok(Err("a patch to attach no longer exists".to_owned()));
    }
    let mut files = Vec::with_capacity(rows.len());
    for (id, filename, content, upstream, may_redistribute) in rows {
        if may_redistribute == Some(false) {
            return Ok(Err(format!(
                "refused to attach patch {id}: it comes from {} under its embargo and may not be redistributed",
                upstream.unwrap_or_default()
            )));
        }
        files.push(Attachment { filename, content });
    }
    Ok(Ok(files))
}

/// How the reason of an embargoed message that was held back on purpose begins. Such rows are
/// not delivery failures, so release managers are not alerted about them.
pub const HELD_BACK: &str = "not sent: ";

/// Everything checked just before a release mail leaves: an embargoed message is not sent for
/// a cancelled release, once the release is public, or to a member no longer active (however
/// long it waited in the queue); then its attachments are read, with [`attachable_patches`].
pub fn prepare_release_mail(
    conn: &mut DbConnection,
    release_id: Option<i64>,
    member_id: Option<i64>,
    template: &str,
    attachment_ids: &[i64],
) -> Result<Result<Vec<Attachment>, String>, DbError> {
    use crate::db::schema::{members, releases};
    if template == "embargoed_release" {
        let release: Option<(Option<chrono::NaiveDateTime>, chrono::NaiveDateTime)> =
            releases::table
                .filter(releases::id.eq(release_id.unwrap_or_default()))
                .select((releases::cancelled_at, releases::release_at))
                .first(conn)
                .optional()?;
        let Some((cancelled_at, release_at)) = release else {
            return Ok(Err(format!("{HELD_BACK}the release no longer exists")));
        };
        if cancelled_at.is_some() {
            return Ok(Err(format!("{HELD_BACK}the release was cancelled")));
        }
        if crate::db::now() >= release_at {
            return Ok(Err(format!(
                "{HELD_BACK}the release is already public, so embargoed mail is no longer sent"
            )));
        }
        let status: Option<String> = members::table
            .filter(members::id.eq(member_id.unwrap_or_default()))
            .select(members::status)
            .first(conn)
            .optional()?;
        if status.as_deref() != Some(crate::membership::members::ACTIVE) {
            return Ok(Err(format!("{HELD_BACK}the member is no longer active")));
        }
    }
    if attachment_ids.is_empty() {
        return Ok(Ok(Vec::new()));
    }
    attachable_patches(conn, attachment_ids)
}
