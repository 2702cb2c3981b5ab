//! The public endpoints: announced and published releases, published advisories, the calendar
//! of Patch Tuesdays and the roster. They show what the public pages show and nothing more:
//! every release passes through `releases::visibility`, so an embargoed release does not exist
//! here and an announced one has no advisories until it is published.

use actix_web::{web, HttpRequest};
use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::db;
use crate::membership::members;
use crate::releases::advisory_formats;
use crate::releases::visibility::{PublicAdvisory, PublicRelease};
use crate::web::api::{
    json, page_of, page_response, ApiError, ApiResult, Page, PageProblems, PageQuery, Problem,
};
use crate::web::releases_public::{load, Which};
use crate::web::AppState;

fn rfc3339(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// A release as the public knows it.
#[derive(Debug, Serialize, ToSchema)]
pub struct ApiRelease {
    pub id: i64,
    pub title: String,
    /// `announced` (the pre-announcement is out) or `published`.
    pub state: String,
    /// When the release ships (RFC 3339, UTC).
    pub release_at: String,
    pub announced_at: String,
    pub published_at: Option<String>,
    pub release_lines: Vec<String>,
    pub issue_count: usize,
    /// `critical`, `high`, `medium` or `low`; `null` with no issues.
    pub highest_severity: Option<String>,
    /// Empty until the release is published.
    pub advisories: Vec<ApiAdvisory>,
    /// The release's page.
    pub url: String,
    /// Once published: the release as a CSAF 2.0 security advisory.
    pub csaf_url: Option<String>,
    /// Once published: the release's advisories as OSV documents.
    pub osv_url: Option<String>,
}

/// One advisory of a published release.
#[derive(Debug, Serialize, ToSchema)]
pub struct ApiAdvisory {
    pub cve_id: String,
    pub severity: String,
    pub summary: String,
    pub affected_versions: String,
    pub fixed_versions: String,
    /// This advisory as an OSV document.
    pub osv_url: String,
}

impl ApiAdvisory {
    fn of(release: &PublicRelease, a: PublicAdvisory) -> Self {
        Self {
            osv_url: advisory_formats::osv_advisory_url(release, &a.cve_id),
            cve_id: a.cve_id,
            severity: a.severity.as_str().to_owned(),
            summary: a.summary,
            affected_versions: a.affected_versions,
            fixed_versions: a.fixed_versions,
        }
    }
}

impl From<PublicRelease> for ApiRelease {
    fn from(mut r: PublicRelease) -> Self {
        let published = r.published_at.is_some();
        let advisories = std::mem::take(&mut r.advisories)
            .into_iter()
            .map(|a| ApiAdvisory::of(&r, a))
            .collect();
        Self {
            csaf_url: (published && r.issue_count > 0).then(|| advisory_formats::csaf_url(&r)),
            osv_url: published.then(|| advisory_formats::osv_url(&r)),
            id: r.id,
            title: r.title,
            state: if r.published_at.is_some() {
                "published"
            } else {
                "announced"
            }
            .to_owned(),
            release_at: rfc3339(r.release_at),
            announced_at: rfc3339(r.announced_at),
            published_at: r.published_at.map(rfc3339),
            release_lines: r.release_lines,
            issue_count: r.issue_count,
            highest_severity: r.highest_severity.map(|s| s.as_str().to_owned()),
            advisories,
            url: r.url,
        }
    }
}

/// The public releases, newest first by id, after `after`.
async fn public_releases(state: &AppState) -> Result<Vec<PublicRelease>, ApiError> {
    let mut releases: Vec<PublicRelease> = load(state, Which::All)
        .await?
        .into_iter()
        .map(|s| s.release)
        .collect();
    releases.sort_by_key(|r| std::cmp::Reverse(r.id));
    Ok(releases)
}

/// Announced and published releases.
#[utoipa::path(
    get,
    path = "/api/v1/releases",
    tag = "public",
    params(PageQuery),
    responses(
        (status = 200, description = "A page of releases, newest first", body = Page<ApiRelease>),
        PageProblems,
    )
)]
pub async fn releases(
    state: web::Data<AppState>,
    req: HttpRequest,
    query: web::Query<PageQuery>,
) -> ApiResult {
    let at = query.read()?;
    let items: Vec<ApiRelease> = public_releases(&state)
        .await?
        .into_iter()
        .filter(|r| at.after.is_none_or(|after| r.id < after))
        .take(at.limit as usize + 1)
        .map(ApiRelease::from)
        .collect();
    page_response(&req, &page_of(items, at, |r| r.id))
}

/// One announced or published release. Any other id, embargoed releases included, is 404.
#[utoipa::path(
    get,
    path = "/api/v1/releases/{id}",
    tag = "public",
    params(("id" = i64, Path, description = "The release's id")),
    responses(
        (status = 200, description = "The release", body = ApiRelease),
        (status = 404, description = "No public release with this id", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn release(state: web::Data<AppState>, id: web::Path<String>) -> ApiResult {
    let id = id.parse::<i64>().map_err(|_| Problem::not_found())?;
    let shown = load(&state, Which::One(id))
        .await?
        .into_iter()
        .next()
        .ok_or_else(Problem::not_found)?;
    json(&ApiRelease::from(shown.release))
}

/// A published advisory, with the release it came with.
#[derive(Debug, Serialize, ToSchema)]
pub struct ApiPublishedAdvisory {
    #[serde(flatten)]
    pub advisory: ApiAdvisory,
    pub release_id: i64,
    pub published_at: String,
    pub url: String,
}

/// `?cve=` narrows the advisories to one CVE id.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CveQuery {
    /// Only the advisory of this CVE id, e.g. CVE-2026-31337.
    pub cve: Option<String>,
}

/// Published advisories, newest release first.
#[utoipa::path(
    get,
    path = "/api/v1/advisories",
    tag = "public",
    params(CveQuery, PageQuery),
    responses(
        (status = 200, description = "A page of advisories", body = Page<ApiPublishedAdvisory>),
        PageProblems,
    )
)]
pub async fn advisories(
    state: web::Data<AppState>,
    req: HttpRequest,
    page: web::Query<PageQuery>,
    query: web::Query<CveQuery>,
) -> ApiResult {
    let at = page.read()?;
    let cve = query.into_inner().cve.map(|c| c.trim().to_uppercase());
    // Releases are few (a dozen a year); the cursor is the release id, so a page holds whole
    // releases' advisories and may run a little over the limit rather than split one.
    let mut items = Vec::new();
    let mut last_release = None;
    let mut more = false;
    for mut release in public_releases(&state).await? {
        let Some(published_at) = release.published_at else {
            continue;
        };
        if at.after.is_some_and(|after| release.id >= after) {
            continue;
        }
        if items.len() as i64 >= at.limit {
            more = true;
            break;
        }
        let before = items.len();
        for advisory in std::mem::take(&mut release.advisories) {
            if cve.as_deref().is_some_and(|c| c != advisory.cve_id) {
                continue;
            }
            items.push(ApiPublishedAdvisory {
                advisory: ApiAdvisory::of(&release, advisory),
                release_id: release.id,
                published_at: rfc3339(published_at),
                url: release.url.clone(),
            });
        }
        if items.len() > before {
            last_release = Some(release.id);
        }
    }
    let page = Page {
        items,
        next_cursor: more
            .then_some(last_release)
            .flatten()
            .map(super::encode_cursor),
    };
    page_response(&req, &page)
}

/// One month's Patch Tuesday.
#[derive(Debug, Serialize, ToSchema)]
pub struct ApiPatchTuesday {
    /// The local date of the release, in the list's time zone.
    pub patch_tuesday: String,
    pub release_at: String,
    /// When members are mailed and the pre-announcement goes out.
    pub early_disclosure_at: String,
    pub timezone: String,
}

/// `?months=` of the calendar.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CalendarQuery {
    /// How many months, from this one: 1 to 36 (default 12).
    #[param(value_type = Option<i64>, minimum = 1, maximum = 36)]
    pub months: Option<String>,
}

/// The coming Patch Tuesdays, from this month on.
#[utoipa::path(
    get,
    path = "/api/v1/calendar",
    tag = "public",
    params(CalendarQuery),
    responses(
        (status = 200, description = "Patch Tuesdays in order", body = Vec<ApiPatchTuesday>),
        (status = 400, description = "A bad number of months", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn calendar(state: web::Data<AppState>, query: web::Query<CalendarQuery>) -> ApiResult {
    let months = match query.months.as_deref().map(str::trim) {
        None => 12,
        Some(text) => text
            .parse::<u32>()
            .ok()
            .filter(|m| (1..=36).contains(m))
            .ok_or_else(|| {
                Problem::new(
                    "invalid-parameter",
                    "months must be a whole number from 1 to 36.",
                )
            })?,
    };
    let calendar = state.settings.calendar();
    let now = state.ctx.clock.now().with_timezone(&calendar.timezone);
    use chrono::Datelike;
    let days: Vec<ApiPatchTuesday> = calendar
        .months_from(now.year(), now.month(), months)
        .into_iter()
        .map(|d| ApiPatchTuesday {
            patch_tuesday: d.patch_tuesday.to_string(),
            release_at: rfc3339(d.release_at),
            early_disclosure_at: rfc3339(d.early_disclosure_at),
            timezone: d.timezone,
        })
        .collect();
    json(&days)
}

/// A member as the public roster shows it.
#[derive(Debug, Serialize, ToSchema)]
pub struct ApiRosterEntry {
    pub org_name: String,
    /// The day it joined (YYYY-MM-DD).
    pub joined: String,
    pub last_reviewed: String,
}

/// The active members, as on the public roster page.
#[utoipa::path(
    get,
    path = "/api/v1/roster",
    tag = "public",
    responses((status = 200, description = "Active members by name", body = Vec<ApiRosterEntry>))
)]
pub async fn roster(state: web::Data<AppState>) -> ApiResult {
    let active = db::run(&state.pool, members::active).await?;
    let entries: Vec<ApiRosterEntry> = active
        .into_iter()
        .map(|m| ApiRosterEntry {
            org_name: m.org_name,
            joined: m.joined_at.format("%Y-%m-%d").to_string(),
            last_reviewed: m.last_reviewed_at.format("%Y-%m-%d").to_string(),
        })
        .collect();
    json(&entries)
}
