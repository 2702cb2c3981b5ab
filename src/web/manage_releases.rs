//! `/manage/releases`: release managers plan releases, add advisories and patches, classify
//! patches, record exceptions, approve (a second person), cancel, and follow the delivery
//! ledger per member.

use std::collections::BTreeMap;

use actix_multipart::Multipart;
use actix_web::http::StatusCode;
use actix_web::{web, HttpMessage, HttpRequest, HttpResponse};
use chrono::{NaiveDate, NaiveDateTime, TimeZone, Utc};
use futures_util::TryStreamExt;
use serde::{Deserialize, Serialize};

use crate::db;
use crate::error::AppError;
use crate::releases::feeds;
use crate::releases::patch::MAX_PATCH_BYTES;
use crate::releases::release::{self, Actor, NewAdvisory, Plan, ReleaseError};
use crate::web::auth::{CsrfForm, CsrfToken, EmptyForm, SignedIn, Viewer, CSRF_FIELD};
use crate::web::login::see_other;
use crate::web::AppState;

#[derive(Default, Serialize)]
struct PlanValues {
    kind: String,
    title: String,
    release_lines: String,
    patch_tuesday: String,
    release_at: String,
    upstream_id: String,
    notice_hours: String,
    members_may_deploy: bool,
    notes: String,
}

async fn list_page(
    state: &AppState,
    viewer: &Viewer,
    status: StatusCode,
    values: PlanValues,
    error: Option<String>,
) -> Result<HttpResponse, AppError> {
    let (releases, upstreams) = db::run(&state.pool, |c| {
        Ok::<_, db::DbError>((release::list(c)?, release::upstreams(c)?))
    })
    .await?;
    let calendar = state.settings.calendar();
    let next = calendar.next_with_lead_time(Utc::now());
    let choices: Vec<String> = next
        .map(|pt| {
            use chrono::Datelike;
            calendar
                .months_from(pt.patch_tuesday.year(), pt.patch_tuesday.month(), 6)
                .into_iter()
                .map(|p| p.patch_tuesday.to_string())
                .collect()
        })
        .unwrap_or_default();
    let context = minijinja::context! {
        releases,
        upstreams,
        patch_tuesdays => choices,
        values,
        error,
        timezone => state.settings.timezone.name(),
    };
    state
        .pages
        .page_with_status(status, viewer, "manage/releases.html", context)
}

pub async fn list(state: web::Data<AppState>, viewer: Viewer) -> Result<HttpResponse, AppError> {
    let values = PlanValues {
        kind: release::PATCH_TUESDAY.into(),
        ..PlanValues::default()
    };
    list_page(&state, &viewer, StatusCode::OK, values, None).await
}

#[derive(Debug, Deserialize)]
pub struct PlanForm {
    #[serde(default)]
    kind: String,
    #[serde(default)]
    title: String,
    #[serde(default)]
    release_lines: String,
    #[serde(default)]
    patch_tuesday: String,
    #[serde(default)]
    release_at: String,
    #[serde(default)]
    upstream_id: String,
    #[serde(default)]
    notice_hours: String,
    #[serde(default)]
    members_may_deploy: String,
    #[serde(default)]
    notes: String,
}

/// A `datetime-local` value in the list's time zone, as an instant.
fn parse_local(state: &AppState, value: &str) -> Option<chrono::DateTime<Utc>> {
    let naive = NaiveDateTime::parse_from_str(value.trim(), "%Y-%m-%dT%H:%M").ok()?;
    state
        .settings
        .timezone
        .from_local_datetime(&naive)
        .earliest()
        .map(|t| t.with_timezone(&Utc))
}

pub async fn plan(
    state: web::Data<AppState>,
    viewer: Viewer,
    SignedIn(user): SignedIn,
    CsrfForm(form): CsrfForm<PlanForm>,
) -> Result<HttpResponse, AppError> {
    let values = PlanValues {
        kind: form.kind.clone(),
        title: form.title.clone(),
        release_lines: form.release_lines.clone(),
        patch_tuesday: form.patch_tuesday.clone(),
        release_at: form.release_at.clone(),
        upstream_id: form.upstream_id.clone(),
        notice_hours: form.notice_hours.clone(),
        members_may_deploy: !form.members_may_deploy.is_empty(),
        notes: form.notes.clone(),
    };
    let mut problem = None;
    let patch_tuesday = match form.patch_tuesday.trim() {
        "" => None,
        day => NaiveDate::parse_from_str(day, "%Y-%m-%d")
            .map_err(|_| problem = Some("Choose a Patch Tuesday."))
            .ok(),
    };
    let release_at = match form.release_at.trim() {
        "" => None,
        when => parse_local(&state, when).or_else(|| {
            problem = Some("Give the time as a date and time.");
            None
        }),
    };
    let notice_hours = match form.notice_hours.trim() {
        "" => 0,
        hours => hours
            .parse::<u32>()
            .ok()
            .filter(|h| *h <= 72)
            .unwrap_or_else(|| {
                problem = Some("Give the member notice in whole hours, from 0 to 72.");
                0
            }),
    };
    if let Some(problem) = problem {
        return list_page(
            &state,
            &viewer,
            StatusCode::UNPROCESSABLE_ENTITY,
            values,
            Some(problem.into()),
        )
        .await;
    }
    let plan = Plan {
        kind: form.kind.trim().to_owned(),
        title: form.title.clone(),
        release_lines: form
            .release_lines
            .split([',', '\n'])
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(str::to_owned)
            .collect(),
        patch_tuesday,
        release_at,
        upstream_id: form.upstream_id.trim().parse().ok(),
        notice_hours,
        members_may_deploy: !form.members_may_deploy.is_empty(),
        notes: form.notes.clone(),
    };
    let calendar = state.settings.calendar();
    let by = Actor::from(&user);
    match db::run(&state.pool, move |c| {
        Ok::<_, db::DbError>(release::plan(c, &calendar, &plan, &by, Utc::now()))
    })
    .await?
    {
        Ok(id) => Ok(see_other(&format!("/manage/releases/{id}"))),
        Err(ReleaseError::Invalid(message)) => {
            list_page(
                &state,
                &viewer,
                StatusCode::UNPROCESSABLE_ENTITY,
                values,
                Some(message),
            )
            .await
        }
        Err(other) => Err(release_error(other)),
    }
}

pub fn release_error(error: ReleaseError) -> AppError {
    match error {
        ReleaseError::Invalid(message) => AppError::Conflict(message),
        ReleaseError::NotFound => AppError::NotFound,
        ReleaseError::Mail(mail) => AppError::internal(mail),
        ReleaseError::Db(db) => db.into(),
    }
}

/// One member's line in the delivery ledger.
#[derive(Debug, Serialize)]
struct LedgerRow {
    org_name: String,
    revision: String,
    status: String,
    message_id: String,
    sent_at: Option<NaiveDateTime>,
    last_error: Option<String>,
    acknowledged_at: Option<NaiveDateTime>,
}

fn ledger(conn: &mut db::DbConnection, id: i64) -> Result<Vec<LedgerRow>, db::DbError> {
    use crate::db::schema::{members, outbox, release_receipts};
    use diesel::prelude::*;
    type Row = (
        String,
        Option<String>,
        String,
        String,
        Option<NaiveDateTime>,
        Option<String>,
        i64,
    );
    let rows: Vec<Row> = outbox::table
        .inner_join(members::table)
        .filter(outbox::release_id.eq(id))
        .filter(outbox::template.eq("embargoed_release"))
        .order((members::org_name, outbox::id))
        .select((
            members::org_name,
            outbox::dedupe_key,
            outbox::status,
            outbox::message_id,
            outbox::sent_at,
            outbox::last_error,
            members::id,
        ))
        .load(conn)?;
    let receipts: Vec<(i64, i32, NaiveDateTime)> = release_receipts::table
        .filter(release_receipts::release_id.eq(id))
        .select((
            release_receipts::member_id,
            release_receipts::revision,
            release_receipts::acknowledged_at,
        ))
        .load(conn)?;
    Ok(rows
        .into_iter()
        .map(
            |(org_name, key, status, message_id, sent_at, last_error, member_id)| {
                // The dedupe key names the revision: release:ID:rev:N:member:M.
                let revision = key
                    .as_deref()
                    .and_then(|k| k.split(':').nth(3))
                    .unwrap_or("")
                    .to_owned();
                let acknowledged_at = receipts
                    .iter()
                    .find(|(m, r, _)| *m == member_id && r.to_string() == revision)
                    .map(|(_, _, at)| *at);
                LedgerRow {
                    org_name,
                    revision,
                    status,
                    message_id,
                    sent_at,
                    last_error,
                    acknowledged_at,
                }
            },
        )
        .collect())
}

#[derive(Debug, Deserialize)]
pub struct DetailQuery {
    notice: Option<String>,
}

async fn detail_page(
    state: &AppState,
    viewer: &Viewer,
    id: i64,
    status: StatusCode,
    notice: Option<&'static str>,
    error: Option<String>,
) -> Result<HttpResponse, AppError> {
    let data = db::run(&state.pool, move |c| {
        let Some(r) = release::find(c, id)? else {
            return Ok::<_, db::DbError>(None);
        };
        let advisories = release::advisories_of(c, id)?;
        let patches = release::patches_of(c, id)?;
        let blockers = release::blockers(c, &r)?;
        let upstreams = release::upstreams(c)?;
        let ledger = ledger(c, id)?;
        Ok(Some((r, advisories, patches, blockers, upstreams, ledger)))
    })
    .await?;
    let (r, advisories, patches, blockers, upstreams, ledger) = data.ok_or(AppError::NotFound)?;
    let tz = state.settings.timezone;
    let local = |t: NaiveDateTime| {
        Utc.from_utc_datetime(&t)
            .with_timezone(&tz)
            .format("%Y-%m-%d %H:%M %Z")
            .to_string()
    };
    let public = feeds::PublicRelease {
        id: r.id,
        title: r.title.clone(),
        kind: r.kind.clone(),
        release_at: Utc.from_utc_datetime(&r.release_at),
        announced_at: Utc.from_utc_datetime(&r.announce_at.unwrap_or(r.release_at)),
        published_at: None,
        release_lines: r.lines(),
        issue_count: advisories.len(),
        highest_severity: release::SEVERITIES
            .iter()
            .find(|s| advisories.iter().any(|a| a.severity == **s))
            .map(|s| (*s).to_owned()),
        advisories: Vec::new(),
        url: format!(
            "{}/releases/{}",
            state.settings.base_url.as_str().trim_end_matches('/'),
            r.id
        ),
    };
    let context = minijinja::context! {
        release => r,
        release_local => local(r.release_at),
        disclosure_local => r.disclosure_at.map(local),
        approved_current => r.approved_current(),
        advisories,
        patches,
        blockers,
        upstreams,
        ledger,
        severities => release::SEVERITIES,
        announcement => feeds::announcement_text(&public, &state.settings.project_name),
        notice,
        error,
        max_patch_mib => MAX_PATCH_BYTES / (1024 * 1024),
    };
    state
        .pages
        .page_with_status(status, viewer, "manage/release.html", context)
}

pub async fn detail(
    state: web::Data<AppState>,
    viewer: Viewer,
    id: web::Path<i64>,
    query: web::Query<DetailQuery>,
) -> Result<HttpResponse, AppError> {
    let notice = match query.notice.as_deref() {
        Some("advisory") => Some("The advisory was added."),
        Some("patch") => Some("The patch was stored with its SHA-256."),
        Some("reclassified") => Some("The patch's origin was recorded."),
        Some("exception") => Some("The exception was recorded."),
        Some("approved") => {
            Some("This revision is approved. It is mailed to members at the early-disclosure time.")
        }
        Some("cancelled") => Some("The release was cancelled; members who had been told are told."),
        Some("postponed") => Some("The release was postponed; members who had been told are told. The new revision needs approval."),
        _ => None,
    };
    detail_page(
        &state,
        &viewer,
        id.into_inner(),
        StatusCode::OK,
        notice,
        None,
    )
    .await
}

/// Runs a change; a refusal re-renders the page with the reason.
async fn change<F>(
    state: &AppState,
    viewer: &Viewer,
    id: i64,
    notice: &str,
    work: F,
) -> Result<HttpResponse, AppError>
where
    F: FnOnce(&mut db::DbConnection) -> Result<(), ReleaseError> + Send + 'static,
{
    match db::run(&state.pool, move |c| Ok::<_, db::DbError>(work(c))).await? {
        Ok(()) => {
            state.mailer.wake_workers();
            Ok(see_other(&format!("/manage/releases/{id}?notice={notice}")))
        }
        Err(ReleaseError::Invalid(message)) => {
            detail_page(state, viewer, id, StatusCode::CONFLICT, None, Some(message)).await
        }
        Err(other) => Err(release_error(other)),
    }
}

#[derive(Debug, Deserialize)]
pub struct AdvisoryForm {
    #[serde(default)]
    cve_id: String,
    #[serde(default)]
    severity: String,
    #[serde(default)]
    cvss_vector: String,
    #[serde(default)]
    summary: String,
    #[serde(default)]
    affected_versions: String,
    #[serde(default)]
    fixed_versions: String,
}

pub async fn add_advisory(
    state: web::Data<AppState>,
    viewer: Viewer,
    SignedIn(user): SignedIn,
    id: web::Path<i64>,
    CsrfForm(form): CsrfForm<AdvisoryForm>,
) -> Result<HttpResponse, AppError> {
    let id = id.into_inner();
    let advisory = NewAdvisory {
        cve_id: form.cve_id,
        severity: form.severity,
        cvss_vector: form.cvss_vector,
        summary: form.summary,
        affected_versions: form.affected_versions,
        fixed_versions: form.fixed_versions,
    };
    let by = Actor::from(&user);
    change(&state, &viewer, id, "advisory", move |c| {
        release::add_advisory(c, id, &advisory, &by)
    })
    .await
}

/// Reads an upload: the CSRF token, the form fields and one file, within the size limit.
async fn read_upload(
    req: &HttpRequest,
    mut payload: Multipart,
) -> Result<(BTreeMap<String, String>, Option<(String, Vec<u8>)>), AppError> {
    let expected = req.extensions().get::<CsrfToken>().map(|t| t.0.clone());
    let mut fields = BTreeMap::new();
    let mut file = None;
    let too_large = || {
        AppError::BadRequest(format!(
            "The upload is larger than {} MiB.",
            MAX_PATCH_BYTES / (1024 * 1024)
        ))
    };
    while let Some(mut field) = payload
        .try_next()
        .await
        .map_err(|e| AppError::BadRequest(format!("The upload could not be read: {e}")))?
    {
        let name = field.name().unwrap_or_default().to_owned();
        let filename = field
            .content_disposition()
            .and_then(|d| d.get_filename())
            .map(str::to_owned);
        let mut bytes = Vec::new();
        while let Some(chunk) = field
            .try_next()
            .await
            .map_err(|e| AppError::BadRequest(format!("The upload could not be read: {e}")))?
        {
            if bytes.len() + chunk.len() > MAX_PATCH_BYTES + 64 * 1024 {
                return Err(too_large());
            }
            bytes.extend_from_slice(&chunk);
        }
        match filename {
            Some(filename) if name == "file" => file = Some((filename, bytes)),
            _ => {
                fields.insert(name, String::from_utf8_lossy(&bytes).into_owned());
            }
        }
    }
    let sent = fields.get(CSRF_FIELD).cloned();
    match (expected, sent) {
        (Some(expected), Some(sent))
            if crate::web::auth::constant_time_eq(expected.as_bytes(), sent.as_bytes()) =>
        {
            Ok((fields, file))
        }
        _ => Err(AppError::Csrf),
    }
}

pub async fn upload_patch(
    state: web::Data<AppState>,
    viewer: Viewer,
    req: HttpRequest,
    SignedIn(user): SignedIn,
    id: web::Path<i64>,
    payload: Multipart,
) -> Result<HttpResponse, AppError> {
    let id = id.into_inner();
    let (fields, file) = read_upload(&req, payload).await?;
    let Some((filename, bytes)) = file.filter(|(_, b)| !b.is_empty()) else {
        return detail_page(
            &state,
            &viewer,
            id,
            StatusCode::UNPROCESSABLE_ENTITY,
            None,
            Some("Choose a patch file to upload.".into()),
        )
        .await;
    };
    let line = fields.get("release_line").cloned().unwrap_or_default();
    let upstream = fields.get("origin").and_then(|o| o.parse::<i64>().ok());
    let security = fields.get("security_fix").is_some_and(|v| !v.is_empty());
    let by = Actor::from(&user);
    change(&state, &viewer, id, "patch", move |c| {
        release::add_patch(c, id, &filename, &bytes, &line, upstream, security, &by).map(|_| ())
    })
    .await
}

#[derive(Debug, Deserialize)]
pub struct ReclassifyForm {
    #[serde(default)]
    origin: String,
    #[serde(default)]
    reason: String,
}

pub async fn reclassify(
    state: web::Data<AppState>,
    viewer: Viewer,
    SignedIn(user): SignedIn,
    path: web::Path<(i64, i64)>,
    CsrfForm(form): CsrfForm<ReclassifyForm>,
) -> Result<HttpResponse, AppError> {
    let (id, patch) = path.into_inner();
    let upstream = form.origin.trim().parse::<i64>().ok();
    let by = Actor::from(&user);
    change(&state, &viewer, id, "reclassified", move |c| {
        release::reclassify_patch(c, id, patch, upstream, &form.reason, &by)
    })
    .await
}

#[derive(Debug, Deserialize)]
pub struct ReasonForm {
    #[serde(default)]
    reason: String,
}

pub async fn exception(
    state: web::Data<AppState>,
    viewer: Viewer,
    SignedIn(user): SignedIn,
    id: web::Path<i64>,
    CsrfForm(form): CsrfForm<ReasonForm>,
) -> Result<HttpResponse, AppError> {
    let id = id.into_inner();
    let by = Actor::from(&user);
    change(&state, &viewer, id, "exception", move |c| {
        release::set_exception(c, id, &form.reason, &by)
    })
    .await
}

pub async fn approve(
    state: web::Data<AppState>,
    viewer: Viewer,
    SignedIn(user): SignedIn,
    id: web::Path<i64>,
    CsrfForm(_): CsrfForm<EmptyForm>,
) -> Result<HttpResponse, AppError> {
    let id = id.into_inner();
    let by = Actor::from(&user);
    change(&state, &viewer, id, "approved", move |c| {
        release::approve(c, id, &by).map(|_| ())
    })
    .await
}

pub async fn cancel(
    state: web::Data<AppState>,
    viewer: Viewer,
    SignedIn(user): SignedIn,
    id: web::Path<i64>,
    CsrfForm(form): CsrfForm<ReasonForm>,
) -> Result<HttpResponse, AppError> {
    let id = id.into_inner();
    let by = Actor::from(&user);
    let env = state.membership.clone();
    change(&state, &viewer, id, "cancelled", move |c| {
        release::cancel(c, &env, id, &form.reason, &by)
    })
    .await
}

#[derive(Debug, Deserialize)]
pub struct PostponeForm {
    #[serde(default)]
    patch_tuesday: String,
    #[serde(default)]
    release_at: String,
    #[serde(default)]
    reason: String,
}

pub async fn postpone(
    state: web::Data<AppState>,
    viewer: Viewer,
    SignedIn(user): SignedIn,
    id: web::Path<i64>,
    CsrfForm(form): CsrfForm<PostponeForm>,
) -> Result<HttpResponse, AppError> {
    let id = id.into_inner();
    let to = if let Ok(day) = NaiveDate::parse_from_str(form.patch_tuesday.trim(), "%Y-%m-%d") {
        release::Postponement::PatchTuesday(day)
    } else if let Some(at) = parse_local(&state, &form.release_at) {
        release::Postponement::At(at)
    } else {
        let message = "Choose the new Patch Tuesday, or give the new date and time.".to_owned();
        return detail_page(
            &state,
            &viewer,
            id,
            StatusCode::UNPROCESSABLE_ENTITY,
            None,
            Some(message),
        )
        .await;
    };
    let by = Actor::from(&user);
    let env = state.membership.clone();
    let calendar = state.settings.calendar();
    change(&state, &viewer, id, "postponed", move |c| {
        release::postpone(c, &env, &calendar, id, to, &form.reason, &by)
    })
    .await
}
