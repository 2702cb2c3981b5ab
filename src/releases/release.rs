//! Releases: planning by kind, advisories, patches and their origin, the two-person rule with
//! revisions, and the distribution tick that mails members, announces and publishes on time.
//! Patches of an upstream that may not be redistributed (Envoy's) are named in the mailing
//! and never attached.

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use diesel::prelude::*;
use serde::Serialize;
use serde_json::json;

use crate::audit;
use crate::db::schema::{advisories, members, outbox, patches, releases, upstreams};
use crate::db::{self, DbConnection, DbError};
use crate::mail::MailError;
use crate::membership::Env;
use crate::releases::calendar::Calendar;
use crate::releases::patch;

pub const PATCH_TUESDAY: &str = "patch-tuesday";
pub const ZERO_DAY: &str = "zero-day";
pub const THIRD_PARTY: &str = "third-party";
pub const SEVERITIES: &[&str] = &["critical", "high", "medium", "low"];

#[derive(Debug, Clone, Queryable, Selectable, Serialize)]
#[diesel(table_name = releases)]
pub struct Release {
    pub id: i64,
    pub kind: String,
    pub title: String,
    pub status: String,
    pub revision: i32,
    pub release_at: NaiveDateTime,
    pub disclosure_at: Option<NaiveDateTime>,
    pub announce_at: Option<NaiveDateTime>,
    pub upstream_id: Option<i64>,
    pub release_lines: String,
    pub members_may_deploy: bool,
    pub notes: String,
    pub created_by: i64,
    pub approved_by: Option<i64>,
    pub approved_at: Option<NaiveDateTime>,
    pub disclosed_at: Option<NaiveDateTime>,
    pub announced_at: Option<NaiveDateTime>,
    pub published_at: Option<NaiveDateTime>,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
    pub approved_revision: Option<i32>,
    pub notice_hours: i32,
    pub non_security_exception: Option<String>,
    pub cancelled_at: Option<NaiveDateTime>,
    pub cancel_reason: Option<String>,
}

impl Release {
    /// Approved as it stands now: a change after approval makes a revision that is not.
    pub fn approved_current(&self) -> bool {
        self.approved_revision == Some(self.revision) && self.cancelled_at.is_none()
    }

    pub fn lines(&self) -> Vec<String> {
        self.release_lines
            .split([',', '\n'])
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(str::to_owned)
            .collect()
    }
}

#[derive(Debug, Clone, Queryable, Selectable, Serialize)]
#[diesel(table_name = advisories)]
pub struct Advisory {
    pub id: i64,
    pub release_id: i64,
    pub cve_id: String,
    pub severity: String,
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
    pub upstream_signals: String,
}

impl Patch {
    /// Flagged as looking like Envoy's while filed under another origin, and not yet
    /// classified by a person.
    pub fn blocks(&self) -> bool {
        self.looks_like_upstream && self.reclassified_reason.is_none()
    }
}

#[derive(Debug, Clone, Queryable, Selectable, Serialize)]
#[diesel(table_name = upstreams)]
pub struct Upstream {
    pub id: i64,
    pub slug: String,
    pub name: String,
    pub policy_url: String,
    pub may_redistribute: bool,
    pub created_at: NaiveDateTime,
}

#[derive(Debug, thiserror::Error)]
pub enum ReleaseError {
    #[error("{0}")]
    Invalid(String),
    #[error("not found")]
    NotFound,
    #[error(transparent)]
    Mail(#[from] MailError),
    #[error(transparent)]
    Db(#[from] DbError),
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

/// What a release manager asks for.
#[derive(Debug, Clone, Default)]
pub struct Plan {
    pub kind: String,
    pub title: String,
    pub release_lines: Vec<String>,
    /// A Patch Tuesday other than the next one with its full lead time.
    pub patch_tuesday: Option<NaiveDate>,
    /// For a 0-day: when it ships (default now); for a third-party release: the embargo lift.
    pub release_at: Option<DateTime<Utc>>,
    pub upstream_id: Option<i64>,
    pub notice_hours: u32,
    pub members_may_deploy: bool,
    pub notes: String,
}

fn subject(id: i64) -> String {
    format!("release:{id}")
}

pub fn upstreams(conn: &mut DbConnection) -> Result<Vec<Upstream>, DbError> {
    Ok(upstreams::table
        .order(upstreams::name)
        .select(Upstream::as_select())
        .load(conn)?)
}

/// Adds an upstream whose embargoed fixes a release may carry. Envoy is built in.
pub fn add_upstream(
    conn: &mut DbConnection,
    name: &str,
    policy_url: &str,
    may_redistribute: bool,
    by: &Actor,
) -> Result<i64, ReleaseError> {
    let name = name.trim();
    let slug: String = name
        .to_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect::<String>()
        .trim_matches('-')
        .to_owned();
    if slug.is_empty() || name.chars().count() > 100 {
        return Err(ReleaseError::Invalid(
            "Give the upstream's name (at most 100 characters).".into(),
        ));
    }
    let url_ok = url::Url::parse(policy_url.trim())
        .is_ok_and(|u| u.scheme() == "https" && u.host_str().is_some());
    if !url_ok {
        return Err(ReleaseError::Invalid(
            "Give the upstream's security policy as an https:// address.".into(),
        ));
    }
    db::write_transaction(conn, |conn| {
        let taken: i64 = upstreams::table
            .filter(upstreams::slug.eq(&slug))
            .count()
            .get_result(conn)?;
        if taken > 0 {
            return Err(ReleaseError::Invalid(format!(
                "An upstream named {name} already exists."
            )));
        }
        diesel::insert_into(upstreams::table)
            .values((
                upstreams::slug.eq(&slug),
                upstreams::name.eq(name),
                upstreams::policy_url.eq(policy_url.trim()),
                upstreams::may_redistribute.eq(may_redistribute),
                upstreams::created_at.eq(db::now()),
            ))
            .execute(conn)?;
        let id: i64 = upstreams::table
            .filter(upstreams::slug.eq(&slug))
            .select(upstreams::id)
            .first(conn)?;
        audit::record(
            conn,
            &by.email,
            "upstream.added",
            &format!("upstream:{id}"),
            json!({ "name": name, "policy_url": policy_url.trim(), "may_redistribute": may_redistribute }),
        )?;
        Ok(id)
    })
}

pub fn find(conn: &mut DbConnection, id: i64) -> Result<Option<Release>, DbError> {
    Ok(releases::table
        .filter(releases::id.eq(id))
        .select(Release::as_select())
        .first(conn)
        .optional()?)
}

pub fn list(conn: &mut DbConnection) -> Result<Vec<Release>, DbError> {
    Ok(releases::table
        .order(releases::release_at.desc())
        .select(Release::as_select())
        .load(conn)?)
}

pub fn advisories_of(conn: &mut DbConnection, id: i64) -> Result<Vec<Advisory>, DbError> {
    Ok(advisories::table
        .filter(advisories::release_id.eq(id))
        .order(advisories::id)
        .select(Advisory::as_select())
        .load(conn)?)
}

pub fn patches_of(conn: &mut DbConnection, id: i64) -> Result<Vec<Patch>, DbError> {
    Ok(patches::table
        .filter(patches::release_id.eq(id))
        .order(patches::id)
        .select(Patch::as_select())
        .load(conn)?)
}

/// Computes the moments of a planned release, checks them, and stores it.
pub fn plan(
    conn: &mut DbConnection,
    calendar: &Calendar,
    plan: &Plan,
    by: &Actor,
    now: DateTime<Utc>,
) -> Result<i64, ReleaseError> {
    let invalid = |m: &str| Err(ReleaseError::Invalid(m.to_owned()));
    let title = plan.title.trim();
    if title.is_empty() || title.chars().count() > 200 {
        return invalid("Give the release a title of at most 200 characters.");
    }
    if plan.release_lines.is_empty() {
        return invalid("Name at least one release line, e.g. 1.9.5.");
    }
    let lead = chrono::Duration::days(i64::from(calendar.lead_days));
    let (release_at, disclosure_at, announce_at) = match plan.kind.as_str() {
        PATCH_TUESDAY => {
            let chosen = match plan.patch_tuesday {
                Some(day) => {
                    use chrono::Datelike;
                    let pt = calendar
                        .month(day.year(), day.month())
                        .filter(|pt| pt.patch_tuesday == day);
                    match pt {
                        Some(pt) => pt,
                        None => return invalid(
                            "That date is not a Patch Tuesday (the second Tuesday of its month).",
                        ),
                    }
                }
                None => match calendar.next_with_lead_time(now) {
                    Some(pt) => pt,
                    None => return invalid("No Patch Tuesday could be found."),
                },
            };
            if chosen.early_disclosure_at <= now {
                return invalid("That Patch Tuesday's early-disclosure date has passed; choose a later one, or plan a 0-day release.");
            }
            (
                chosen.release_at,
                Some(chosen.early_disclosure_at),
                Some(chosen.early_disclosure_at),
            )
        }
        ZERO_DAY => {
            let release_at = plan.release_at.unwrap_or(now);
            let notice = (plan.notice_hours > 0).then(|| {
                release_at - chrono::Duration::hours(i64::from(plan.notice_hours.min(72)))
            });
            (release_at, notice, None)
        }
        THIRD_PARTY => {
            let Some(lift) = plan.release_at else {
                return invalid("Give the time the upstream's embargo lifts.");
            };
            if lift <= now {
                return invalid("The embargo lift time has already passed.");
            }
            if plan.upstream_id.is_none() {
                return invalid("Choose the upstream whose embargo this release follows.");
            }
            let disclosure = (lift - lead).max(now);
            (lift, Some(disclosure), Some(disclosure))
        }
        _ => return invalid("Choose patch-tuesday, zero-day or third-party."),
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
        let now_naive = db::now();
        diesel::insert_into(releases::table)
            .values((
                releases::kind.eq(&plan.kind),
                releases::title.eq(title),
                releases::status.eq("planned"),
                releases::revision.eq(1),
                releases::release_at.eq(release_at.naive_utc()),
                releases::disclosure_at.eq(disclosure_at.map(|t| t.naive_utc())),
                releases::announce_at.eq(announce_at.map(|t| t.naive_utc())),
                releases::upstream_id.eq(plan.upstream_id),
                releases::release_lines.eq(plan.release_lines.join(", ")),
                releases::members_may_deploy.eq(plan.members_may_deploy),
                releases::notes.eq(plan.notes.trim()),
                releases::notice_hours.eq(i32::try_from(plan.notice_hours.min(72)).unwrap_or(0)),
                releases::created_by.eq(by.account_id),
                releases::created_at.eq(now_naive),
                releases::updated_at.eq(now_naive),
            ))
            .execute(conn)?;
        let id: i64 = releases::table
            .filter(releases::created_by.eq(by.account_id))
            .order(releases::id.desc())
            .select(releases::id)
            .first(conn)?;
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

/// Runs one change to a release that is not yet public or cancelled, in one transaction: the
/// work, then a new revision if the current one was approved, then the audit entry. The entry
/// records the revision it produced, which is what the two-person rule reads to tell who
/// changed a revision.
fn revise<T>(
    conn: &mut DbConnection,
    id: i64,
    by: &Actor,
    action: &str,
    work: impl FnOnce(&mut DbConnection, &Release) -> Result<(T, serde_json::Value), ReleaseError>,
) -> Result<T, ReleaseError> {
    db::write_transaction(conn, |conn| {
        let release = open_release(conn, id)?;
        let (value, mut details) = work(conn, &release)?;
        details["revision"] = json!(changed(conn, &release)?);
        audit::record(conn, &by.email, action, &subject(id), details)?;
        Ok(value)
    })
}

/// A change to an approved release makes a new revision that needs approval again.
fn changed(conn: &mut DbConnection, release: &Release) -> Result<i32, DbError> {
    let revision = if release.approved_revision == Some(release.revision) {
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
    Ok(revision)
}

fn open_release(conn: &mut DbConnection, id: i64) -> Result<Release, ReleaseError> {
    let release = find(conn, id)?.ok_or(ReleaseError::NotFound)?;
    if release.cancelled_at.is_some() {
        return Err(ReleaseError::Invalid("The release was cancelled.".into()));
    }
    if release.published_at.is_some() {
        return Err(ReleaseError::Invalid(
            "The release is already public; it can no longer change.".into(),
        ));
    }
    Ok(release)
}

/// An advisory as typed.
#[derive(Debug, Clone, Default)]
pub struct NewAdvisory {
    pub cve_id: String,
    pub severity: String,
    pub cvss_vector: String,
    pub summary: String,
    pub affected_versions: String,
    pub fixed_versions: String,
}

pub fn add_advisory(
    conn: &mut DbConnection,
    id: i64,
    a: &NewAdvisory,
    by: &Actor,
) -> Result<(), ReleaseError> {
    let cve = a.cve_id.trim().to_uppercase();
    let cve_ok = cve
        .strip_prefix("CVE-")
        .and_then(|rest| rest.split_once('-'))
        .is_some_and(|(year, number)| {
            year.len() == 4
                && year.chars().all(|c| c.is_ascii_digit())
                && number.len() >= 4
                && number.chars().all(|c| c.is_ascii_digit())
        });
    if !cve_ok {
        return Err(ReleaseError::Invalid(
            "Give the CVE id as CVE-YYYY-NNNN.".into(),
        ));
    }
    let severity = a.severity.trim().to_lowercase();
    if !SEVERITIES.contains(&severity.as_str()) {
        return Err(ReleaseError::Invalid(
            "Severity is critical, high, medium or low.".into(),
        ));
    }
    if a.summary.trim().is_empty() || a.fixed_versions.trim().is_empty() {
        return Err(ReleaseError::Invalid(
            "Give a summary and the fixed versions.".into(),
        ));
    }
    revise(conn, id, by, "release.advisory-added", |conn, _| {
        diesel::insert_into(advisories::table)
            .values((
                advisories::release_id.eq(id),
                advisories::cve_id.eq(&cve),
                advisories::severity.eq(&severity),
                advisories::cvss_vector.eq(a.cvss_vector.trim()),
                advisories::summary.eq(a.summary.trim()),
                advisories::affected_versions.eq(a.affected_versions.trim()),
                advisories::fixed_versions.eq(a.fixed_versions.trim()),
                advisories::created_at.eq(db::now()),
            ))
            .execute(conn)?;
        Ok(((), json!({ "cve": cve })))
    })
}

/// Stores a patch with its SHA-256. A patch said to be the project's that looks like an
/// upstream's is flagged and blocks approval until someone reclassifies it.
#[allow(
    clippy::too_many_arguments,
    reason = "each value is a field of the upload form"
)]
pub fn add_patch(
    conn: &mut DbConnection,
    id: i64,
    filename: &str,
    bytes: &[u8],
    release_line: &str,
    upstream_id: Option<i64>,
    is_security_fix: bool,
    by: &Actor,
) -> Result<i64, ReleaseError> {
    let analysis = patch::analyse(bytes)
        .map_err(|e| ReleaseError::Invalid(format!("The patch was not accepted: {e}.")))?;
    let line = release_line.trim();
    if line.is_empty() {
        return Err(ReleaseError::Invalid(
            "Name the release line the patch is for.".into(),
        ));
    }
    revise(conn, id, by, "release.patch-added", |conn, release| {
        // Looks like Envoy's but is not filed as Envoy's (as the project's, or as another
        // upstream's that may be redistributed): flagged until a person decides.
        let envoy: Option<i64> = upstreams::table
            .filter(upstreams::slug.eq("envoy"))
            .select(upstreams::id)
            .first(conn)
            .optional()?;
        let flagged = analysis.looks_like_envoy() && (envoy.is_none() || upstream_id != envoy);
        if !release.lines().iter().any(|l| l == line) {
            return Err(ReleaseError::Invalid(format!(
                "{line} is not one of this release's lines ({}).",
                release.lines().join(", ")
            )));
        }
        diesel::insert_into(patches::table)
            .values((
                patches::release_id.eq(id),
                patches::filename.eq(patch::safe_file_name(filename)),
                patches::content.eq(bytes),
                patches::sha256.eq(&analysis.sha256),
                patches::release_line.eq(line),
                patches::upstream_id.eq(upstream_id),
                patches::is_security_fix.eq(is_security_fix),
                patches::looks_like_upstream.eq(flagged),
                patches::upstream_signals.eq(analysis.envoy_signals.join("\n")),
                patches::uploaded_by.eq(by.account_id),
                patches::created_at.eq(db::now()),
            ))
            .execute(conn)?;
        let patch_id: i64 = patches::table
            .filter(patches::release_id.eq(id))
            .order(patches::id.desc())
            .select(patches::id)
            .first(conn)?;
        Ok((
            patch_id,
            json!({ "patch": patch_id, "sha256": analysis.sha256, "upstream": upstream_id, "flagged": flagged }),
        ))
    })
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
        return Err(ReleaseError::Invalid(
            "Give the reason for the classification.".into(),
        ));
    }
    revise(
        conn,
        release_id,
        by,
        "release.patch-reclassified",
        |conn, _| {
            let updated = diesel::update(
                patches::table
                    .filter(patches::id.eq(patch_id))
                    .filter(patches::release_id.eq(release_id)),
            )
            .set((
                patches::upstream_id.eq(upstream_id),
                patches::reclassified_reason.eq(Some(reason.trim())),
            ))
            .execute(conn)?;
            if updated == 0 {
                return Err(ReleaseError::NotFound);
            }
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
    if reason.trim().is_empty() {
        return Err(ReleaseError::Invalid(
            "Give the reason for the exception.".into(),
        ));
    }
    revise(conn, id, by, "release.exception-recorded", |conn, _| {
        diesel::update(releases::table.filter(releases::id.eq(id)))
            .set(releases::non_security_exception.eq(Some(reason.trim())))
            .execute(conn)?;
        Ok(((), json!({ "reason": reason.trim() })))
    })
}

/// What stops a release from being approved, as sentences a release manager can act on.
pub fn blockers(conn: &mut DbConnection, release: &Release) -> Result<Vec<String>, DbError> {
    let mut out = Vec::new();
    let patches = patches_of(conn, release.id)?;
    for p in patches.iter().filter(|p| p.blocks()) {
        out.push(format!(
            "{} is not filed as Envoy's but looks like an upstream's. {} Set its origin, with a reason.",
            p.filename,
            p.upstream_signals.lines().next().unwrap_or("see the patch")
        ));
    }
    if release.kind == PATCH_TUESDAY && release.non_security_exception.is_none() {
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

/// Whether `email` made any change that produced or shaped the current revision: the two-person
/// rule means the approver looked at work someone else did.
fn changed_this_revision(
    conn: &mut DbConnection,
    release: &Release,
    email: &str,
) -> Result<bool, DbError> {
    use crate::db::schema::audit_log;
    const CHANGES: &[&str] = &[
        "release.advisory-added",
        "release.patch-added",
        "release.patch-reclassified",
        "release.exception-recorded",
        "release.postponed",
    ];
    let details: Vec<String> = audit_log::table
        .filter(audit_log::subject.eq(subject(release.id)))
        .filter(audit_log::actor.eq(email))
        .filter(audit_log::action.eq_any(CHANGES))
        .select(audit_log::details)
        .load(conn)?;
    Ok(details.iter().any(|d| {
        serde_json::from_str::<serde_json::Value>(d)
            .ok()
            .and_then(|v| v.get("revision").and_then(serde_json::Value::as_i64))
            == Some(i64::from(release.revision))
    }))
}

/// A second person approves the current revision (two-person rule).
pub fn approve(conn: &mut DbConnection, id: i64, by: &Actor) -> Result<i32, ReleaseError> {
    db::write_transaction(conn, |conn| {
        let release = open_release(conn, id)?;
        if release.created_by == by.account_id {
            return Err(ReleaseError::Invalid("The person who planned a release cannot approve it; a second release manager must.".into()));
        }
        if release.approved_current() {
            return Err(ReleaseError::Invalid(format!(
                "Revision {} is already approved.",
                release.revision
            )));
        }
        if changed_this_revision(conn, &release, &by.email)? {
            return Err(ReleaseError::Invalid(
                "You changed this revision (a patch, its origin, an advisory or an exception); a release manager who did not change it must approve it.".into(),
            ));
        }
        let blocking = blockers(conn, &release)?;
        if !blocking.is_empty() {
            return Err(ReleaseError::Invalid(blocking.join(" ")));
        }
        diesel::update(releases::table.filter(releases::id.eq(id)))
            .set((
                releases::approved_revision.eq(Some(release.revision)),
                releases::approved_by.eq(Some(by.account_id)),
                releases::approved_at.eq(Some(db::now())),
                releases::status.eq("approved"),
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

/// (id, alias, organisation) of the members an embargoed mailing of the release was
/// written for: the people to tell when it changes.
fn members_told(conn: &mut DbConnection, id: i64) -> Result<Vec<(i64, String, String)>, DbError> {
    Ok(members::table
        .filter(
            members::id.eq_any(
                outbox::table
                    .filter(outbox::release_id.eq(id))
                    .filter(outbox::template.eq("embargoed_release"))
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
    env: &Env,
    id: i64,
    reason: &str,
    by: &Actor,
) -> Result<(), ReleaseError> {
    if reason.trim().is_empty() {
        return Err(ReleaseError::Invalid(
            "Give the reason for cancelling; members who were told receive it.".into(),
        ));
    }
    db::write_transaction(conn, |conn| {
        let release = open_release(conn, id)?;
        diesel::update(releases::table.filter(releases::id.eq(id)))
            .set((
                releases::cancelled_at.eq(Some(db::now())),
                releases::cancel_reason.eq(Some(reason.trim())),
                releases::status.eq("cancelled"),
            ))
            .execute(conn)?;
        let told = members_told(conn, id)?;
        for (member_id, alias, org_name) in &told {
            env.mailer.enqueue_for_member(
                conn,
                "release_cancelled",
                alias,
                json!({ "org_name": org_name, "title": release.title, "reason": reason.trim(), "policy_url": env.url("/embargo-policy") }),
                format!("release:{id}:cancelled:member:{member_id}"),
                id,
                *member_id,
                Vec::new(),
            )?;
        }
        audit::record(
            conn,
            &by.email,
            "release.cancelled",
            &subject(id),
            json!({ "reason": reason.trim(), "members_told": told.len() }),
        )?;
        Ok(())
    })
}

/// Records a member's receipt of one revision (from the signed link in the mailing).
pub fn acknowledge(
    conn: &mut DbConnection,
    release_id: i64,
    member_id: i64,
    revision: i32,
) -> Result<bool, DbError> {
    use crate::db::schema::release_receipts;
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
            "member",
            "release.receipt",
            &subject(release_id),
            json!({ "member": member_id, "revision": revision }),
        )?;
        Ok(true)
    })
}

/// The (release, member, revision) a receipt link names, if its signature holds.
pub fn verify_ack(env: &Env, token: &str) -> Option<(i64, i64, i32)> {
    let payload = crate::membership::members::verify_link(&env.link_key, token)?;
    let mut parts = payload.strip_prefix("ack.")?.split('.');
    let release = parts.next()?.parse().ok()?;
    let member = parts.next()?.parse().ok()?;
    let revision = parts.next()?.parse().ok()?;
    parts
        .next()
        .is_none()
        .then_some((release, member, revision))
}

/// What one distribution tick did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Tick {
    pub mailed: usize,
    pub announced: usize,
    pub published: usize,
    pub alerts: usize,
}

/// Tells every release manager about each embargoed message that failed for good, once per
/// message, so someone reaches that member another way before the release.
fn alert_failures(conn: &mut DbConnection, env: &Env) -> Result<usize, ReleaseError> {
    use crate::accounts::{self, Role};
    let failed: Vec<(i64, i64, Option<String>, String, String)> = outbox::table
        .inner_join(releases::table)
        .inner_join(members::table)
        .filter(outbox::status.eq(crate::mail::outbox::FAILED))
        .filter(outbox::template.eq("embargoed_release"))
        // Mail held back on purpose (a cancelled or public release) is not a failure to report.
        .filter(outbox::last_error.not_like(format!("{}%", super::HELD_BACK)))
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
            let done = env.mailer.enqueue(
                conn,
                "delivery_failed",
                &manager.email,
                json!({
                    "manager_name": manager.name,
                    "title": title,
                    "org_name": org_name,
                    "reason": reason.clone().unwrap_or_default(),
                    "release_url": env.url(&format!("/manage/releases/{release_id}")),
                }),
                Some(format!("alert:{row}:{}", manager.id)),
            )?;
            queued += usize::from(done.is_some());
        }
    }
    Ok(queued)
}

/// Moves a release to a later time (a later Patch Tuesday, or a new time for the other
/// kinds). It is a new revision that needs approval again, and members who were already
/// mailed are told the new date at once.
pub fn postpone(
    conn: &mut DbConnection,
    env: &Env,
    calendar: &Calendar,
    id: i64,
    to: Postponement,
    reason: &str,
    by: &Actor,
) -> Result<(), ReleaseError> {
    if reason.trim().is_empty() {
        return Err(ReleaseError::Invalid(
            "Give the reason for postponing; members who were told receive it.".into(),
        ));
    }
    db::write_transaction(conn, |conn| {
        let release = open_release(conn, id)?;
        let (release_at, disclosure_at) = match (release.kind.as_str(), to) {
            (PATCH_TUESDAY, Postponement::PatchTuesday(day)) => {
                use chrono::Datelike;
                let pt = calendar
                    .month(day.year(), day.month())
                    .filter(|pt| pt.patch_tuesday == day)
                    .ok_or_else(|| {
                        ReleaseError::Invalid("That date is not a Patch Tuesday.".into())
                    })?;
                (pt.release_at, Some(pt.early_disclosure_at))
            }
            (PATCH_TUESDAY, Postponement::At(_)) => {
                return Err(ReleaseError::Invalid(
                    "Move a Patch Tuesday release to another Patch Tuesday.".into(),
                ))
            }
            (_, Postponement::At(at)) => {
                let keep = release.release_at - release.disclosure_at.unwrap_or(release.release_at);
                let disclosure = release.disclosure_at.map(|_| at - keep);
                (
                    at,
                    disclosure
                        .map(|d| DateTime::<Utc>::from_naive_utc_and_offset(d.naive_utc(), Utc)),
                )
            }
            (_, Postponement::PatchTuesday(_)) => {
                return Err(ReleaseError::Invalid(
                    "Give the new time for this release.".into(),
                ))
            }
        };
        if release_at.naive_utc() <= release.release_at {
            return Err(ReleaseError::Invalid(
                "Postponing moves a release later; choose a later date.".into(),
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
        let revision = changed(conn, &release)?;
        let told = members_told(conn, id)?;
        let local = release_at.with_timezone(&env.timezone);
        for (member_id, alias, org_name) in &told {
            env.mailer.enqueue_for_member(
                conn,
                "release_postponed",
                alias,
                json!({
                    "org_name": org_name,
                    "title": release.title,
                    "reason": reason.trim(),
                    "release_at_utc": release_at.format("%Y-%m-%d %H:%M UTC").to_string(),
                    "release_at_local": local.format("%Y-%m-%d %H:%M %Z").to_string(),
                    "policy_url": env.url("/embargo-policy"),
                }),
                format!("release:{id}:postponed:{revision}:member:{member_id}"),
                id,
                *member_id,
                Vec::new(),
            )?;
        }
        audit::record(
            conn,
            &by.email,
            "release.postponed",
            &subject(id),
            json!({ "to": release_at.to_rfc3339(), "reason": reason.trim(), "revision": revision, "members_told": told.len() }),
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
    env: &Env,
    now: DateTime<Utc>,
) -> Result<Tick, ReleaseError> {
    let mut tick = Tick::default();
    let now_naive = now.naive_utc();
    let due: Vec<i64> = releases::table
        .filter(releases::cancelled_at.is_null())
        .filter(releases::published_at.is_null())
        .select(releases::id)
        .load(conn)?;
    tick.alerts = db::write_transaction(conn, |conn| alert_failures(conn, env))?;
    for id in due {
        // Each release in its own transaction, its state read again under a lock: a cancel
        // or a change committed since the list was read is seen, and two processes ticking
        // at once do not both act. One release's failure does not stop the others.
        let result = db::write_transaction(conn, |conn| {
            db::lock_for_transaction(conn, &format!("release:{id}"))?;
            let Some(release) = find(conn, id)? else {
                return Ok(());
            };
            if !release.approved_current() || release.published_at.is_some() {
                return Ok(());
            }
            if now_naive < release.release_at
                && release.disclosure_at.is_some_and(|d| d <= now_naive)
            {
                tick.mailed += mail_members(conn, env, &release, now)?;
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
                    .set((
                        releases::published_at.eq(Some(now_naive)),
                        releases::status.eq("published"),
                    ))
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
        });
        if let Err(error) = result {
            tracing::error!(release = id, %error, "Distributing a release failed; the others go on.");
        }
    }
    Ok(tick)
}

/// One embargoed mail per eligible member (active, on the current policy version) for the
/// release's current revision, all in the caller's transaction.
fn mail_members(
    conn: &mut DbConnection,
    env: &Env,
    release: &Release,
    now: DateTime<Utc>,
) -> Result<usize, ReleaseError> {
    let eligible: Vec<(i64, String, String)> = members::table
        .filter(members::status.eq(crate::membership::members::ACTIVE))
        .filter(members::policy_version.ge(env.policy.version))
        .order(members::id)
        .select((members::id, members::security_alias, members::org_name))
        .load(conn)?;
    let advisories = advisories_of(conn, release.id)?;
    let all_upstreams = upstreams(conn)?;
    let patches = patches_of(conn, release.id)?;
    let mut attach = Vec::new();
    let mut attached = Vec::new();
    let mut withheld: Vec<(String, String, usize)> = Vec::new();
    for p in &patches {
        match p
            .upstream_id
            .and_then(|u| all_upstreams.iter().find(|x| x.id == u))
        {
            Some(upstream) if !upstream.may_redistribute => {
                match withheld
                    .iter_mut()
                    .find(|(name, _, _)| *name == upstream.name)
                {
                    Some(entry) => entry.2 += 1,
                    None => withheld.push((upstream.name.clone(), upstream.policy_url.clone(), 1)),
                }
            }
            _ => {
                attach.push(p.id);
                attached.push(json!({ "filename": p.filename, "sha256": p.sha256, "release_line": p.release_line }));
            }
        }
    }
    let release_at = DateTime::<Utc>::from_naive_utc_and_offset(release.release_at, Utc);
    let local = release_at.with_timezone(&env.timezone);
    let notice = release_at - now;
    let full_lead =
        notice >= chrono::Duration::days(i64::from(env.lead_days)) - chrono::Duration::hours(1);
    // Members mailed about an earlier revision get this one marked as revised.
    let mailed_before: std::collections::HashSet<i64> = outbox::table
        .filter(outbox::release_id.eq(release.id))
        .filter(outbox::template.eq("embargoed_release"))
        .select(outbox::member_id.assume_not_null())
        .load::<i64>(conn)?
        .into_iter()
        .collect();
    let mut sent = 0;
    for (member_id, alias, org_name) in eligible {
        let context = json!({
            "org_name": org_name,
            "title": release.title,
            "kind": release.kind,
            "revision": release.revision,
            "revised": mailed_before.contains(&member_id),
            "release_at_utc": release_at.format("%Y-%m-%d %H:%M UTC").to_string(),
            "release_at_local": local.format("%Y-%m-%d %H:%M %Z").to_string(),
            "timezone": env.timezone.name(),
            "notice": notice_text(notice),
            "short_notice": !full_lead,
            "release_lines": release.lines(),
            "advisories": advisories,
            "members_may_deploy": release.members_may_deploy,
            "patches": attached,
            "withheld": withheld.iter().map(|(name, url, count)| json!({ "name": name, "policy_url": url, "count": count })).collect::<Vec<_>>(),
            "policy_url": env.url("/embargo-policy"),
            "report_to": env.report_to,
            "ack_url": env.url(&format!("/releases/ack/{}", ack_token(env, release.id, member_id, release.revision))),
            "notes": release.notes,
        });
        let queued = env.mailer.enqueue_for_member(
            conn,
            "embargoed_release",
            &alias,
            context,
            format!(
                "release:{}:rev:{}:member:{member_id}",
                release.id, release.revision
            ),
            release.id,
            member_id,
            attach.clone(),
        )?;
        sent += usize::from(queued.is_some());
    }
    if sent > 0 {
        if release.disclosed_at.is_none() {
            diesel::update(releases::table.filter(releases::id.eq(release.id)))
                .set(releases::disclosed_at.eq(Some(now.naive_utc())))
                .execute(conn)?;
        }
        audit::record(
            conn,
            "edl",
            "release.disclosed",
            &subject(release.id),
            json!({ "revision": release.revision, "members": sent, "attached": attach.len(), "withheld": withheld.len() }),
        )?;
    }
    Ok(sent)
}

/// A signed receipt link for one member and one revision.
pub fn ack_token(env: &Env, release_id: i64, member_id: i64, revision: i32) -> String {
    crate::membership::members::sign_link(
        &env.link_key,
        &format!("ack.{release_id}.{member_id}.{revision}"),
    )
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
