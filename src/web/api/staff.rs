//! The endpoints that need a token: applications for reviewers, members for admins, and
//! releases, their advisories, patches' metadata and the delivery ledger for release managers,
//! who may also plan releases and add advisories. They call the same workflows as the pages.
//! Patch content is never served here, whoever asks: it leaves only in members' encrypted
//! mail, and an upstream's embargoed patch never leaves at all. Approval is not here either:
//! it stays a person's act, with the second factor, in the web UI or the command line.

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use chrono::{DateTime, NaiveDate, NaiveDateTime, SecondsFormat, Utc};
use diesel::prelude::*;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::accounts::api_tokens::ApiCaller;
use crate::db::schema::{applications, members};
use crate::db::{self, DbError};
use crate::domain::ReleaseKind;
use crate::error::FieldErrors;
use crate::membership::application::{self, Application};
use crate::membership::review;
use crate::membership::roster::RosterRow;
use crate::releases::distribution;
use crate::releases::release::{self, Actor, AdvisoryForm, Plan, Release};
use crate::releases::upstream;
use crate::web::api::{
    caller, json, page_of, page_response, refused, ApiError, ApiResult, BodyProblems, Page,
    PageProblems, PageQuery, Problem, TokenProblems,
};
use crate::web::auth::json_carries_nul;
use crate::web::AppState;

fn utc(at: NaiveDateTime) -> String {
    at.and_utc().to_rfc3339_opts(SecondsFormat::Secs, true)
}

fn id_of(path: &str) -> Result<i64, ApiError> {
    path.parse::<i64>().map_err(|_| Problem::not_found().into())
}

/// Reads a JSON body: 415 unless it says it is JSON, 400 with the reason if it cannot be read.
fn read_json<T: DeserializeOwned>(req: &HttpRequest, body: &[u8]) -> Result<T, ApiError> {
    let is_json = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !is_json {
        return Err(Problem::new(
            "unsupported-media-type",
            "Send the body as JSON, with Content-Type: application/json.",
        )
        .into());
    }
    let value: serde_json::Value = serde_json::from_slice(body).map_err(|e| {
        ApiError::from(Problem::new(
            "bad-request",
            format!("The JSON could not be read: {e}"),
        ))
    })?;
    // No column takes a NUL: say which field carries one rather than fail at the database.
    if let Some(fields) = value.as_object() {
        let errors: FieldErrors = fields
            .iter()
            .filter(|(key, v)| key.contains('\0') || json_carries_nul(v))
            .map(|(key, _)| {
                (
                    key.replace('\0', ""),
                    "The value carries a NUL character, which cannot be stored.".to_owned(),
                )
            })
            .collect();
        if !errors.is_empty() {
            return Err(Problem::invalid(errors).into());
        }
    }
    serde_json::from_value(value)
        .map_err(|e| Problem::new("bad-request", format!("The JSON could not be read: {e}")).into())
}

// ---- Applications (applications:read) ----

/// An application as reviewers see it.
#[derive(Debug, Serialize, ToSchema)]
pub struct ApiApplication {
    pub id: i64,
    /// `unconfirmed`, `in-review`, `approved`, `declined`, ...
    pub status: String,
    pub org_name: String,
    pub org_domains: Vec<String>,
    pub website: String,
    pub security_alias: String,
    pub category: String,
    pub product_name: String,
    pub product_url: String,
    pub redistribution: String,
    pub user_base: String,
    pub rep_name: String,
    pub rep_email: String,
    pub days_to_fix: i32,
    pub has_pgp_key: bool,
    pub policy_version: i32,
    pub alias_confirmed_at: Option<String>,
    pub decided_at: Option<String>,
    pub created_at: String,
}

impl From<Application> for ApiApplication {
    fn from(a: Application) -> Self {
        Self {
            id: a.id,
            status: a.status.as_str().to_owned(),
            org_domains: a.domains().iter().map(|d| d.as_str().to_owned()).collect(),
            org_name: a.org_name,
            website: a.website,
            security_alias: a.security_alias.as_str().to_owned(),
            category: a.category,
            product_name: a.product_name,
            product_url: a.product_url,
            redistribution: a.redistribution,
            user_base: a.user_base,
            rep_name: a.rep_name,
            rep_email: a.rep_email,
            days_to_fix: a.days_to_fix,
            has_pgp_key: a.pgp_key.is_some(),
            policy_version: a.policy_version,
            alias_confirmed_at: a.alias_confirmed_at.map(utc),
            decided_at: a.decided_at.map(utc),
            created_at: utc(a.created_at),
        }
    }
}

/// One automatic check of the scorecard.
#[derive(Debug, Serialize, ToSchema)]
pub struct ApiCheck {
    pub key: String,
    pub title: String,
    /// `pass`, `fail` or `needs-review`.
    pub outcome: String,
    pub reason: String,
    pub required: bool,
    pub checked_at: String,
}

/// One reviewer's vote.
#[derive(Debug, Serialize, ToSchema)]
pub struct ApiVote {
    pub reviewer: String,
    /// `approve`, `reject` or `abstain`.
    pub vote: String,
    pub reason: String,
    pub updated_at: String,
}

/// An application with its scorecard and votes.
#[derive(Debug, Serialize, ToSchema)]
pub struct ApiApplicationDetail {
    #[serde(flatten)]
    pub application: ApiApplication,
    pub scorecard: Vec<ApiCheck>,
    pub votes: Vec<ApiVote>,
}

/// Applications, oldest first.
#[utoipa::path(
    get,
    path = "/api/v1/applications",
    tag = "reviewers",
    params(PageQuery),
    security(("token" = ["applications:read"])),
    responses(
        (status = 200, description = "A page of applications", body = Page<ApiApplication>),
        PageProblems,
        TokenProblems,
    )
)]
pub async fn applications(
    state: web::Data<AppState>,
    req: HttpRequest,
    query: web::Query<PageQuery>,
) -> ApiResult {
    let at = query.read()?;
    let rows: Vec<Application> = db::run(&state.pool, move |conn| {
        Ok::<_, DbError>(
            applications::table
                .filter(applications::id.gt(at.after.unwrap_or(0)))
                .order(applications::id.asc())
                .limit(at.limit + 1)
                .select(Application::as_select())
                .load(conn)?,
        )
    })
    .await?;
    let items = rows.into_iter().map(ApiApplication::from).collect();
    page_response(&req, &page_of(items, at, |a| a.id))
}

/// One application with its scorecard and votes.
#[utoipa::path(
    get,
    path = "/api/v1/applications/{id}",
    tag = "reviewers",
    params(("id" = i64, Path, description = "The application's id")),
    security(("token" = ["applications:read"])),
    responses(
        (status = 200, description = "The application", body = ApiApplicationDetail),
        (status = 404, description = "No such application", body = Problem, content_type = "application/problem+json"),
        TokenProblems,
    )
)]
pub async fn application(state: web::Data<AppState>, id: web::Path<String>) -> ApiResult {
    let id = id_of(&id)?;
    let found = db::run(&state.pool, move |conn| {
        let Some(app) = application::find(conn, id)? else {
            return Ok::<_, DbError>(None);
        };
        let checks = application::load_checks(conn, id)?;
        let votes = review::votes_for(conn, id)?;
        Ok(Some((app, checks, votes)))
    })
    .await?;
    let (app, checks, votes) = found.ok_or_else(Problem::not_found)?;
    json(&ApiApplicationDetail {
        application: app.into(),
        scorecard: checks
            .into_iter()
            .map(|c| ApiCheck {
                key: c.check_key,
                title: c.title,
                outcome: c.outcome.as_str().to_owned(),
                reason: c.reason,
                required: c.required,
                checked_at: utc(c.checked_at),
            })
            .collect(),
        votes: votes
            .into_iter()
            .map(|v| ApiVote {
                reviewer: v.reviewer_name,
                vote: v.vote.as_str().to_owned(),
                reason: v.reason,
                updated_at: utc(v.updated_at),
            })
            .collect(),
    })
}

// ---- Members (members:read) ----

/// A member, with what the roster export holds.
#[derive(Debug, Serialize, ToSchema)]
pub struct ApiMember {
    pub id: i64,
    pub org_name: String,
    pub org_domain: String,
    pub security_alias: String,
    pub rep_name: String,
    pub rep_email: String,
    /// `active`, `suspended` or `removed`.
    pub status: String,
    pub policy_version: i32,
    pub joined_at: String,
    pub last_reviewed_at: String,
    pub pgp_fingerprint: Option<String>,
    pub pgp_expires_at: Option<String>,
}

/// Members, in the order they joined the list (by id).
#[utoipa::path(
    get,
    path = "/api/v1/members",
    tag = "admins",
    params(PageQuery),
    security(("token" = ["members:read"])),
    responses(
        (status = 200, description = "A page of members", body = Page<ApiMember>),
        PageProblems,
        TokenProblems,
    )
)]
pub async fn members(
    state: web::Data<AppState>,
    req: HttpRequest,
    query: web::Query<PageQuery>,
) -> ApiResult {
    let at = query.read()?;
    let rows: Vec<RosterRow> = db::run(&state.pool, move |conn| {
        Ok::<_, DbError>(
            members::table
                .filter(members::id.gt(at.after.unwrap_or(0)))
                .order(members::id.asc())
                .limit(at.limit + 1)
                .select(RosterRow::as_select())
                .load(conn)?,
        )
    })
    .await?;
    let items = rows
        .into_iter()
        .map(|m| ApiMember {
            id: m.id,
            org_name: m.org_name,
            org_domain: m.org_domain.as_str().to_owned(),
            security_alias: m.security_alias.as_str().to_owned(),
            rep_name: m.rep_name,
            rep_email: m.rep_email,
            status: m.status.as_str().to_owned(),
            policy_version: m.policy_version,
            joined_at: utc(m.joined_at),
            last_reviewed_at: utc(m.last_reviewed_at),
            pgp_fingerprint: m.pgp_fingerprint,
            pgp_expires_at: m.pgp_expires_at.map(utc),
        })
        .collect();
    page_response(&req, &page_of(items, at, |m| m.id))
}

// ---- Releases (releases:read, releases:write) ----

/// A release as release managers see it, embargoed ones included.
#[derive(Debug, Serialize, ToSchema)]
pub struct ApiManagedRelease {
    pub id: i64,
    /// `patch-tuesday`, `zero-day` or `third-party`.
    pub kind: String,
    pub title: String,
    /// Where it stands, as the release page says it.
    pub state: String,
    pub revision: i32,
    pub approved: bool,
    pub release_at: String,
    pub disclosure_at: Option<String>,
    pub announce_at: Option<String>,
    pub release_lines: Vec<String>,
    pub upstream_id: Option<i64>,
    pub members_may_deploy: bool,
    pub notes: String,
    pub disclosed_at: Option<String>,
    pub announced_at: Option<String>,
    pub published_at: Option<String>,
    pub cancelled_at: Option<String>,
}

impl From<&Release> for ApiManagedRelease {
    fn from(r: &Release) -> Self {
        let state = serde_json::to_value(r.state())
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default();
        Self {
            id: r.id,
            kind: r.kind.as_str().to_owned(),
            title: r.title.clone(),
            state,
            revision: r.revision,
            approved: r.approved_current(),
            release_at: utc(r.release_at),
            disclosure_at: r.disclosure_at.map(utc),
            announce_at: r.announce_at.map(utc),
            release_lines: r.lines().to_vec(),
            upstream_id: r.upstream_id,
            members_may_deploy: r.members_may_deploy,
            notes: r.notes.clone(),
            disclosed_at: r.disclosed_at.map(utc),
            announced_at: r.announced_at.map(utc),
            published_at: r.published_at.map(utc),
            cancelled_at: r.cancelled_at.map(utc),
        }
    }
}

/// An advisory of a release, embargoed or not.
#[derive(Debug, Serialize, ToSchema)]
pub struct ApiManagedAdvisory {
    pub id: i64,
    pub cve_id: String,
    pub severity: String,
    /// Empty when none was given.
    pub cvss_vector: String,
    pub summary: String,
    pub affected_versions: String,
    pub fixed_versions: String,
}

/// What is known of a patch, never its content.
#[derive(Debug, Serialize, ToSchema)]
pub struct ApiPatch {
    pub id: i64,
    pub filename: String,
    pub sha256: String,
    pub release_line: String,
    /// The upstream it comes from; `null` for the project's own.
    pub upstream: Option<String>,
    /// Whether the upstream allows the list to pass its patches on; `true` for the project's.
    pub may_redistribute: bool,
    pub is_security_fix: bool,
    /// Flagged by the upstream guard as looking like an upstream's patch.
    pub looks_like_upstream: bool,
    pub uploaded_at: String,
}

/// A release with its advisories and patches' metadata.
#[derive(Debug, Serialize, ToSchema)]
pub struct ApiManagedReleaseDetail {
    #[serde(flatten)]
    pub release: ApiManagedRelease,
    pub advisories: Vec<ApiManagedAdvisory>,
    pub patches: Vec<ApiPatch>,
}

/// Every release, embargoed ones included, newest first by id.
#[utoipa::path(
    get,
    path = "/api/v1/manage/releases",
    tag = "release managers",
    params(PageQuery),
    security(("token" = ["releases:read"])),
    responses(
        (status = 200, description = "A page of releases", body = Page<ApiManagedRelease>),
        PageProblems,
        TokenProblems,
    )
)]
pub async fn manage_releases(
    state: web::Data<AppState>,
    req: HttpRequest,
    query: web::Query<PageQuery>,
) -> ApiResult {
    let at = query.read()?;
    let mut all = db::run(&state.pool, release::list).await?;
    all.sort_by_key(|r| std::cmp::Reverse(r.id));
    let items: Vec<ApiManagedRelease> = all
        .iter()
        .filter(|r| at.after.is_none_or(|after| r.id < after))
        .take(at.limit as usize + 1)
        .map(ApiManagedRelease::from)
        .collect();
    page_response(&req, &page_of(items, at, |r| r.id))
}

/// One release with its advisories and patches' metadata.
#[utoipa::path(
    get,
    path = "/api/v1/manage/releases/{id}",
    tag = "release managers",
    params(("id" = i64, Path, description = "The release's id")),
    security(("token" = ["releases:read"])),
    responses(
        (status = 200, description = "The release", body = ApiManagedReleaseDetail),
        (status = 404, description = "No such release", body = Problem, content_type = "application/problem+json"),
        TokenProblems,
    )
)]
pub async fn manage_release(state: web::Data<AppState>, id: web::Path<String>) -> ApiResult {
    let id = id_of(&id)?;
    let detail = db::run(&state.pool, move |conn| managed_detail(conn, id)).await?;
    json(&detail.ok_or_else(Problem::not_found)?)
}

fn managed_detail(
    conn: &mut crate::db::DbConnection,
    id: i64,
) -> Result<Option<ApiManagedReleaseDetail>, DbError> {
    let Some(found) = release::find(conn, id)? else {
        return Ok(None);
    };
    let upstreams = upstream::list(conn)?;
    let advisories = release::advisories_of(conn, id)?
        .into_iter()
        .map(|a| ApiManagedAdvisory {
            id: a.id,
            cve_id: a.cve_id.as_str().to_owned(),
            severity: a.severity.as_str().to_owned(),
            cvss_vector: a.cvss_vector,
            summary: a.summary,
            affected_versions: a.affected_versions,
            fixed_versions: a.fixed_versions,
        })
        .collect();
    let patches = release::patches_of(conn, id)?
        .into_iter()
        .map(|p| {
            let from = p
                .upstream_id
                .and_then(|u| upstreams.iter().find(|x| x.id == u));
            ApiPatch {
                id: p.id,
                filename: p.filename,
                sha256: p.sha256,
                release_line: p.release_line,
                upstream: from.map(|u| u.slug.clone()),
                may_redistribute: from.is_none_or(|u| u.may_redistribute),
                is_security_fix: p.is_security_fix,
                looks_like_upstream: p.looks_like_upstream,
                uploaded_at: utc(p.created_at),
            }
        })
        .collect();
    Ok(Some(ApiManagedReleaseDetail {
        release: ApiManagedRelease::from(&found),
        advisories,
        patches,
    }))
}

/// One line of the delivery ledger: what a member was sent and what became of it.
#[derive(Debug, Serialize, ToSchema)]
pub struct ApiDelivery {
    pub org_name: String,
    pub revision: Option<i32>,
    /// `queued`, `sending`, `sent`, `failed` or `held`.
    pub status: String,
    pub message_id: String,
    pub sent_at: Option<String>,
    pub last_error: Option<String>,
    pub held_reason: Option<String>,
    pub encrypted: Option<bool>,
    /// Why the member got the notice instead of the content.
    pub no_key: Option<String>,
    pub acknowledged_at: Option<String>,
}

/// The delivery ledger of a release: every embargoed message and every notice sent instead.
#[utoipa::path(
    get,
    path = "/api/v1/manage/releases/{id}/deliveries",
    tag = "release managers",
    params(("id" = i64, Path, description = "The release's id"), PageQuery),
    security(("token" = ["releases:read"])),
    responses(
        (status = 200, description = "A page of the ledger", body = Page<ApiDelivery>),
        (status = 404, description = "No such release", body = Problem, content_type = "application/problem+json"),
        PageProblems,
        TokenProblems,
    )
)]
pub async fn deliveries(
    state: web::Data<AppState>,
    req: HttpRequest,
    id: web::Path<String>,
    query: web::Query<PageQuery>,
) -> ApiResult {
    let id = id_of(&id)?;
    let at = query.read()?;
    // The ledger is paged by page number; the cursor carries the number of the page before.
    let page_number = at.after.unwrap_or(0).max(0).saturating_add(1);
    let now = state.ctx.clock.now();
    let found = db::run(&state.pool, move |conn| {
        if release::find(conn, id)?.is_none() {
            return Ok::<_, DbError>(None);
        }
        Ok(Some(distribution::ledger(
            conn,
            id,
            now,
            page_number,
            at.limit,
        )?))
    })
    .await?;
    let ledger = found.ok_or_else(Problem::not_found)?;
    let past_end = page_number > ledger.pages;
    let items: Vec<ApiDelivery> = if past_end {
        Vec::new()
    } else {
        ledger
            .lines
            .into_iter()
            .map(|l| ApiDelivery {
                org_name: l.org_name,
                revision: l.revision,
                status: l.status.as_str().to_owned(),
                message_id: l.message_id,
                sent_at: l.sent_at.map(utc),
                last_error: l.last_error,
                held_reason: l.held_reason,
                encrypted: l.encrypted,
                no_key: l.no_key,
                acknowledged_at: l.acknowledged_at.map(utc),
            })
            .collect()
    };
    let next_cursor =
        (!past_end && page_number < ledger.pages).then(|| super::encode_cursor(page_number));
    page_response(&req, &Page { items, next_cursor })
}

/// A release to plan, as JSON.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ApiPlan {
    /// `patch-tuesday`, `zero-day` or `third-party`.
    pub kind: String,
    pub title: String,
    /// At least one, e.g. `["1.9.5", "1.8.6"]`.
    #[schema(min_items = 1)]
    pub release_lines: Vec<String>,
    /// For a Patch Tuesday other than the next one with its full lead time (YYYY-MM-DD).
    #[serde(default)]
    #[schema(format = Date)]
    pub patch_tuesday: Option<String>,
    /// For a 0-day (default now) or a third-party release (the embargo lift), RFC 3339.
    #[serde(default)]
    #[schema(format = DateTime)]
    pub release_at: Option<String>,
    /// For a third-party release: the upstream's id.
    #[serde(default)]
    pub upstream_id: Option<i64>,
    /// For a 0-day: hours of member notice, 0 to 72.
    #[serde(default)]
    #[schema(minimum = 0, maximum = 72)]
    pub notice_hours: Option<u32>,
    #[serde(default)]
    pub members_may_deploy: bool,
    #[serde(default)]
    pub notes: String,
}

impl ApiPlan {
    fn parse(self) -> Result<Plan, FieldErrors> {
        let mut errors = FieldErrors::new();
        let kind = self.kind.trim().parse::<ReleaseKind>().ok();
        if kind.is_none() {
            errors.insert(
                "kind".into(),
                "Give patch-tuesday, zero-day or third-party.".into(),
            );
        }
        let patch_tuesday = match self.patch_tuesday.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(day) => NaiveDate::parse_from_str(day, "%Y-%m-%d")
                .map_err(|_| {
                    errors.insert(
                        "patch_tuesday".into(),
                        "Give the Patch Tuesday as YYYY-MM-DD.".into(),
                    )
                })
                .ok(),
        };
        let release_at = match self.release_at.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(when) => DateTime::parse_from_rfc3339(when)
                .map(|t| t.with_timezone(&Utc))
                .map_err(|_| {
                    errors.insert(
                        "release_at".into(),
                        "Give the time in RFC 3339, e.g. 2027-01-12T17:00:00Z.".into(),
                    )
                })
                .ok(),
        };
        match (kind, errors.is_empty()) {
            (Some(kind), true) => Ok(Plan {
                kind,
                title: self.title,
                release_lines: self
                    .release_lines
                    .iter()
                    .map(|l| l.trim().to_owned())
                    .filter(|l| !l.is_empty())
                    .collect(),
                patch_tuesday,
                release_at,
                upstream_id: self.upstream_id,
                notice_hours: self.notice_hours.unwrap_or(0),
                members_may_deploy: self.members_may_deploy,
                notes: self.notes,
            }),
            _ => Err(errors),
        }
    }
}

/// Plans a release, as the release managers' page does. It still needs its advisories and
/// patches, and a second person's approval in the web UI or on the command line.
#[utoipa::path(
    post,
    path = "/api/v1/manage/releases",
    tag = "release managers",
    request_body = ApiPlan,
    security(("token" = ["releases:write"])),
    responses(
        (status = 201, description = "Planned", body = ApiManagedReleaseDetail),
        (status = 409, description = "Cannot be done now", body = Problem, content_type = "application/problem+json"),
        BodyProblems,
        TokenProblems,
    )
)]
pub async fn plan_release(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: web::Bytes,
) -> ApiResult {
    let who = caller(&req)?;
    let plan = read_json::<ApiPlan>(&req, &body)?
        .parse()
        .map_err(Problem::invalid)?;
    let calendar = state.settings.calendar();
    let now = state.ctx.clock.now();
    change_release(&state, &who, move |conn, by| {
        release::plan(conn, &calendar, &plan, by, now)
    })
    .await
}

/// An advisory to add, as JSON.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ApiNewAdvisory {
    /// E.g. CVE-2026-31337.
    pub cve_id: String,
    /// `critical`, `high`, `medium` or `low`.
    pub severity: String,
    /// A CVSS v3.x or v4.0 vector, optional.
    #[serde(default)]
    pub cvss_vector: String,
    pub summary: String,
    pub affected_versions: String,
    pub fixed_versions: String,
}

/// Adds an advisory to a release: a new revision, which needs approval again.
#[utoipa::path(
    post,
    path = "/api/v1/manage/releases/{id}/advisories",
    tag = "release managers",
    params(("id" = i64, Path, description = "The release's id")),
    request_body = ApiNewAdvisory,
    security(("token" = ["releases:write"])),
    responses(
        (status = 201, description = "Added; the release as it now is", body = ApiManagedReleaseDetail),
        (status = 404, description = "No such release", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The release cannot change now", body = Problem, content_type = "application/problem+json"),
        BodyProblems,
        TokenProblems,
    )
)]
pub async fn add_advisory(
    state: web::Data<AppState>,
    req: HttpRequest,
    id: web::Path<String>,
    body: web::Bytes,
) -> ApiResult {
    let who = caller(&req)?;
    let id = id_of(&id)?;
    let given = read_json::<ApiNewAdvisory>(&req, &body)?;
    let advisory = AdvisoryForm {
        cve_id: given.cve_id,
        severity: given.severity,
        cvss_vector: given.cvss_vector,
        summary: given.summary,
        affected_versions: given.affected_versions,
        fixed_versions: given.fixed_versions,
    }
    .parse()
    .map_err(Problem::invalid)?;
    change_release(&state, &who, move |conn, by| {
        release::add_advisory(conn, id, &advisory, by).map(|_| id)
    })
    .await
}

/// A patch to upload, as JSON: the file's bytes in base64.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ApiNewPatch {
    /// The file name, e.g. `0001-fix-path-normalisation.patch`.
    pub filename: String,
    /// The patch file (git format-patch or a unified diff), base64-encoded; at most 5 MiB.
    #[schema(content_encoding = "base64")]
    pub content_base64: String,
    /// One of the release's lines.
    pub release_line: String,
    /// The upstream the patch comes from; absent for the project's own.
    #[serde(default)]
    pub upstream_id: Option<i64>,
    #[serde(default = "yes")]
    pub is_security_fix: bool,
}

fn yes() -> bool {
    true
}

/// Reads a request body up to `max` bytes; 413 past it.
async fn read_body(mut payload: web::Payload, max: usize) -> Result<Vec<u8>, ApiError> {
    use futures_util::StreamExt;
    let mut body = Vec::new();
    while let Some(chunk) = payload.next().await {
        let chunk =
            chunk.map_err(|_| Problem::new("bad-request", "The body could not be read."))?;
        if body.len() + chunk.len() > max {
            return Err(Problem::new(
                "too-large",
                format!("The body is larger than {} MiB.", max / (1024 * 1024)),
            )
            .into());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// Uploads a patch to a release: a new revision, which needs approval again. The upstream
/// guard judges it exactly as an upload on the release page: a patch that looks like an
/// upstream's but is filed as the project's is flagged and blocks approval.
#[utoipa::path(
    post,
    path = "/api/v1/manage/releases/{id}/patches",
    tag = "release managers",
    params(("id" = i64, Path, description = "The release's id")),
    request_body = ApiNewPatch,
    security(("token" = ["releases:write"])),
    responses(
        (status = 201, description = "Stored; the release as it now is", body = ApiManagedReleaseDetail),
        (status = 404, description = "No such release", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The release cannot change now", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "The body is too large", body = Problem, content_type = "application/problem+json"),
        BodyProblems,
        TokenProblems,
    )
)]
pub async fn upload_patch(
    state: web::Data<AppState>,
    req: HttpRequest,
    id: web::Path<String>,
    payload: web::Payload,
) -> ApiResult {
    let who = caller(&req)?;
    let id = id_of(&id)?;
    // Base64 makes the file a third larger, and the other fields need a little room.
    let limit = crate::releases::patch::MAX_PATCH_BYTES / 3 * 4 + 64 * 1024;
    let body = read_body(payload, limit).await?;
    let given = read_json::<ApiNewPatch>(&req, &body)?;
    let bytes = data_encoding::BASE64
        .decode(given.content_base64.trim().as_bytes())
        .map_err(|_| {
            Problem::invalid(FieldErrors::from([(
                "content_base64".to_owned(),
                "The content is not base64.".to_owned(),
            )]))
        })?;
    let upload = release::Upload {
        filename: given.filename,
        bytes,
        release_line: given.release_line,
        upstream_id: given.upstream_id,
        is_security_fix: given.is_security_fix,
    };
    change_release(&state, &who, move |conn, by| {
        release::add_patch(conn, id, &upload, by).map(|_| id)
    })
    .await
}

/// Runs one release workflow for the token's account, recorded under the token's name, and
/// answers 201 with the release as it now is (a refusal: 422 or 409, a missing release: 404).
async fn change_release<F>(state: &AppState, who: &ApiCaller, change: F) -> ApiResult
where
    F: FnOnce(&mut crate::db::DbConnection, &Actor) -> Result<i64, release::ReleaseError>
        + Send
        + 'static,
{
    let by = Actor {
        account_id: who.account_id,
        email: who.actor(),
    };
    let changed = db::run(&state.pool, move |conn| {
        let id = match change(conn, &by) {
            Ok(id) => id,
            Err(error) => return Ok(Err(refused(error))),
        };
        Ok::<_, DbError>(Ok(managed_detail(conn, id)?))
    })
    .await??;
    let detail = changed.ok_or_else(Problem::not_found)?;
    Ok(HttpResponse::Created()
        .insert_header((
            header::LOCATION,
            format!("/api/v1/manage/releases/{}", detail.release.id),
        ))
        .json(detail))
}
