//! The public side of security releases: the list at `/releases`, one release's page, the Atom
//! feed, the ICS calendar, and a published release's OSV and CSAF documents. A release is public
//! once it is announced or published (and not cancelled); until it is published the public
//! learns only the pre-announcement facts, and its documents do not exist.

use std::cmp::Reverse;

use actix_web::{web, HttpResponse};
use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;

use crate::db::{self, DbError};
use crate::domain::Severity;
use crate::error::AppError;
use crate::releases::advisory_formats::{self, Site};
use crate::releases::feeds::{self, FeedInfo};
use crate::releases::release;
use crate::releases::visibility::{self, PublicRelease, Shown};
use crate::web::auth::Viewer;
use crate::web::AppState;

/// What the pages print about a release. Built from a [`PublicRelease`] only, which has no kind:
/// "third-party" would tell the world an upstream has an embargo running.
#[derive(Serialize)]
struct ReleaseView {
    title: String,
    path: String,
    published: bool,
    state: &'static str,
    /// Instants as RFC 3339; the pages show them with the `when` filter.
    release_at: String,
    announced_at: String,
    published_at: Option<String>,
    issue_count: usize,
    highest_severity: Option<Severity>,
    release_lines: String,
}

/// The configured base URL without its trailing slash, as the feeds expect it.
pub(crate) fn site_url(state: &AppState) -> String {
    state
        .settings
        .base_url
        .as_str()
        .trim_end_matches('/')
        .to_owned()
}

pub(crate) enum Which {
    All,
    One(i64),
}

/// Loads the public releases (all, or the one asked for if it is public), newest first.
/// Advisories are read only for releases already known to be public.
pub(crate) async fn load(state: &AppState, which: Which) -> Result<Vec<Shown>, AppError> {
    let site = site_url(state);
    let mut shown = db::run(&state.pool, move |conn| {
        let releases = match which {
            Which::All => release::list(conn)?,
            Which::One(id) => release::find(conn, id)?.into_iter().collect(),
        };
        let public: Vec<_> = releases.into_iter().filter(visibility::is_public).collect();
        let ids: Vec<i64> = public.iter().map(|r| r.id).collect();
        let mut advisories = release::advisories_by_release(conn, &ids)?;
        let mut shown = Vec::new();
        for r in public {
            let of_release = advisories.remove(&r.id).unwrap_or_default();
            shown.extend(visibility::public_view(&site, r, of_release));
        }
        Ok::<_, DbError>(shown)
    })
    .await?;
    shown.sort_by_key(|s| Reverse((s.release.release_at, s.release.id)));
    Ok(shown)
}

fn rfc3339(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Secs, true)
}

fn view(release: &PublicRelease) -> ReleaseView {
    let published = release.published_at.is_some();
    ReleaseView {
        title: release.title.clone(),
        path: format!("/releases/{}", release.id),
        published,
        state: if published {
            "Published"
        } else {
            "Planned: pre-announced"
        },
        release_at: rfc3339(release.release_at),
        announced_at: rfc3339(release.announced_at),
        published_at: release.published_at.map(rfc3339),
        issue_count: release.issue_count,
        highest_severity: release.highest_severity,
        release_lines: release.release_lines.join(", "),
    }
}

pub async fn list(state: web::Data<AppState>, viewer: Viewer) -> Result<HttpResponse, AppError> {
    let releases: Vec<ReleaseView> = load(&state, Which::All)
        .await?
        .iter()
        .map(|s| view(&s.release))
        .collect();
    state
        .pages
        .page(&viewer, "releases.html", minijinja::context! { releases })
}

pub async fn show(
    state: web::Data<AppState>,
    viewer: Viewer,
    id: web::Path<i64>,
) -> Result<HttpResponse, AppError> {
    let shown = load(&state, Which::One(id.into_inner()))
        .await?
        .into_iter()
        .next()
        .ok_or(AppError::NotFound)?;
    let project = &state.settings.project_name;
    let tz = state.settings.timezone;
    let text = if shown.release.published_at.is_some() {
        feeds::publication_text(&shown.release, project, tz)
    } else {
        feeds::announcement_text(&shown.release, project, tz)
    };
    let context = minijinja::context! {
        release => view(&shown.release),
        advisories => shown.release.advisories,
        text,
    };
    state.pages.page(&viewer, "release.html", context)
}

/// The public release `id`, or the same 404 as for an id that was never used.
async fn public_release(state: &AppState, id: i64) -> Result<PublicRelease, AppError> {
    load(state, Which::One(id))
        .await?
        .into_iter()
        .next()
        .map(|s| s.release)
        .ok_or(AppError::NotFound)
}

fn site<'a>(state: &'a AppState, site_url: &'a str) -> Site<'a> {
    Site {
        project_name: &state.settings.project_name,
        list_name: &state.settings.list_name,
        site_url,
    }
}

/// `GET /releases/{id}/osv.json`: the release's OSV documents as one JSON array, one per
/// advisory. A release that is not public, or announced but not yet published, answers as one
/// that does not exist: its documents do not exist until the release time.
pub async fn osv(state: web::Data<AppState>, id: web::Path<i64>) -> Result<HttpResponse, AppError> {
    let release = public_release(&state, id.into_inner()).await?;
    let site_url = site_url(&state);
    let documents =
        advisory_formats::osv(&release, site(&state, &site_url)).ok_or(AppError::NotFound)?;
    Ok(HttpResponse::Ok().json(documents))
}

/// `GET /releases/{id}/osv/{cve}.json`: one advisory's OSV document; a CVE id that is not
/// among the release's advisories answers as a release that does not exist.
pub async fn osv_advisory(
    state: web::Data<AppState>,
    path: web::Path<(i64, String)>,
) -> Result<HttpResponse, AppError> {
    let (id, cve) = path.into_inner();
    let release = public_release(&state, id).await?;
    let site_url = site_url(&state);
    let document = advisory_formats::osv_for(&release, site(&state, &site_url), &cve)
        .ok_or(AppError::NotFound)?;
    Ok(HttpResponse::Ok().json(document))
}

/// `GET /releases/{id}/csaf.json`: the release as a CSAF 2.0 security advisory, under the same
/// rule as its OSV documents.
pub async fn csaf(
    state: web::Data<AppState>,
    id: web::Path<i64>,
) -> Result<HttpResponse, AppError> {
    let release = public_release(&state, id.into_inner()).await?;
    let site_url = site_url(&state);
    let document =
        advisory_formats::csaf(&release, site(&state, &site_url)).ok_or(AppError::NotFound)?;
    Ok(HttpResponse::Ok().json(document))
}

/// A cancelled release must drop out of readers promptly, so caches revalidate every time.
fn feed_response(content_type: &'static str, body: String) -> HttpResponse {
    HttpResponse::Ok()
        .content_type(content_type)
        .insert_header(("Cache-Control", "no-cache"))
        .body(body)
}

pub async fn atom(state: web::Data<AppState>) -> Result<HttpResponse, AppError> {
    let releases: Vec<PublicRelease> = load(&state, Which::All)
        .await?
        .into_iter()
        .map(|s| s.release)
        .collect();
    let site_url = site_url(&state);
    let updated = releases
        .iter()
        .flat_map(|r| [Some(r.announced_at), r.published_at])
        .flatten()
        .max()
        .unwrap_or_else(|| state.ctx.clock.now());
    let info = FeedInfo {
        title: state.settings.list_name.clone(),
        feed_url: format!("{site_url}/feed.atom"),
        site_url,
        updated,
        timezone: state.settings.timezone,
    };
    Ok(feed_response(
        "application/atom+xml; charset=utf-8",
        feeds::atom(&info, &releases),
    ))
}

pub async fn ics(state: web::Data<AppState>) -> Result<HttpResponse, AppError> {
    // Policy: only announced releases are confirmed, so the calendar shows nothing else.
    let releases: Vec<PublicRelease> = load(&state, Which::All)
        .await?
        .into_iter()
        .filter(|s| s.announced)
        .map(|s| s.release)
        .collect();
    let body = feeds::ics(
        &state.settings.project_name,
        &site_url(&state),
        &releases,
        state.ctx.clock.now(),
        state.settings.timezone,
    );
    Ok(feed_response("text/calendar; charset=utf-8", body))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Settings;
    use crate::web::pages::Pages;

    use crate::releases::visibility::test_fixtures::{advisories, release};

    const SITE: &str = "https://security.example.org";

    fn render(shown: &Shown) -> String {
        let settings = Settings::from_vars([("EDL_TIMEZONE", "Europe/Berlin")]).unwrap();
        let pages = Pages::new(&settings);
        let viewer = Viewer {
            user: None,
            csrf: String::new(),
        };
        let tz = settings.timezone;
        let text = feeds::publication_text(&shown.release, "Example", tz);
        let page = pages
            .render_for(
                &viewer,
                "release.html",
                minijinja::context! {
                    release => view(&shown.release),
                    advisories => shown.release.advisories,
                    text,
                },
            )
            .unwrap();
        let list = pages
            .render_for(
                &viewer,
                "releases.html",
                minijinja::context! { releases => vec![view(&shown.release)] },
            )
            .unwrap();
        format!("{page}\n{list}")
    }

    #[test]
    fn pages_before_publication_show_no_advisory_or_kind() {
        let shown =
            visibility::public_view(SITE, release(true, false, false), advisories()).unwrap();
        let html = render(&shown);
        assert!(!html.contains("CVE-"), "{html}");
        assert!(!html.contains("Authorization bypass"));
        assert!(!html.contains("third-party"));
        assert!(!html.contains("secret reason"));
        assert!(!html.contains("internal notes"));
        for expected in [
            "2026-12-08 16:00 UTC",
            "2026-12-08 17:00 CET",
            "Planned: pre-announced",
            "1.9, 1.8",
            "high",
            "/feed.atom",
            "/calendar.ics",
        ] {
            assert!(html.contains(expected), "{expected} missing");
        }
    }

    #[test]
    fn pages_after_publication_show_advisories_escaped() {
        let shown =
            visibility::public_view(SITE, release(true, true, false), advisories()).unwrap();
        let html = render(&shown);
        for expected in [
            "CVE-2026-1111",
            "CVE-2026-2222",
            "Header &lt;smuggling&gt;.",
            "&lt; 1.9.5",
            "Published",
        ] {
            assert!(html.contains(expected), "{expected} missing");
        }
        assert!(!html.contains("<smuggling>"));
    }
}
