//! `/manage/releases`: release managers plan releases, add advisories and patches, classify
//! patches, record exceptions, approve (a second person), postpone, cancel, and follow the
//! delivery ledger per member. Every form goes through `web::form::act`: a refusal shows the
//! page again with what was typed and a message beside each bad field.

use std::collections::BTreeMap;

use actix_multipart::Multipart;
use actix_web::http::StatusCode;
use actix_web::{web, HttpMessage, HttpRequest, HttpResponse};
use chrono::{NaiveDate, NaiveDateTime, TimeZone, Utc};
use futures_util::TryStreamExt;
use serde::{Deserialize, Serialize};

use crate::db;
use crate::domain::{ReleaseKind, Severity};
use crate::error::{AppError, FieldErrors, Refusal};
use crate::releases::patch::MAX_PATCH_BYTES;
use crate::releases::release::{
    self, Actor, AdvisoryForm, Plan, Postponement, Release, ReleaseError, Upload,
};
use crate::releases::{approval, distribution, feeds, upstream, visibility};
use crate::web::auth::{CsrfForm, CsrfToken, EmptyForm, SignedIn, Viewer, CSRF_FIELD};
use crate::web::confirm;
use crate::web::form::act;
use crate::web::AppState;

/// The plan form as typed; every field kept as text so a refusal shows it again exactly.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
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

async fn list_page(
    state: &AppState,
    viewer: &Viewer,
    status: StatusCode,
    values: PlanForm,
    refusal: Option<Refusal>,
) -> Result<HttpResponse, AppError> {
    let (releases, upstreams) = db::run(&state.pool, |c| {
        Ok::<_, db::DbError>((release::list(c)?, upstream::list(c)?))
    })
    .await?;
    let releases: Vec<(Release, &'static str)> = releases
        .into_iter()
        .map(|r| {
            let state = r.state().label();
            (r, state)
        })
        .collect();
    let calendar = state.settings.calendar();
    let next = calendar.next_with_lead_time(state.ctx.clock.now());
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
        errors => refusal.as_ref().map(Refusal::field_errors).unwrap_or_default(),
        error => refusal.as_ref().map(Refusal::message),
        timezone => state.settings.timezone.name(),
        max_notice_hours => release::MAX_NOTICE_HOURS,
    };
    state
        .pages
        .page_with_status(status, viewer, "manage/releases.html", context)
}

pub async fn list(state: web::Data<AppState>, viewer: Viewer) -> Result<HttpResponse, AppError> {
    let values = PlanForm {
        kind: ReleaseKind::PatchTuesday.as_str().into(),
        ..PlanForm::default()
    };
    list_page(&state, &viewer, StatusCode::OK, values, None).await
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

impl PlanForm {
    fn parse(&self, state: &AppState) -> Result<Plan, FieldErrors> {
        let mut errors = FieldErrors::new();
        let kind = self
            .kind
            .trim()
            .parse::<ReleaseKind>()
            .map_err(|_| {
                errors.insert(
                    "kind".into(),
                    "Choose patch-tuesday, zero-day or third-party.".into(),
                )
            })
            .ok();
        let patch_tuesday = match self.patch_tuesday.trim() {
            "" => None,
            day => NaiveDate::parse_from_str(day, "%Y-%m-%d")
                .map_err(|_| {
                    errors.insert("patch_tuesday".into(), "Choose a Patch Tuesday.".into())
                })
                .ok(),
        };
        let release_at = match self.release_at.trim() {
            "" => None,
            when => parse_local(state, when).or_else(|| {
                errors.insert(
                    "release_at".into(),
                    "Give the time as a date and time.".into(),
                );
                None
            }),
        };
        // How many hours a 0-day may give is the workflow's rule; here only a number is read.
        let notice_hours = match self.notice_hours.trim() {
            "" => 0,
            hours => hours.parse::<u32>().unwrap_or_else(|_| {
                errors.insert(
                    "notice_hours".into(),
                    format!(
                        "Give the member notice in whole hours, from 0 to {}.",
                        release::MAX_NOTICE_HOURS
                    ),
                );
                0
            }),
        };
        let upstream_id = match self.upstream_id.trim() {
            "" => None,
            id => id
                .parse::<i64>()
                .map_err(|_| errors.insert("upstream_id".into(), "Choose an upstream.".into()))
                .ok(),
        };
        match kind {
            Some(kind) if errors.is_empty() => Ok(Plan {
                kind,
                title: self.title.clone(),
                release_lines: release::parse_lines(&self.release_lines),
                patch_tuesday,
                release_at,
                upstream_id,
                notice_hours,
                members_may_deploy: !self.members_may_deploy.is_empty(),
                notes: self.notes.clone(),
            }),
            _ => Err(errors),
        }
    }
}

pub async fn plan(
    state: web::Data<AppState>,
    viewer: Viewer,
    SignedIn(user): SignedIn,
    CsrfForm(form): CsrfForm<PlanForm>,
) -> Result<HttpResponse, AppError> {
    let plan = match form.parse(&state) {
        Ok(plan) => plan,
        Err(errors) => {
            return list_page(
                &state,
                &viewer,
                StatusCode::UNPROCESSABLE_ENTITY,
                form,
                Some(Refusal::Invalid(errors)),
            )
            .await
        }
    };
    let calendar = state.settings.calendar();
    let (by, now) = (Actor::from(&user), state.ctx.clock.now());
    act(
        &state,
        move |c| release::plan(c, &calendar, &plan, &by, now),
        |id| format!("/manage/releases/{id}"),
        |refusal| async { list_page(&state, &viewer, refusal.status(), form, Some(refusal)).await },
    )
    .await
}

#[derive(Debug, Deserialize)]
pub struct DetailQuery {
    notice: Option<String>,
    /// The page of the delivery ledger, from 1.
    #[serde(default)]
    ledger: String,
}

/// A form of the release page shown again after a refusal: which form (and for a form that
/// each patch has, which patch), what was typed, and the messages beside its fields.
#[derive(Debug, Default, Serialize)]
struct Echo {
    form: &'static str,
    patch: Option<i64>,
    values: BTreeMap<String, String>,
    errors: FieldErrors,
}

/// A patch's origin as chosen on a form: empty or "project" for the project's own, otherwise
/// an upstream's id (whether it names one is the workflow's check).
fn parse_origin(text: &str) -> Result<Option<i64>, String> {
    match text.trim() {
        "" | "project" => Ok(None),
        id => id
            .parse::<i64>()
            .map(Some)
            .map_err(|_| "Choose the project or one of the upstreams.".to_owned()),
    }
}

#[expect(
    clippy::too_many_arguments,
    reason = "every caller names what it shows again"
)]
async fn detail_page(
    state: &AppState,
    viewer: &Viewer,
    id: i64,
    status: StatusCode,
    notice: Option<&'static str>,
    error: Option<String>,
    echo: Echo,
    ledger_page: i64,
) -> Result<HttpResponse, AppError> {
    let now = state.ctx.clock.now();
    let viewer_id = viewer.user.as_ref().map(|u| u.account_id);
    let data = db::run(&state.pool, move |c| {
        let Some(r) = release::find(c, id)? else {
            return Ok::<_, db::DbError>(None);
        };
        let advisories = release::advisories_of(c, id)?;
        let patches = release::evidence_of(c, id)?;
        let blockers = approval::blockers(c, &r)?;
        let upstreams = upstream::list(c)?;
        let revisions = release::revisions_of(c, id)?;
        let ledger = distribution::ledger(c, id, now, ledger_page, distribution::LEDGER_PAGE_SIZE)?;
        // The approve button is offered only to someone who may press it.
        let not_approver = match viewer_id {
            Some(account) => approval::not_a_second_person(c, &r, account)?,
            None => None,
        };
        Ok(Some((
            r,
            advisories,
            patches,
            blockers,
            upstreams,
            revisions,
            ledger,
            not_approver,
        )))
    })
    .await?;
    let (r, advisories, patches, blockers, upstreams, revisions, ledger, not_approver) =
        data.ok_or(AppError::NotFound)?;
    let site = state.settings.base_url.as_str().trim_end_matches('/');
    let preview = visibility::as_announced(site, &r, advisories.clone());
    let last_approved = revisions
        .iter()
        .find(|v| v.approved_at.is_some())
        .map(|v| v.revision);
    let ledger_link = |page: i64| format!("/manage/releases/{id}?ledger={page}#delivery");
    let context = minijinja::context! {
        ledger_previous => (ledger.page > 1).then(|| ledger_link(ledger.page - 1)),
        ledger_next => (ledger.page < ledger.pages).then(|| ledger_link(ledger.page + 1)),
        approved_current => r.approved_current(),
        not_approver,
        last_approved,
        release => r,
        advisories,
        patches,
        blockers,
        upstreams,
        revisions,
        ledger,
        severities => Severity::ALL,
        announcement => feeds::announcement_text(&preview, &state.settings.project_name, state.settings.timezone),
        notice,
        error,
        echo,
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
        Echo::default(),
        query.ledger.trim().parse().unwrap_or(1),
    )
    .await
}

/// Runs a change to release `id` from the form `echo.form`; a refusal shows the page again
/// with what was typed.
async fn change<F>(
    state: &AppState,
    viewer: &Viewer,
    id: i64,
    notice: &'static str,
    echo: Echo,
    work: F,
) -> Result<HttpResponse, AppError>
where
    F: FnOnce(&mut db::DbConnection) -> Result<(), ReleaseError> + Send + 'static,
{
    act(
        state,
        work,
        |()| format!("/manage/releases/{id}?notice={notice}"),
        |refusal| refused(state, viewer, id, echo, refusal),
    )
    .await
}

async fn refused(
    state: &AppState,
    viewer: &Viewer,
    id: i64,
    echo: Echo,
    refusal: Refusal,
) -> Result<HttpResponse, AppError> {
    let echo = Echo {
        errors: refusal.field_errors(),
        ..echo
    };
    detail_page(
        state,
        viewer,
        id,
        refusal.status(),
        None,
        Some(refusal.message()),
        echo,
        1,
    )
    .await
}

/// The fields of a form, to show them again.
fn typed<T: Serialize>(form: &T) -> BTreeMap<String, String> {
    serde_json::to_value(form)
        .ok()
        .and_then(|v| serde_json::from_value(v).ok())
        .unwrap_or_default()
}

pub async fn add_advisory(
    state: web::Data<AppState>,
    viewer: Viewer,
    SignedIn(user): SignedIn,
    id: web::Path<i64>,
    CsrfForm(form): CsrfForm<AdvisoryForm>,
) -> Result<HttpResponse, AppError> {
    let id = id.into_inner();
    let echo = Echo {
        form: "advisory",
        values: typed(&form),
        ..Echo::default()
    };
    let advisory = match form.parse() {
        Ok(advisory) => advisory,
        Err(errors) => return refused(&state, &viewer, id, echo, Refusal::Invalid(errors)).await,
    };
    let by = Actor::from(&user);
    change(&state, &viewer, id, "advisory", echo, move |c| {
        release::add_advisory(c, id, &advisory, &by).map(|_| ())
    })
    .await
}

/// What an upload form sent: its fields, and its file unless that was over the size limit.
struct UploadForm {
    fields: BTreeMap<String, String>,
    file: Option<(String, Vec<u8>)>,
    /// The file was larger than the limit; what was read of it is dropped.
    too_large: bool,
}

/// Reads an upload: the CSRF token, the form fields and one file. A file over the size limit
/// is read to its end and dropped, so the form can be shown again with what was typed.
async fn read_upload(req: &HttpRequest, mut payload: Multipart) -> Result<UploadForm, AppError> {
    let expected = req.extensions().get::<CsrfToken>().map(|t| t.0.clone());
    let mut fields = BTreeMap::new();
    let mut file = None;
    let mut too_large = false;
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
        let mut over = false;
        while let Some(chunk) = field
            .try_next()
            .await
            .map_err(|e| AppError::BadRequest(format!("The upload could not be read: {e}")))?
        {
            over |= bytes.len() + chunk.len() > MAX_PATCH_BYTES + 64 * 1024;
            if over {
                bytes.clear();
            } else {
                bytes.extend_from_slice(&chunk);
            }
        }
        match filename {
            Some(_) if name == "file" && over => too_large = true,
            Some(filename) if name == "file" => file = Some((filename, bytes)),
            // A form field is never large: one that is, is dropped.
            _ if over => {}
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
            Ok(UploadForm {
                fields,
                file,
                too_large,
            })
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
    let UploadForm {
        mut fields,
        file,
        too_large,
    } = read_upload(&req, payload).await?;
    fields.remove(CSRF_FIELD);
    let echo = Echo {
        form: "patch",
        values: fields.clone(),
        ..Echo::default()
    };
    let mut errors = FieldErrors::new();
    let upstream_id = parse_origin(fields.get("origin").map_or("", String::as_str))
        .map_err(|message| errors.insert("origin".to_owned(), message))
        .ok()
        .flatten();
    let file = file.filter(|(_, b)| !b.is_empty());
    if too_large {
        errors.insert(
            "file".to_owned(),
            format!(
                "The file is larger than {} MiB; upload the patch itself (a patch series can be uploaded one file at a time).",
                MAX_PATCH_BYTES / (1024 * 1024)
            ),
        );
    } else if file.is_none() {
        errors.insert(
            "file".to_owned(),
            "Choose a patch file to upload.".to_owned(),
        );
    }
    let (filename, bytes) = match file {
        Some(file) if errors.is_empty() => file,
        _ => return refused(&state, &viewer, id, echo, Refusal::Invalid(errors)).await,
    };
    let upload = Upload {
        filename,
        bytes,
        release_line: fields.get("release_line").cloned().unwrap_or_default(),
        upstream_id,
        is_security_fix: fields.get("security_fix").is_some_and(|v| !v.is_empty()),
    };
    let by = Actor::from(&user);
    change(&state, &viewer, id, "patch", echo, move |c| {
        release::add_patch(c, id, &upload, &by).map(|_| ())
    })
    .await
}

#[derive(Debug, Deserialize, Serialize)]
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
    let echo = Echo {
        form: "reclassify",
        patch: Some(patch),
        values: typed(&form),
        ..Echo::default()
    };
    let upstream = match parse_origin(&form.origin) {
        Ok(upstream) => upstream,
        Err(message) => {
            let refusal = Refusal::Invalid(FieldErrors::from([("origin".to_owned(), message)]));
            return refused(&state, &viewer, id, echo, refusal).await;
        }
    };
    let by = Actor::from(&user);
    change(&state, &viewer, id, "reclassified", echo, move |c| {
        release::reclassify_patch(c, id, patch, upstream, &form.reason, &by)
    })
    .await
}

#[derive(Debug, Deserialize, Serialize)]
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
    let echo = Echo {
        form: "exception",
        values: typed(&form),
        ..Echo::default()
    };
    let by = Actor::from(&user);
    change(&state, &viewer, id, "exception", echo, move |c| {
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
    let answer = change(&state, &viewer, id, "approved", Echo::default(), move |c| {
        approval::approve(c, id, &by).map(|_| ())
    })
    .await;
    // An approval after the early-disclosure moment is mailed now, not at the next tick.
    state.ctx.wake_scheduler();
    answer
}

#[derive(Debug, Deserialize, Serialize)]
pub struct CancelForm {
    #[serde(default)]
    reason: String,
    /// Set by the confirmation page's button: a cancel is never one stray click away.
    #[serde(default)]
    confirm: String,
}

/// The confirmation page of a cancel: what it does, who is told, and the reason to send.
async fn cancel_page(
    state: &AppState,
    viewer: &Viewer,
    id: i64,
    status: StatusCode,
    reason: &str,
    reason_error: Option<String>,
) -> Result<HttpResponse, AppError> {
    let found = db::run(&state.pool, move |c| {
        let Some(r) = release::find(c, id)? else {
            return Ok::<_, db::DbError>(None);
        };
        let told = release::count_members_told(c, id)?;
        Ok(Some((r, told)))
    })
    .await?;
    let (r, told) = found.ok_or(AppError::NotFound)?;
    if r.cancelled_at.is_some() || r.published_at.is_some() {
        return Ok(crate::web::form::see_other(&format!(
            "/manage/releases/{id}"
        )));
    }
    let mut consequences = vec![
        "The release is not published, and nothing more is mailed for it. This cannot be undone: a fix that still ships needs a new release.".to_owned(),
        match told {
            0 => "No member has been mailed about it yet, so nobody is told.".to_owned(),
            1 => "The 1 member already mailed about it is told it is cancelled, with the reason below. The embargo on what it received stays until the fix is public.".to_owned(),
            n => format!("The {n} members already mailed about it are told it is cancelled, with the reason below. The embargo on what they received stays until the fix is public."),
        },
    ];
    if r.announced_at.is_some() {
        consequences.push(
            "It was pre-announced: it leaves the public list, the feed and the calendar."
                .to_owned(),
        );
    }
    let page = confirm::ConfirmPage {
        title: format!("Cancel {}?", r.title),
        summary: format!(
            "It was planned for {}.",
            state.ctx.moment(r.release_at.and_utc()).text()
        ),
        consequences,
        action: format!("/manage/releases/{id}/cancel"),
        button: "Cancel the release".to_owned(),
        reason: Some(reason.to_owned()),
        reason_label: "Reason (sent to members who were told)".to_owned(),
        reason_error,
        error: None,
        back: format!("/manage/releases/{id}"),
        back_label: "Keep it".to_owned(),
        can_act: true,
    };
    confirm::show(state, viewer, status, page)
}

pub async fn cancel_confirm(
    state: web::Data<AppState>,
    viewer: Viewer,
    id: web::Path<i64>,
) -> Result<HttpResponse, AppError> {
    cancel_page(&state, &viewer, id.into_inner(), StatusCode::OK, "", None).await
}

pub async fn cancel(
    state: web::Data<AppState>,
    viewer: Viewer,
    SignedIn(user): SignedIn,
    id: web::Path<i64>,
    CsrfForm(form): CsrfForm<CancelForm>,
) -> Result<HttpResponse, AppError> {
    let id = id.into_inner();
    if !confirm::confirmed(&form.confirm) {
        // Not from the confirmation page: show it, with the reason that was typed.
        return cancel_page(&state, &viewer, id, StatusCode::OK, &form.reason, None).await;
    }
    let by = Actor::from(&user);
    let ctx = state.ctx.clone();
    let reason = form.reason.clone();
    act(
        &state,
        move |c| release::cancel(c, &ctx, id, &reason, &by),
        |()| format!("/manage/releases/{id}?notice=cancelled"),
        |refusal: Refusal| {
            let (state, viewer, typed) = (&state, &viewer, form.reason.clone());
            async move {
                let Some(reason_error) = refusal.field_errors().remove("reason") else {
                    return refused(state, viewer, id, Echo::default(), refusal).await;
                };
                cancel_page(
                    state,
                    viewer,
                    id,
                    refusal.status(),
                    &typed,
                    Some(reason_error),
                )
                .await
            }
        },
    )
    .await
}

#[derive(Debug, Deserialize, Serialize)]
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
    let echo = Echo {
        form: "postpone",
        values: typed(&form),
        ..Echo::default()
    };
    let to = if let Ok(day) = NaiveDate::parse_from_str(form.patch_tuesday.trim(), "%Y-%m-%d") {
        Postponement::PatchTuesday(day)
    } else if let Some(at) = parse_local(&state, &form.release_at) {
        Postponement::At(at)
    } else {
        let message = "Choose the new Patch Tuesday, or give the new date and time.";
        let field = if form.release_at.trim().is_empty() {
            "patch_tuesday"
        } else {
            "release_at"
        };
        let refusal = Refusal::Invalid(FieldErrors::from([(field.to_owned(), message.to_owned())]));
        return refused(&state, &viewer, id, echo, refusal).await;
    };
    let by = Actor::from(&user);
    let ctx = state.ctx.clone();
    let calendar = state.settings.calendar();
    change(&state, &viewer, id, "postponed", echo, move |c| {
        release::postpone(c, &ctx, &calendar, id, to, &form.reason, &by)
    })
    .await
}
