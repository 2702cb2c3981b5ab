//! A release and the changes to it: planning by kind, advisories, patches and their origin,
//! exceptions, postponing and cancelling, members' receipts. Each change belongs to a
//! revision; a change to an approved revision opens the next one, which needs approval again
//! (see `approval` for who may give it).

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use diesel::prelude::*;
use serde::Serialize;
use serde_json::json;

use crate::app::Context;
use crate::audit;
use crate::db::schema::{
    advisories, members, outbox, patches, release_changes, release_receipts, release_revisions,
    releases,
};
use crate::db::{self, DbConnection, DbError};
use crate::domain::{CveId, CvssVector, JsonList, ReleaseKind, Severity};
use crate::error::FieldErrors;
use crate::mail::MailError;
use crate::releases::calendar::Calendar;
use crate::releases::{patch, upstream};

/// A release with the approval of its current revision.
#[derive(Debug, Clone, Queryable, Selectable, Serialize)]
#[diesel(table_name = releases)]
pub struct Release {
    pub id: i64,
    pub kind: ReleaseKind,
    pub title: String,
    /// The current revision: the one members are mailed and an approver approves.
    pub revision: i32,
    pub release_at: NaiveDateTime,
    pub disclosure_at: Option<NaiveDateTime>,
    pub announce_at: Option<NaiveDateTime>,
    pub upstream_id: Option<i64>,
    pub release_lines: JsonList<String>,
    pub members_may_deploy: bool,
    pub notes: String,
    pub created_by: i64,
    pub disclosed_at: Option<NaiveDateTime>,
    pub announced_at: Option<NaiveDateTime>,
    pub published_at: Option<NaiveDateTime>,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
    pub notice_hours: i32,
    pub non_security_exception: Option<String>,
    pub cancelled_at: Option<NaiveDateTime>,
    pub cancel_reason: Option<String>,
    #[diesel(embed)]
    pub approval: Approval,
}

/// Who approved a revision, and when; both empty while it waits for approval.
#[derive(Debug, Clone, Queryable, Selectable, Serialize)]
#[diesel(table_name = release_revisions)]
pub struct Approval {
    pub approved_by: Option<i64>,
    pub approved_at: Option<NaiveDateTime>,
}

/// Where a release stands, derived from its columns: the one answer pages and the CLI show.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ReleaseState {
    Cancelled,
    Public,
    Approved,
    NeedsApproval,
}

impl ReleaseState {
    pub fn label(self) -> &'static str {
        match self {
            Self::Cancelled => "cancelled",
            Self::Public => "public",
            Self::Approved => "approved",
            Self::NeedsApproval => "needs approval",
        }
    }
}

impl Release {
    /// Approved as it stands now: a change after approval makes a revision that is not.
    pub fn approved_current(&self) -> bool {
        self.approval.approved_at.is_some() && self.cancelled_at.is_none()
    }

    pub fn state(&self) -> ReleaseState {
        if self.cancelled_at.is_some() {
            ReleaseState::Cancelled
        } else if self.published_at.is_some() {
            ReleaseState::Public
        } else if self.approved_current() {
            ReleaseState::Approved
        } else {
            ReleaseState::NeedsApproval
        }
    }

    pub fn lines(&self) -> &[String] {
        &self.release_lines
    }
}

#[derive(Debug, Clone, Queryable, Selectable, Serialize)]
#[diesel(table_name = advisories)]
pub struct Advisory {
    pub id: i64,
    pub release_id: i64,
    pub cve_id: CveId,
    pub severity: Severity,
    /// Empty when none was given; checked as a [`CvssVector`] when it was.
    pub cvss_vector: String,
    pub summary: String,
    pub affected_versions: String,
    pub fixed_versions: String,
    pub created_at: NaiveDateTime,
}

/// A patch as listed (without its content).
#[derive(Debug, Clone, Queryable, Selectable, Serialize)]
#[diesel(table_name = patches)]
pub struct Patch {
    pub id: i64,
    pub release_id: i64,
    pub filename: String,
    pub sha256: String,
    pub release_line: String,
    pub upstream_id: Option<i64>,
    pub is_security_fix: bool,
    pub looks_like_upstream: bool,
    pub reclassified_reason: Option<String>,
    pub uploaded_by: i64,
    pub created_at: NaiveDateTime,
    pub upstream_signals: JsonList<String>,
}

impl Patch {
    /// Flagged as looking like Envoy's while filed under another origin, and not yet
    /// classified by a person.
    pub fn blocks(&self) -> bool {
        self.looks_like_upstream && self.reclassified_reason.is_none()
    }
}

crate::text_enum! {
    /// What a change to a release did; each is recorded with who made it and in which revision.
    pub enum ReleaseChange ("release change") {
        Planned = "planned",
        AdvisoryAdded = "advisory-added",
        PatchAdded = "patch-added",
        PatchReclassified = "patch-reclassified",
        ExceptionRecorded = "exception-recorded",
        Postponed = "postponed",
    }
}

impl ReleaseChange {
    /// The audit log's name for it.
    pub fn action(self) -> String {
        format!("release.{}", self.as_str())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ReleaseError {
    /// What was typed is not usable: one message per field.
    #[error("{}", .0.values().cloned().collect::<Vec<_>>().join(" "))]
    Invalid(FieldErrors),
    /// The input is fine, but the release's state does not allow it.
    #[error("{0}")]
    Refused(String),
    #[error("not found")]
    NotFound,
    #[error(transparent)]
    Mail(#[from] MailError),
    #[error(transparent)]
    Db(#[from] DbError),
}

impl ReleaseError {
    pub fn invalid(field: &str, message: impl Into<String>) -> Self {
        Self::Invalid(FieldErrors::from([(field.to_owned(), message.into())]))
    }
}

impl From<diesel::result::Error> for ReleaseError {
    fn from(error: diesel::result::Error) -> Self {
        Self::Db(error.into())
    }
}

/// Who acts: the account id for the two-person rule, the email for the audit log.
#[derive(Debug, Clone)]
pub struct Actor {
    pub account_id: i64,
    pub email: String,
}

impl From<&crate::accounts::session::CurrentUser> for Actor {
    fn from(user: &crate::accounts::session::CurrentUser) -> Self {
        Self {
            account_id: user.account_id,
            email: user.email.clone(),
        }
    }
}

pub(crate) fn subject(id: i64) -> String {
    format!("release:{id}")
}

/// Releases with the approval of their current revision, for `.select(Release::as_select())`.
macro_rules! releases_with_approval {
    () => {
        releases::table.inner_join(
            release_revisions::table.on(release_revisions::release_id
                .eq(releases::id)
                .and(release_revisions::revision.eq(releases::revision))),
        )
    };
}

pub fn find(conn: &mut DbConnection, id: i64) -> Result<Option<Release>, DbError> {
    Ok(releases_with_approval!()
        .filter(releases::id.eq(id))
        .select(Release::as_select())
        .first(conn)
        .optional()?)
}

/// Every release, the latest release time first.
pub fn list(conn: &mut DbConnection) -> Result<Vec<Release>, DbError> {
    Ok(releases_with_approval!()
        .order((releases::release_at.desc(), releases::id.desc()))
        .select(Release::as_select())
        .load(conn)?)
}

/// Releases pre-announced and not yet published nor cancelled, soonest first: what the home
/// page says is coming.
pub fn announced_upcoming(conn: &mut DbConnection) -> Result<Vec<Release>, DbError> {
    Ok(releases_with_approval!()
        .filter(releases::announced_at.is_not_null())
        .filter(releases::published_at.is_null())
        .filter(releases::cancelled_at.is_null())
        .order((releases::release_at.asc(), releases::id.asc()))
        .select(Release::as_select())
        .load(conn)?)
}

/// Releases not yet published nor cancelled: what the scheduler looks at.
pub fn pending_ids(conn: &mut DbConnection) -> Result<Vec<i64>, DbError> {
    Ok(releases::table
        .filter(releases::cancelled_at.is_null())
        .filter(releases::published_at.is_null())
        .select(releases::id)
        .load(conn)?)
}

pub fn advisories_of(conn: &mut DbConnection, id: i64) -> Result<Vec<Advisory>, DbError> {
    Ok(advisories::table
        .filter(advisories::release_id.eq(id))
        .order(advisories::id)
        .select(Advisory::as_select())
        .load(conn)?)
}

/// The advisories of several releases in one query, by release id: what the public pages and
/// feeds list.
pub fn advisories_by_release(
    conn: &mut DbConnection,
    ids: &[i64],
) -> Result<std::collections::HashMap<i64, Vec<Advisory>>, DbError> {
    let mut by_release: std::collections::HashMap<i64, Vec<Advisory>> =
        ids.iter().map(|id| (*id, Vec::new())).collect();
    for chunk in ids.chunks(500) {
        let rows: Vec<Advisory> = advisories::table
            .filter(advisories::release_id.eq_any(chunk))
            .order(advisories::id)
            .select(Advisory::as_select())
            .load(conn)?;
        for advisory in rows {
            by_release
                .entry(advisory.release_id)
                .or_default()
                .push(advisory);
        }
    }
    Ok(by_release)
}

pub fn patches_of(conn: &mut DbConnection, id: i64) -> Result<Vec<Patch>, DbError> {
    Ok(patches::table
        .filter(patches::release_id.eq(id))
        .order(patches::id)
        .select(Patch::as_select())
        .load(conn)?)
}

/// What an approver reads about one patch: its files with their line counts, its origin,
/// why it looked like an upstream's, and every change of its origin. Never its content.
#[derive(Debug, Clone, Serialize)]
pub struct PatchEvidence {
    pub patch: Patch,
    /// "project", or the upstream's name.
    pub origin: String,
    pub files: Vec<patch::FileChange>,
    pub reclassifications: Vec<Reclassification>,
    /// Moved from an upstream to the project, or flagged and then classified by a person:
    /// marked on the approval page of every later revision.
    pub refiled: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct Reclassification {
    pub from: String,
    pub to: String,
    pub was_flagged: bool,
    pub reason: String,
    pub by: String,
    pub at: NaiveDateTime,
    pub revision: i32,
}

/// The evidence of every patch of a release, in upload order.
pub fn evidence_of(conn: &mut DbConnection, id: i64) -> Result<Vec<PatchEvidence>, DbError> {
    use crate::db::schema::{accounts, patch_files, patch_reclassifications};
    let patches = patches_of(conn, id)?;
    let upstreams = upstream::list(conn)?;
    let ids: Vec<i64> = patches.iter().map(|p| p.id).collect();
    let files: Vec<(i64, String, i32, i32)> = patch_files::table
        .filter(patch_files::patch_id.eq_any(&ids))
        .order((patch_files::patch_id, patch_files::path))
        .select((
            patch_files::patch_id,
            patch_files::path,
            patch_files::added,
            patch_files::removed,
        ))
        .load(conn)?;
    type Row = (
        i64,
        Option<i64>,
        Option<i64>,
        bool,
        String,
        String,
        NaiveDateTime,
        i32,
    );
    let changes: Vec<Row> = patch_reclassifications::table
        .inner_join(accounts::table)
        .filter(patch_reclassifications::patch_id.eq_any(&ids))
        .order(patch_reclassifications::id)
        .select((
            patch_reclassifications::patch_id,
            patch_reclassifications::from_upstream_id,
            patch_reclassifications::to_upstream_id,
            patch_reclassifications::was_flagged,
            patch_reclassifications::reason,
            accounts::email,
            patch_reclassifications::changed_at,
            patch_reclassifications::revision,
        ))
        .load(conn)?;
    let name = |upstream: Option<i64>| {
        upstream
            .and_then(|u| upstreams.iter().find(|x| x.id == u))
            .map_or("project".to_owned(), |u| u.name.clone())
    };
    Ok(patches
        .into_iter()
        .map(|patch| {
            let reclassifications: Vec<Reclassification> = changes
                .iter()
                .filter(|c| c.0 == patch.id)
                .map(|c| Reclassification {
                    from: name(c.1),
                    to: name(c.2),
                    was_flagged: c.3,
                    reason: c.4.clone(),
                    by: c.5.clone(),
                    at: c.6,
                    revision: c.7,
                })
                .collect();
            let refiled = changes
                .iter()
                .filter(|c| c.0 == patch.id)
                .any(|c| c.3 || (c.1.is_some() && c.2.is_none()));
            PatchEvidence {
                origin: name(patch.upstream_id),
                files: files
                    .iter()
                    .filter(|f| f.0 == patch.id)
                    .map(|f| patch::FileChange {
                        path: f.1.clone(),
                        added: u32::try_from(f.2).unwrap_or(0),
                        removed: u32::try_from(f.3).unwrap_or(0),
                    })
                    .collect(),
                reclassifications,
                refiled,
                patch,
            }
        })
        .collect())
}

/// One revision of a release with the changes that made it.
#[derive(Debug, Clone, Serialize)]
pub struct Revision {
    pub revision: i32,
    pub approved_by: Option<String>,
    pub approved_at: Option<NaiveDateTime>,
    pub changes: Vec<ChangeRecord>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ChangeRecord {
    pub change: ReleaseChange,
    pub changed_by: String,
    pub changed_at: NaiveDateTime,
}

/// Every revision of a release, the latest first, naming who changed and who approved it.
pub fn revisions_of(conn: &mut DbConnection, id: i64) -> Result<Vec<Revision>, DbError> {
    use crate::db::schema::accounts;
    let approved: Vec<(i32, Option<NaiveDateTime>, Option<String>)> = release_revisions::table
        .left_join(accounts::table.on(release_revisions::approved_by.eq(accounts::id.nullable())))
        .filter(release_revisions::release_id.eq(id))
        .order(release_revisions::revision.desc())
        .select((
            release_revisions::revision,
            release_revisions::approved_at,
            accounts::email.nullable(),
        ))
        .load(conn)?;
    let changes: Vec<(i32, ReleaseChange, String, NaiveDateTime)> = release_changes::table
        .inner_join(accounts::table)
        .filter(release_changes::release_id.eq(id))
        .order(release_changes::id)
        .select((
            release_changes::revision,
            release_changes::change,
            accounts::email,
            release_changes::changed_at,
        ))
        .load(conn)?;
    Ok(approved
        .into_iter()
        .map(|(revision, approved_at, approved_by)| Revision {
            revision,
            approved_by,
            approved_at,
            changes: changes
                .iter()
                .filter(|(r, ..)| *r == revision)
                .map(|(_, change, by, at)| ChangeRecord {
                    change: *change,
                    changed_by: by.clone(),
                    changed_at: *at,
                })
                .collect(),
        })
        .collect())
}

/// What a release manager asks for, parsed.
#[derive(Debug, Clone)]
pub struct Plan {
    pub kind: ReleaseKind,
    pub title: String,
    pub release_lines: Vec<String>,
    /// A Patch Tuesday other than the next one with its full lead time.
    pub patch_tuesday: Option<NaiveDate>,
    /// For a 0-day: when it ships (default now); for a third-party release: the embargo lift.
    pub release_at: Option<DateTime<Utc>>,
    pub upstream_id: Option<i64>,
    /// For a 0-day: hours of member notice before it ships, at most [`MAX_NOTICE_HOURS`].
    pub notice_hours: u32,
    pub members_may_deploy: bool,
    pub notes: String,
}

/// The most hours of notice a 0-day release gives members (docs/GUIDE.md), checked here for
/// the web form and the command line alike.
pub const MAX_NOTICE_HOURS: u32 = 72;

/// One message per field whose text may not go where it goes (members' mail, public pages,
/// the approver): a piece of a diff, or Envoy's code. Each item is (field, label, text).
pub(crate) fn free_text_errors<'a>(
    texts: impl IntoIterator<Item = (&'a str, &'a str, &'a str)>,
) -> FieldErrors {
    texts
        .into_iter()
        .filter_map(|(field, label, text)| {
            // Control characters (NUL above all, which PostgreSQL cannot store) have no place
            // in prose; tabs and line breaks do.
            if text
                .chars()
                .any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t'))
            {
                return Some((
                    field.to_owned(),
                    format!("{label} contains control characters; type it as plain text."),
                ));
            }
            upstream::free_text_problem(text).map(|problem| {
                (
                    field.to_owned(),
                    format!("{label} cannot be used: {problem}."),
                )
            })
        })
        .collect()
}

/// The reason typed for a change, trimmed; refused, beside the field "reason", when it is
/// empty (with `missing`) or carries what may not be passed on.
fn checked_reason<'a>(reason: &'a str, missing: &str) -> Result<&'a str, ReleaseError> {
    let reason = reason.trim();
    if reason.is_empty() {
        return Err(ReleaseError::invalid("reason", missing));
    }
    let errors = free_text_errors([("reason", "The reason", reason)]);
    if !errors.is_empty() {
        return Err(ReleaseError::Invalid(errors));
    }
    Ok(reason)
}

/// Refuses, beside `field`, an upstream id that names no upstream.
fn upstream_exists(
    conn: &mut DbConnection,
    field: &str,
    upstream_id: Option<i64>,
) -> Result<(), ReleaseError> {
    use crate::db::schema::upstreams;
    let Some(id) = upstream_id else {
        return Ok(());
    };
    let found: i64 = upstreams::table
        .filter(upstreams::id.eq(id))
        .count()
        .get_result(conn)?;
    if found == 0 {
        return Err(ReleaseError::invalid(field, "There is no such upstream."));
    }
    Ok(())
}

/// Release lines as typed: separated by commas or new lines.
pub fn parse_lines(text: &str) -> Vec<String> {
    let mut lines: Vec<String> = Vec::new();
    for line in text
        .split([',', '\n'])
        .map(str::trim)
        .filter(|l| !l.is_empty())
    {
        if !lines.iter().any(|l| l == line) {
            lines.push(line.to_owned());
        }
    }
    lines
}

/// Computes the moments of a planned release, checks them, and stores it as revision 1.
pub fn plan(
    conn: &mut DbConnection,
    calendar: &Calendar,
    plan: &Plan,
    by: &Actor,
    now: DateTime<Utc>,
) -> Result<i64, ReleaseError> {
    let title = plan.title.trim();
    if title.is_empty() || title.chars().count() > 200 {
        return Err(ReleaseError::invalid(
            "title",
            "Give the release a title of at most 200 characters.",
        ));
    }
    if plan.release_lines.is_empty() {
        return Err(ReleaseError::invalid(
            "release_lines",
            "Name at least one release line, e.g. 1.9.5.",
        ));
    }
    if plan.notice_hours > MAX_NOTICE_HOURS {
        return Err(ReleaseError::invalid(
            "notice_hours",
            format!("Give the member notice in whole hours, from 0 to {MAX_NOTICE_HOURS}."),
        ));
    }
    // What goes into members' mail and onto public pages must not carry an upstream's code.
    let lines = plan.release_lines.join("\n");
    let errors = free_text_errors([
        ("title", "The title", title),
        ("release_lines", "The release lines", lines.as_str()),
        ("notes", "The notes for members", plan.notes.as_str()),
    ]);
    if !errors.is_empty() {
        return Err(ReleaseError::Invalid(errors));
    }
    let lead = chrono::Duration::days(i64::from(calendar.lead_days));
    let (release_at, disclosure_at, announce_at) = match plan.kind {
        ReleaseKind::PatchTuesday => {
            let chosen = match plan.patch_tuesday {
                Some(day) => calendar.on(day).ok_or_else(|| {
                    ReleaseError::invalid(
                        "patch_tuesday",
                        "That date is not a Patch Tuesday (the second Tuesday of its month).",
                    )
                })?,
                None => calendar.next_with_lead_time(now).ok_or_else(|| {
                    ReleaseError::invalid("patch_tuesday", "No Patch Tuesday could be found.")
                })?,
            };
            if chosen.early_disclosure_at <= now {
                return Err(ReleaseError::invalid(
                    "patch_tuesday",
                    "That Patch Tuesday's early-disclosure date has passed; choose a later one, or plan a 0-day release.",
                ));
            }
            (
                chosen.release_at,
                Some(chosen.early_disclosure_at),
                Some(chosen.early_disclosure_at),
            )
        }
        ReleaseKind::ZeroDay => {
            let release_at = plan.release_at.unwrap_or(now);
            let notice = (plan.notice_hours > 0)
                .then(|| release_at - chrono::Duration::hours(i64::from(plan.notice_hours)));
            (release_at, notice, None)
        }
        ReleaseKind::ThirdParty => {
            let Some(lift) = plan.release_at else {
                return Err(ReleaseError::invalid(
                    "release_at",
                    "Give the time the upstream's embargo lifts.",
                ));
            };
            if lift <= now {
                return Err(ReleaseError::invalid(
                    "release_at",
                    "The embargo lift time has already passed.",
                ));
            }
            if plan.upstream_id.is_none() {
                return Err(ReleaseError::invalid(
                    "upstream_id",
                    "Choose the upstream whose embargo this release follows.",
                ));
            }
            let disclosure = (lift - lead).max(now);
            (lift, Some(disclosure), Some(disclosure))
        }
    };
    // Release moments are kept to the second: both backends store them alike, and nobody
    // schedules a release to the microsecond.
    let whole = |t: DateTime<Utc>| {
        use chrono::Timelike;
        t.with_nanosecond(0).unwrap_or(t)
    };
    let (release_at, disclosure_at, announce_at) = (
        whole(release_at),
        disclosure_at.map(whole),
        announce_at.map(whole),
    );
    db::write_transaction(conn, |conn| {
        let upstreams = upstream::list(conn)?;
        if let Some(id) = plan.upstream_id {
            if !upstreams.iter().any(|u| u.id == id) {
                return Err(ReleaseError::invalid(
                    "upstream_id",
                    "There is no such upstream.",
                ));
            }
        }
        if let Some(problem) = upstream::title_problem(title, &upstreams) {
            return Err(ReleaseError::invalid("title", problem));
        }
        let now_naive = db::now();
        let id: i64 = diesel::insert_into(releases::table)
            .values((
                releases::kind.eq(plan.kind),
                releases::title.eq(title),
                releases::revision.eq(1),
                releases::release_at.eq(release_at.naive_utc()),
                releases::disclosure_at.eq(disclosure_at.map(|t| t.naive_utc())),
                releases::announce_at.eq(announce_at.map(|t| t.naive_utc())),
                releases::upstream_id.eq(plan.upstream_id),
                releases::release_lines.eq(JsonList::to_json(&plan.release_lines)),
                releases::members_may_deploy.eq(plan.members_may_deploy),
                releases::notes.eq(plan.notes.trim()),
                releases::notice_hours.eq(i32::try_from(plan.notice_hours).unwrap_or(0)),
                releases::created_by.eq(by.account_id),
                releases::created_at.eq(now_naive),
                releases::updated_at.eq(now_naive),
            ))
            .returning(releases::id)
            .get_result(conn)?;
        open_revision(conn, id, 1)?;
        record_change(conn, id, 1, by, ReleaseChange::Planned)?;
        audit::record(
            conn,
            &by.email,
            "release.planned",
            &subject(id),
            json!({ "kind": plan.kind, "title": title, "release_at": release_at.to_rfc3339() }),
        )?;
        Ok(id)
    })
}

fn open_revision(conn: &mut DbConnection, id: i64, revision: i32) -> Result<(), DbError> {
    diesel::insert_into(release_revisions::table)
        .values((
            release_revisions::release_id.eq(id),
            release_revisions::revision.eq(revision),
            release_revisions::created_at.eq(db::now()),
        ))
        .execute(conn)?;
    Ok(())
}

fn record_change(
    conn: &mut DbConnection,
    id: i64,
    revision: i32,
    by: &Actor,
    change: ReleaseChange,
) -> Result<(), DbError> {
    diesel::insert_into(release_changes::table)
        .values((
            release_changes::release_id.eq(id),
            release_changes::revision.eq(revision),
            release_changes::changed_by.eq(by.account_id),
            release_changes::changed_at.eq(db::now()),
            release_changes::change.eq(change),
        ))
        .execute(conn)?;
    Ok(())
}

/// Runs one change to a release that is not yet public or cancelled, in one transaction under
/// the release's lock: the work, then the change recorded against the current revision (a new
/// one if the current one was approved), then the audit entry.
pub(crate) fn revise<T>(
    conn: &mut DbConnection,
    id: i64,
    by: &Actor,
    change: ReleaseChange,
    work: impl FnOnce(&mut DbConnection, &Release) -> Result<(T, serde_json::Value), ReleaseError>,
) -> Result<T, ReleaseError> {
    db::write_transaction(conn, |conn| {
        db::lock_for_transaction(conn, &subject(id))?;
        let release = open_release(conn, id)?;
        let (value, mut details) = work(conn, &release)?;
        let revision = changed(conn, &release, by, change)?;
        details["revision"] = json!(revision);
        audit::record(conn, &by.email, &change.action(), &subject(id), details)?;
        Ok(value)
    })
}

/// Records a change: a change to an approved revision opens the next one, which needs approval
/// again. Returns the revision the change belongs to.
fn changed(
    conn: &mut DbConnection,
    release: &Release,
    by: &Actor,
    change: ReleaseChange,
) -> Result<i32, DbError> {
    let revision = if release.approval.approved_at.is_some() {
        open_revision(conn, release.id, release.revision + 1)?;
        release.revision + 1
    } else {
        release.revision
    };
    diesel::update(releases::table.filter(releases::id.eq(release.id)))
        .set((
            releases::revision.eq(revision),
            releases::updated_at.eq(db::now()),
        ))
        .execute(conn)?;
    record_change(conn, release.id, revision, by, change)?;
    Ok(revision)
}

/// The release, if it may still change: not cancelled, not yet public.
pub(crate) fn open_release(conn: &mut DbConnection, id: i64) -> Result<Release, ReleaseError> {
    let release = find(conn, id)?.ok_or(ReleaseError::NotFound)?;
    if release.cancelled_at.is_some() {
        return Err(ReleaseError::Refused("The release was cancelled.".into()));
    }
    if release.published_at.is_some() {
        return Err(ReleaseError::Refused(
            "The release is already public; it can no longer change.".into(),
        ));
    }
    Ok(release)
}

/// An advisory as typed on the form or the command line.
#[derive(Debug, Clone, Default, serde::Deserialize, Serialize)]
pub struct AdvisoryForm {
    #[serde(default)]
    pub cve_id: String,
    #[serde(default)]
    pub severity: String,
    #[serde(default)]
    pub cvss_vector: String,
    #[serde(default)]
    pub summary: String,
    #[serde(default)]
    pub affected_versions: String,
    #[serde(default)]
    pub fixed_versions: String,
}

/// An advisory with every value checked.
#[derive(Debug, Clone)]
pub struct NewAdvisory {
    pub cve_id: CveId,
    pub severity: Severity,
    pub cvss_vector: Option<CvssVector>,
    pub summary: String,
    pub affected_versions: String,
    pub fixed_versions: String,
}

impl AdvisoryForm {
    /// Checks every field; on failure, one message per bad field.
    pub fn parse(&self) -> Result<NewAdvisory, FieldErrors> {
        let mut errors = FieldErrors::new();
        let cve_id = CveId::parse(&self.cve_id)
            .map_err(|e| errors.insert("cve_id".into(), e))
            .ok();
        let severity = self
            .severity
            .trim()
            .to_lowercase()
            .parse::<Severity>()
            .map_err(|_| {
                errors.insert(
                    "severity".into(),
                    "Severity is critical, high, medium or low.".into(),
                )
            })
            .ok();
        let cvss_vector = match self.cvss_vector.trim() {
            "" => None,
            text => CvssVector::parse(text)
                .map_err(|e| errors.insert("cvss_vector".into(), e))
                .ok(),
        };
        let summary = self.summary.trim();
        if summary.is_empty() || summary.chars().count() > 4000 {
            errors.insert(
                "summary".into(),
                "Give a summary of at most 4000 characters.".into(),
            );
        }
        if self.affected_versions.trim().chars().count() > 500 {
            errors.insert("affected_versions".into(), "At most 500 characters.".into());
        }
        let fixed = self.fixed_versions.trim();
        if fixed.is_empty() || fixed.chars().count() > 500 {
            errors.insert(
                "fixed_versions".into(),
                "Give the fixed versions (at most 500 characters).".into(),
            );
        }
        // Every field goes into members' mail, and onto public pages at the release time.
        errors.extend(free_text_errors([
            ("summary", "The summary", self.summary.as_str()),
            (
                "affected_versions",
                "The affected versions",
                self.affected_versions.as_str(),
            ),
            (
                "fixed_versions",
                "The fixed versions",
                self.fixed_versions.as_str(),
            ),
            ("cvss_vector", "The CVSS vector", self.cvss_vector.as_str()),
        ]));
        match (cve_id, severity) {
            (Some(cve_id), Some(severity)) if errors.is_empty() => Ok(NewAdvisory {
                cve_id,
                severity,
                cvss_vector,
                summary: summary.to_owned(),
                affected_versions: self.affected_versions.trim().to_owned(),
                fixed_versions: fixed.to_owned(),
            }),
            _ => Err(errors),
        }
    }
}

pub fn add_advisory(
    conn: &mut DbConnection,
    id: i64,
    a: &NewAdvisory,
    by: &Actor,
) -> Result<i64, ReleaseError> {
    revise(conn, id, by, ReleaseChange::AdvisoryAdded, |conn, _| {
        let advisory_id: i64 = diesel::insert_into(advisories::table)
            .values((
                advisories::release_id.eq(id),
                advisories::cve_id.eq(&a.cve_id),
                advisories::severity.eq(a.severity),
                advisories::cvss_vector.eq(a.cvss_vector.as_ref().map_or("", |v| v.as_str())),
                advisories::summary.eq(&a.summary),
                advisories::affected_versions.eq(&a.affected_versions),
                advisories::fixed_versions.eq(&a.fixed_versions),
                advisories::created_at.eq(db::now()),
            ))
            .returning(advisories::id)
            .get_result(conn)?;
        Ok((advisory_id, json!({ "cve": a.cve_id })))
    })
}

/// A patch file as uploaded, with what the uploader said about it.
#[derive(Debug, Clone)]
pub struct Upload {
    pub filename: String,
    pub bytes: Vec<u8>,
    pub release_line: String,
    /// `None`: the project's own.
    pub upstream_id: Option<i64>,
    pub is_security_fix: bool,
}

/// Stores a patch with its SHA-256. A patch said to be the project's that looks like an
/// upstream's is flagged by the upstream rule and blocks approval until someone reclassifies it.
pub fn add_patch(
    conn: &mut DbConnection,
    id: i64,
    upload: &Upload,
    by: &Actor,
) -> Result<i64, ReleaseError> {
    let analysis = patch::analyse(&upload.bytes)
        .map_err(|e| ReleaseError::invalid("file", format!("The patch was not accepted: {e}.")))?;
    let line = upload.release_line.trim();
    if line.is_empty() {
        return Err(ReleaseError::invalid(
            "release_line",
            "Name the release line the patch is for.",
        ));
    }
    revise(conn, id, by, ReleaseChange::PatchAdded, |conn, release| {
        upstream_exists(conn, "origin", upload.upstream_id)?;
        if !release.lines().iter().any(|l| l == line) {
            return Err(ReleaseError::invalid(
                "release_line",
                format!(
                    "{line} is not one of this release's lines ({}).",
                    release.lines().join(", ")
                ),
            ));
        }
        let judged = upstream::classify(conn, &analysis, upload.upstream_id)?;
        let patch_id: i64 = diesel::insert_into(patches::table)
            .values((
                patches::release_id.eq(id),
                patches::filename.eq(patch::safe_file_name(&upload.filename)),
                patches::content.eq(&upload.bytes),
                patches::sha256.eq(&analysis.sha256),
                patches::release_line.eq(line),
                patches::upstream_id.eq(upload.upstream_id),
                patches::is_security_fix.eq(upload.is_security_fix),
                patches::looks_like_upstream.eq(judged.flagged),
                patches::upstream_signals.eq(JsonList::to_json(&judged.signals)),
                patches::uploaded_by.eq(by.account_id),
                patches::created_at.eq(db::now()),
            ))
            .returning(patches::id)
            .get_result(conn)?;
        record_evidence(conn, patch_id, &analysis)?;
        upstream::patch_filed_under(conn, patch_id, upload.upstream_id)?;
        Ok((
            patch_id,
            json!({ "patch": patch_id, "sha256": analysis.sha256, "upstream": upload.upstream_id, "flagged": judged.flagged }),
        ))
    })
}

/// Keeps what an approver reads about a patch (its files with their line counts) and the
/// hashes that let the upstream rule recognise the same change filed again.
pub(crate) fn record_evidence(
    conn: &mut DbConnection,
    patch_id: i64,
    analysis: &patch::PatchAnalysis,
) -> Result<(), DbError> {
    use crate::db::schema::{patch_files, patch_hunks};
    for file in &analysis.changes {
        diesel::insert_into(patch_files::table)
            .values((
                patch_files::patch_id.eq(patch_id),
                patch_files::path.eq(&file.path),
                patch_files::added.eq(i32::try_from(file.added).unwrap_or(i32::MAX)),
                patch_files::removed.eq(i32::try_from(file.removed).unwrap_or(i32::MAX)),
            ))
            .execute(conn)?;
    }
    for hunk in &analysis.hunks {
        diesel::insert_into(patch_hunks::table)
            .values((
                patch_hunks::patch_id.eq(patch_id),
                patch_hunks::hunk_sha256.eq(hunk),
            ))
            .execute(conn)?;
    }
    Ok(())
}

/// Records the files and hunks of every patch stored before they were recorded at upload (a
/// database from an earlier version). Returns how many patches it recorded.
pub fn record_missing_evidence(conn: &mut DbConnection) -> Result<usize, DbError> {
    use crate::db::schema::patch_files;
    let missing: Vec<(i64, Vec<u8>)> = patches::table
        .filter(diesel::dsl::not(diesel::dsl::exists(
            patch_files::table.filter(patch_files::patch_id.eq(patches::id)),
        )))
        .select((patches::id, patches::content))
        .load(conn)?;
    let mut recorded = 0;
    for (id, content) in missing {
        if let Ok(analysis) = patch::analyse(&content) {
            if !analysis.changes.is_empty() {
                db::write_transaction(conn, |conn| record_evidence(conn, id, &analysis))?;
                recorded += 1;
            }
        }
    }
    Ok(recorded)
}

/// Sets a patch's origin after a person looked at it, with the reason on record.
pub fn reclassify_patch(
    conn: &mut DbConnection,
    release_id: i64,
    patch_id: i64,
    upstream_id: Option<i64>,
    reason: &str,
    by: &Actor,
) -> Result<(), ReleaseError> {
    if reason.trim().is_empty() {
        return Err(ReleaseError::invalid(
            "reason",
            "Give the reason for the classification.",
        ));
    }
    revise(
        conn,
        release_id,
        by,
        ReleaseChange::PatchReclassified,
        |conn, release| {
            use crate::db::schema::{patch_hunks, patch_reclassifications, upstreams};
            let before: Option<(Option<i64>, bool, String)> = patches::table
                .filter(patches::id.eq(patch_id))
                .filter(patches::release_id.eq(release_id))
                .select((
                    patches::upstream_id,
                    patches::looks_like_upstream,
                    patches::sha256,
                ))
                .first(conn)
                .optional()?;
            let Some((from, was_flagged, sha256)) = before else {
                return Err(ReleaseError::NotFound);
            };
            // The same change as a withheld upstream's patch elsewhere stays that upstream's.
            let to_withheld = match upstream_id {
                Some(id) => upstreams::table
                    .filter(upstreams::id.eq(id))
                    .select(upstreams::may_redistribute)
                    .first::<bool>(conn)
                    .optional()?
                    .map(|may| !may)
                    .ok_or_else(|| ReleaseError::invalid("origin", "There is no such upstream."))?,
                None => false,
            };
            if !to_withheld {
                let hunks: Vec<String> = patch_hunks::table
                    .filter(patch_hunks::patch_id.eq(patch_id))
                    .select(patch_hunks::hunk_sha256)
                    .load(conn)?;
                if let Some(sentence) =
                    upstream::duplicate_of_withheld(conn, &sha256, &hunks, Some(patch_id))?
                {
                    return Err(ReleaseError::invalid(
                        "origin",
                        format!("{sentence} It stays that upstream's."),
                    ));
                }
            }
            diesel::update(patches::table.filter(patches::id.eq(patch_id)))
                .set((
                    patches::upstream_id.eq(upstream_id),
                    patches::reclassified_reason.eq(Some(reason.trim())),
                ))
                .execute(conn)?;
            let revision = if release.approval.approved_at.is_some() {
                release.revision + 1
            } else {
                release.revision
            };
            diesel::insert_into(patch_reclassifications::table)
                .values((
                    patch_reclassifications::patch_id.eq(patch_id),
                    patch_reclassifications::from_upstream_id.eq(from),
                    patch_reclassifications::to_upstream_id.eq(upstream_id),
                    patch_reclassifications::was_flagged.eq(was_flagged),
                    patch_reclassifications::reason.eq(reason.trim()),
                    patch_reclassifications::changed_by.eq(by.account_id),
                    patch_reclassifications::changed_at.eq(db::now()),
                    patch_reclassifications::revision.eq(revision),
                ))
                .execute(conn)?;
            upstream::patch_filed_under(conn, patch_id, upstream_id)?;
            Ok((
                (),
                json!({ "patch": patch_id, "upstream": upstream_id, "reason": reason.trim() }),
            ))
        },
    )
}

/// Records why a Patch Tuesday release may carry a fix that is not a security fix.
pub fn set_exception(
    conn: &mut DbConnection,
    id: i64,
    reason: &str,
    by: &Actor,
) -> Result<(), ReleaseError> {
    // The approver reads it.
    let reason = checked_reason(reason, "Give the reason for the exception.")?;
    revise(conn, id, by, ReleaseChange::ExceptionRecorded, |conn, _| {
        diesel::update(releases::table.filter(releases::id.eq(id)))
            .set(releases::non_security_exception.eq(Some(reason)))
            .execute(conn)?;
        Ok(((), json!({ "reason": reason })))
    })
}

/// (id, alias, organisation) of the members an embargoed mailing of the release was
/// written for: the people to tell when it changes.
/// How many members have been mailed about a release: those a cancellation or postponement
/// tells.
pub fn count_members_told(conn: &mut DbConnection, id: i64) -> Result<i64, DbError> {
    Ok(outbox::table
        .filter(outbox::release_id.eq(id))
        .filter(outbox::template.eq(crate::releases::distribution::EMBARGOED))
        .select(diesel::dsl::count(outbox::member_id).aggregate_distinct())
        .get_result(conn)?)
}

fn members_told(conn: &mut DbConnection, id: i64) -> Result<Vec<(i64, String, String)>, DbError> {
    Ok(members::table
        .filter(
            members::id.eq_any(
                outbox::table
                    .filter(outbox::release_id.eq(id))
                    .filter(outbox::template.eq(crate::releases::distribution::EMBARGOED))
                    .select(outbox::member_id.assume_not_null()),
            ),
        )
        .select((members::id, members::security_alias, members::org_name))
        .load(conn)?)
}

/// Cancels a release. Members who were already mailed about it are told, so they stop
/// preparing for it; the embargo on what they received stays.
pub fn cancel(
    conn: &mut DbConnection,
    ctx: &Context,
    id: i64,
    reason: &str,
    by: &Actor,
) -> Result<(), ReleaseError> {
    let reason = checked_reason(
        reason,
        "Give the reason for cancelling; members who were told receive it.",
    )?;
    db::write_transaction(conn, |conn| {
        db::lock_for_transaction(conn, &subject(id))?;
        let release = open_release(conn, id)?;
        diesel::update(releases::table.filter(releases::id.eq(id)))
            .set((
                releases::cancelled_at.eq(Some(db::now())),
                releases::cancel_reason.eq(Some(reason)),
            ))
            .execute(conn)?;
        let told = members_told(conn, id)?;
        for (member_id, alias, org_name) in &told {
            ctx.mailer.enqueue_for_member(
                conn,
                "release_cancelled",
                alias,
                json!({ "org_name": org_name, "title": release.title, "reason": reason, "policy_url": ctx.url("/embargo-policy") }),
                crate::mail::ReleaseMail {
                    dedupe_key: format!("release:{id}:cancelled:member:{member_id}"),
                    release_id: id,
                    member_id: *member_id,
                    revision: release.revision,
                    attachments: Vec::new(),
                },
            )?;
        }
        audit::record(
            conn,
            &by.email,
            "release.cancelled",
            &subject(id),
            json!({ "reason": reason, "members_told": told.len() }),
        )?;
        Ok(())
    })
}

/// Where a postponed release goes.
#[derive(Debug, Clone, Copy)]
pub enum Postponement {
    PatchTuesday(NaiveDate),
    At(DateTime<Utc>),
}

/// Moves a release to a later time (a later Patch Tuesday, or a new time for the other
/// kinds). It is a new revision that needs approval again, and members who were already
/// mailed are told the new date at once.
pub fn postpone(
    conn: &mut DbConnection,
    ctx: &Context,
    calendar: &Calendar,
    id: i64,
    to: Postponement,
    reason: &str,
    by: &Actor,
) -> Result<(), ReleaseError> {
    let reason = checked_reason(
        reason,
        "Give the reason for postponing; members who were told receive it.",
    )?;
    revise(conn, id, by, ReleaseChange::Postponed, |conn, release| {
        let (release_at, disclosure_at) = match (release.kind, to) {
            (ReleaseKind::PatchTuesday, Postponement::PatchTuesday(day)) => {
                let pt = calendar.on(day).ok_or_else(|| {
                    ReleaseError::invalid("patch_tuesday", "That date is not a Patch Tuesday.")
                })?;
                (pt.release_at, Some(pt.early_disclosure_at))
            }
            (ReleaseKind::PatchTuesday, Postponement::At(_)) => {
                return Err(ReleaseError::invalid(
                    "patch_tuesday",
                    "Move a Patch Tuesday release to another Patch Tuesday.",
                ))
            }
            (_, Postponement::At(at)) => {
                let keep = release.release_at - release.disclosure_at.unwrap_or(release.release_at);
                let disclosure = release.disclosure_at.map(|_| at - keep);
                (at, disclosure)
            }
            (_, Postponement::PatchTuesday(_)) => {
                return Err(ReleaseError::invalid(
                    "release_at",
                    "Give the new time for this release.",
                ))
            }
        };
        if release_at.naive_utc() <= release.release_at {
            return Err(ReleaseError::invalid(
                if release.kind == ReleaseKind::PatchTuesday {
                    "patch_tuesday"
                } else {
                    "release_at"
                },
                "Postponing moves a release later; choose a later date.",
            ));
        }
        diesel::update(releases::table.filter(releases::id.eq(id)))
            .set((
                releases::release_at.eq(release_at.naive_utc()),
                releases::disclosure_at.eq(disclosure_at.map(|d| d.naive_utc())),
                releases::announce_at.eq(release
                    .announce_at
                    .and(disclosure_at.map(|d| d.naive_utc()))),
            ))
            .execute(conn)?;
        // The new revision's number: the current one, or the next if it was approved.
        let revision = if release.approval.approved_at.is_some() {
            release.revision + 1
        } else {
            release.revision
        };
        let told = members_told(conn, id)?;
        let when = crate::releases::calendar::Moment::new(release_at, ctx.timezone());
        for (member_id, alias, org_name) in &told {
            ctx.mailer.enqueue_for_member(
                conn,
                "release_postponed",
                alias,
                json!({
                    "org_name": org_name,
                    "title": release.title,
                    "reason": reason,
                    "release_at": when.machine(),
                    // For operators' templates written before `release_at|when`.
                    "release_at_utc": when.utc_text(),
                    "release_at_local": when.local_text(),
                    "policy_url": ctx.url("/embargo-policy"),
                }),
                crate::mail::ReleaseMail {
                    dedupe_key: format!("release:{id}:postponed:{revision}:member:{member_id}"),
                    release_id: id,
                    member_id: *member_id,
                    revision,
                    attachments: Vec::new(),
                },
            )?;
        }
        Ok((
            (),
            json!({ "to": release_at.to_rfc3339(), "reason": reason, "members_told": told.len() }),
        ))
    })
}

/// Records a member's receipt of one revision (from the signed link in the mailing).
pub fn acknowledge(
    conn: &mut DbConnection,
    release_id: i64,
    member_id: i64,
    revision: i32,
) -> Result<bool, DbError> {
    acknowledge_as(conn, release_id, member_id, revision, "member")
}

/// Records a member's receipt of one revision, audited with `actor` (the member's alias when
/// it acknowledges on its own page). Returns whether it was new.
pub fn acknowledge_as(
    conn: &mut DbConnection,
    release_id: i64,
    member_id: i64,
    revision: i32,
    actor: &str,
) -> Result<bool, DbError> {
    db::write_transaction(conn, |conn| {
        let exists: i64 = release_receipts::table
            .filter(release_receipts::release_id.eq(release_id))
            .filter(release_receipts::member_id.eq(member_id))
            .filter(release_receipts::revision.eq(revision))
            .count()
            .get_result(conn)?;
        if exists > 0 {
            return Ok(false);
        }
        diesel::insert_into(release_receipts::table)
            .values((
                release_receipts::release_id.eq(release_id),
                release_receipts::member_id.eq(member_id),
                release_receipts::revision.eq(revision),
                release_receipts::acknowledged_at.eq(db::now()),
            ))
            .execute(conn)?;
        audit::record(
            conn,
            actor,
            "release.receipt",
            &subject(release_id),
            json!({ "member": member_id, "revision": revision }),
        )?;
        Ok(true)
    })
}
