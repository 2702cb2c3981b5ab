//! The public side of security releases: the list at `/releases`, one release's page, the Atom
//! feed and the ICS calendar. A release is public once it is announced or published (and not
//! cancelled); until it is published the public learns only the pre-announcement facts.

use std::cmp::Reverse;

use actix_web::{web, HttpResponse};
use chrono::{DateTime, NaiveDateTime, SecondsFormat, Utc};
use chrono_tz::Tz;
use serde::Serialize;

use crate::db::{self, DbError};
use crate::error::AppError;
use crate::releases::feeds::{self, FeedInfo, PublicAdvisory, PublicRelease};
use crate::releases::release::{self, Advisory, Release, SEVERITIES};
use crate::web::auth::Viewer;
use crate::web::AppState;

/// A release as the public may see it, with the advisory rows of its page. Only
/// [`public_release`] makes one, so the advisories are empty until publication.
struct Shown {
    release: PublicRelease,
    /// The ICS calendar lists announced releases only; `release.announced_at` cannot tell, as it
    /// falls back to the publication time.
    announced: bool,
    advisories: Vec<AdvisoryRow>,
}

/// One advisory of a published release, as its page shows it. Never anything about patches.
#[derive(Serialize)]
struct AdvisoryRow {
    cve_id: String,
    severity: String,
    summary: String,
    affected_versions: String,
    fixed_versions: String,
}

/// What the pages print about a release. Built from a [`PublicRelease`] only, and without its
/// kind: "third-party" would tell the world an upstream has an embargo running.
#[derive(Serialize)]
struct ReleaseView {
    title: String,
    path: String,
    published: bool,
    state: &'static str,
    release_iso: String,
    release_utc: String,
    release_local: String,
    announced_utc: String,
    announced_local: String,
    published_utc: Option<String>,
    published_local: Option<String>,
    issue_count: usize,
    highest_severity: Option<String>,
    release_lines: String,
}

/// Public knowledge: announced or published, and not cancelled. Anything else is embargoed,
/// and is treated exactly like a release that does not exist.
fn is_public(release: &Release) -> bool {
    release.cancelled_at.is_none()
        && (release.announced_at.is_some() || release.published_at.is_some())
}

/// The database keeps UTC without a zone.
fn utc(at: NaiveDateTime) -> DateTime<Utc> {
    at.and_utc()
}

/// `SEVERITIES` runs from the most severe down, so the first one any advisory has is the highest.
fn highest_severity(advisories: &[Advisory]) -> Option<String> {
    SEVERITIES
        .iter()
        .find(|s| advisories.iter().any(|a| a.severity == **s))
        .map(|s| (*s).to_owned())
}

/// The only way from stored rows to what the public sees. It refuses a release that is not
/// public, and it keeps the advisories (and so CVE ids and summaries) only once the release is
/// published; before that they give just their count and highest severity, which the
/// pre-announcement states anyway. Taking the advisories by value means a caller has nothing
/// left to leak.
fn public_release(site_url: &str, release: Release, advisories: Vec<Advisory>) -> Option<Shown> {
    if !is_public(&release) {
        return None;
    }
    let published_at = release.published_at.map(utc);
    // A release is always announced by the time it is published; should the record say
    // otherwise, it went public when it was published.
    let announced_at = release.announced_at.or(release.published_at).map(utc)?;
    let issue_count = advisories.len();
    let highest_severity = highest_severity(&advisories);
    let advisories = if published_at.is_some() {
        advisories
    } else {
        Vec::new()
    };
    let rows = advisories
        .iter()
        .map(|a| AdvisoryRow {
            cve_id: a.cve_id.clone(),
            severity: a.severity.clone(),
            summary: a.summary.clone(),
            affected_versions: a.affected_versions.clone(),
            fixed_versions: a.fixed_versions.clone(),
        })
        .collect();
    let public_advisories = advisories
        .into_iter()
        .map(|a| PublicAdvisory {
            cve_id: a.cve_id,
            severity: a.severity,
            summary: a.summary,
            fixed_versions: a.fixed_versions,
        })
        .collect();
    Some(Shown {
        announced: release.announced_at.is_some(),
        release: PublicRelease {
            id: release.id,
            url: format!("{site_url}/releases/{}", release.id),
            release_lines: release.lines(),
            title: release.title,
            kind: release.kind,
            release_at: utc(release.release_at),
            announced_at,
            published_at,
            issue_count,
            highest_severity,
            advisories: public_advisories,
        },
        advisories: rows,
    })
}

/// The configured base URL without its trailing slash, as the feeds expect it.
fn site_url(state: &AppState) -> String {
    state
        .settings
        .base_url
        .as_str()
        .trim_end_matches('/')
        .to_owned()
}

enum Which {
    All,
    One(i64),
}

/// Loads the public releases (all, or the one asked for if it is public), newest first.
/// Advisories are read only for releases already known to be public.
async fn load(state: &AppState, which: Which) -> Result<Vec<Shown>, AppError> {
    let site = site_url(state);
    let mut shown = db::run(&state.pool, move |conn| {
        let releases = match which {
            Which::All => release::list(conn)?,
            Which::One(id) => release::find(conn, id)?.into_iter().collect(),
        };
        let mut shown = Vec::new();
        for r in releases.into_iter().filter(is_public) {
            let advisories = release::advisories_of(conn, r.id)?;
            shown.extend(public_release(&site, r, advisories));
        }
        Ok::<_, DbError>(shown)
    })
    .await?;
    shown.sort_by_key(|s| Reverse((s.release.release_at, s.release.id)));
    Ok(shown)
}

fn utc_text(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%d %H:%M UTC").to_string()
}

fn local_text(at: DateTime<Utc>, tz: Tz) -> String {
    at.with_timezone(&tz)
        .format("%Y-%m-%d %H:%M %Z")
        .to_string()
}

fn view(release: &PublicRelease, tz: Tz) -> ReleaseView {
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
        release_iso: release
            .release_at
            .to_rfc3339_opts(SecondsFormat::Secs, true),
        release_utc: utc_text(release.release_at),
        release_local: local_text(release.release_at, tz),
        announced_utc: utc_text(release.announced_at),
        announced_local: local_text(release.announced_at, tz),
        published_utc: release.published_at.map(utc_text),
        published_local: release.published_at.map(|at| local_text(at, tz)),
        issue_count: release.issue_count,
        highest_severity: release.highest_severity.clone(),
        release_lines: release.release_lines.join(", "),
    }
}

pub async fn list(state: web::Data<AppState>, viewer: Viewer) -> Result<HttpResponse, AppError> {
    let tz = state.settings.timezone;
    let releases: Vec<ReleaseView> = load(&state, Which::All)
        .await?
        .iter()
        .map(|s| view(&s.release, tz))
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
    let text = if shown.release.published_at.is_some() {
        feeds::publication_text(&shown.release, project)
    } else {
        feeds::announcement_text(&shown.release, project)
    };
    let context = minijinja::context! {
        release => view(&shown.release, state.settings.timezone),
        advisories => shown.advisories,
        text,
    };
    state.pages.page(&viewer, "release.html", context)
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
        .unwrap_or_else(Utc::now);
    let info = FeedInfo {
        title: state.settings.list_name.clone(),
        feed_url: format!("{site_url}/feed.atom"),
        site_url,
        updated,
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
        Utc::now(),
    );
    Ok(feed_response("text/calendar; charset=utf-8", body))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Settings;
    use crate::web::pages::Pages;

    fn at(s: &str) -> NaiveDateTime {
        NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M").unwrap()
    }

    fn release(announced: bool, published: bool, cancelled: bool) -> Release {
        Release {
            id: 7,
            kind: "third-party".into(),
            title: "Security release 1.9.5, 1.8.6".into(),
            status: "planned".into(),
            revision: 1,
            release_at: at("2026-12-08 16:00"),
            disclosure_at: Some(at("2026-11-24 16:00")),
            announce_at: Some(at("2026-11-24 16:00")),
            upstream_id: Some(1),
            release_lines: "1.9, 1.8".into(),
            members_may_deploy: false,
            notes: "internal notes".into(),
            created_by: 1,
            approved_by: Some(2),
            approved_at: Some(at("2026-11-20 10:00")),
            disclosed_at: announced.then(|| at("2026-11-24 16:00")),
            announced_at: announced.then(|| at("2026-11-24 16:00")),
            published_at: published.then(|| at("2026-12-08 16:00")),
            created_at: at("2026-11-01 10:00"),
            updated_at: at("2026-11-20 10:00"),
            approved_revision: Some(1),
            notice_hours: 0,
            non_security_exception: None,
            cancelled_at: cancelled.then(|| at("2026-11-30 10:00")),
            cancel_reason: cancelled.then(|| "secret reason".into()),
        }
    }

    fn advisories() -> Vec<Advisory> {
        [
            ("CVE-2026-1111", "medium", "Header <smuggling>."),
            ("CVE-2026-2222", "high", "Authorization bypass."),
        ]
        .into_iter()
        .enumerate()
        .map(|(i, (cve, severity, summary))| Advisory {
            id: i64::try_from(i).unwrap(),
            release_id: 7,
            cve_id: cve.into(),
            severity: severity.into(),
            cvss_vector: String::new(),
            summary: summary.into(),
            affected_versions: "< 1.9.5".into(),
            fixed_versions: "1.9.5".into(),
            created_at: at("2026-11-02 10:00"),
        })
        .collect()
    }

    const SITE: &str = "https://security.example.org";

    #[test]
    fn embargoed_and_cancelled_releases_are_not_public() {
        assert!(public_release(SITE, release(false, false, false), advisories()).is_none());
        assert!(public_release(SITE, release(true, false, true), advisories()).is_none());
        assert!(public_release(SITE, release(true, true, true), advisories()).is_none());
    }

    #[test]
    fn announced_release_gives_facts_but_no_advisories() {
        let shown = public_release(SITE, release(true, false, false), advisories()).unwrap();
        assert!(shown.announced);
        assert!(shown.advisories.is_empty());
        assert!(shown.release.advisories.is_empty());
        assert_eq!(shown.release.issue_count, 2);
        assert_eq!(shown.release.highest_severity.as_deref(), Some("high"));
        assert_eq!(shown.release.release_lines, ["1.9", "1.8"]);
        assert_eq!(shown.release.url, "https://security.example.org/releases/7");
    }

    #[test]
    fn published_release_carries_its_advisories() {
        let shown = public_release(SITE, release(true, true, false), advisories()).unwrap();
        assert_eq!(shown.advisories.len(), 2);
        assert_eq!(shown.release.advisories.len(), 2);
        assert_eq!(shown.advisories[0].affected_versions, "< 1.9.5");
    }

    #[test]
    fn published_without_announcement_counts_as_announced_then_but_not_for_the_calendar() {
        let shown = public_release(SITE, release(false, true, false), Vec::new()).unwrap();
        assert!(!shown.announced);
        assert_eq!(shown.release.announced_at, utc(at("2026-12-08 16:00")));
        assert_eq!(shown.release.highest_severity, None);
    }

    fn render(shown: &Shown) -> String {
        let settings = Settings::from_vars([("EDL_TIMEZONE", "Europe/Berlin")]).unwrap();
        let pages = Pages::new(&settings);
        let viewer = Viewer {
            user: None,
            csrf: String::new(),
        };
        let tz = settings.timezone;
        let text = feeds::publication_text(&shown.release, "Example");
        let page = pages
            .render_for(
                &viewer,
                "release.html",
                minijinja::context! {
                    release => view(&shown.release, tz),
                    advisories => shown.advisories,
                    text,
                },
            )
            .unwrap();
        let list = pages
            .render_for(
                &viewer,
                "releases.html",
                minijinja::context! { releases => vec![view(&shown.release, tz)] },
            )
            .unwrap();
        format!("{page}\n{list}")
    }

    #[test]
    fn pages_before_publication_show_no_advisory_or_kind() {
        let shown = public_release(SITE, release(true, false, false), advisories()).unwrap();
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
        let shown = public_release(SITE, release(true, true, false), advisories()).unwrap();
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
