//! The two-person rule: a release is approved, revision by revision, by a release manager who
//! neither planned it nor changed the revision being approved, and only when nothing blocks it.
//! Who changed what is read from `release_changes`; the audit log only records.

use diesel::prelude::*;
use serde_json::json;

use crate::audit;
use crate::db::schema::{release_changes, release_revisions};
use crate::db::{self, DbConnection, DbError};
use crate::domain::ReleaseKind;
use crate::releases::release::{
    advisories_of, open_release, patches_of, subject, Actor, Release, ReleaseError,
};
use crate::releases::upstream;

/// What stops a release from being approved, as sentences a release manager can act on.
pub fn blockers(conn: &mut DbConnection, release: &Release) -> Result<Vec<String>, DbError> {
    let patches = patches_of(conn, release.id)?;
    let mut out = upstream::blockers(&patches);
    if release.kind == ReleaseKind::PatchTuesday && release.non_security_exception.is_none() {
        for p in patches.iter().filter(|p| !p.is_security_fix) {
            out.push(format!(
                "{} is not a security fix; a Patch Tuesday release carries security fixes only unless an exception is recorded.",
                p.filename
            ));
        }
    }
    if advisories_of(conn, release.id)?.is_empty() {
        out.push("Add at least one advisory.".to_owned());
    }
    Ok(out)
}

/// Whether `account_id` made any change in the release's current revision.
fn changed_current_revision(
    conn: &mut DbConnection,
    release: &Release,
    account_id: i64,
) -> Result<bool, DbError> {
    let changes: i64 = release_changes::table
        .filter(release_changes::release_id.eq(release.id))
        .filter(release_changes::revision.eq(release.revision))
        .filter(release_changes::changed_by.eq(account_id))
        .count()
        .get_result(conn)?;
    Ok(changes > 0)
}

/// Why `account_id` may not approve the release's current revision, whatever its state: it
/// planned the release or changed this revision. `None` for a second person. The release page
/// asks this to offer the approve button only to someone who may use it.
pub fn not_a_second_person(
    conn: &mut DbConnection,
    release: &Release,
    account_id: i64,
) -> Result<Option<String>, DbError> {
    if release.created_by == account_id {
        return Ok(Some(
            "The person who planned a release cannot approve it; a second release manager must."
                .into(),
        ));
    }
    if changed_current_revision(conn, release, account_id)? {
        return Ok(Some("You changed this revision (a patch, its origin, an advisory or an exception); a release manager who did not change it must approve it.".into()));
    }
    Ok(None)
}

/// A second person approves the current revision. Returns the revision approved.
pub fn approve(conn: &mut DbConnection, id: i64, by: &Actor) -> Result<i32, ReleaseError> {
    db::write_transaction(conn, |conn| {
        // The same lock as every change: a change cannot slip in between the checks and the
        // approval.
        db::lock_for_transaction(conn, &subject(id))?;
        let release = open_release(conn, id)?;
        if let Some(why) = not_a_second_person(conn, &release, by.account_id)? {
            return Err(ReleaseError::Refused(why));
        }
        if release.approved_current() {
            return Err(ReleaseError::Refused(format!(
                "Revision {} is already approved.",
                release.revision
            )));
        }
        let blocking = blockers(conn, &release)?;
        if !blocking.is_empty() {
            return Err(ReleaseError::Refused(blocking.join(" ")));
        }
        diesel::update(
            release_revisions::table
                .filter(release_revisions::release_id.eq(id))
                .filter(release_revisions::revision.eq(release.revision)),
        )
        .set((
            release_revisions::approved_by.eq(Some(by.account_id)),
            release_revisions::approved_at.eq(Some(db::now())),
        ))
        .execute(conn)?;
        audit::record(
            conn,
            &by.email,
            "release.approved",
            &subject(id),
            json!({ "revision": release.revision }),
        )?;
        Ok(release.revision)
    })
}
