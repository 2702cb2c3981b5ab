//! `/`: what the list is, which security releases are pre-announced, and what the calendar
//! says of the coming Patch Tuesdays. By the list's own rule a Patch Tuesday carries a security
//! release only if it was pre-announced by its early-disclosure moment, so a month whose moment
//! passed without one is said to have none, rather than shown as the next release.

use actix_web::{web, HttpResponse};
use serde::Serialize;

use crate::db::{self, DbError};
use crate::error::AppError;
use crate::releases::calendar::{Calendar, PatchTuesday};
use crate::releases::release;
use crate::releases::upstream::ENVOY_POLICY_URL;
use crate::releases::visibility::{self, PublicRelease};
use crate::web::auth::Viewer;
use crate::web::AppState;

#[derive(Serialize)]
struct HomePage {
    /// Pre-announced and not yet public, soonest first.
    announced: Vec<PublicRelease>,
    /// The coming Patch Tuesday whose early-disclosure moment passed without a
    /// pre-announcement: there is no security release on it.
    without_release: Option<PatchTuesday>,
    /// The next Patch Tuesday that may still carry a security release, and its dates.
    next_open: Option<PatchTuesday>,
    /// The Patch Tuesdays after it.
    upcoming: Vec<PatchTuesday>,
    envoy_policy_url: &'static str,
}

/// What the home page says of the calendar at `now`, given the pre-announced releases.
fn schedule(
    calendar: &Calendar,
    announced: &[PublicRelease],
    now: chrono::DateTime<chrono::Utc>,
) -> (
    Option<PatchTuesday>,
    Option<PatchTuesday>,
    Vec<PatchTuesday>,
) {
    let on = |pt: &PatchTuesday| {
        announced.iter().any(|r| {
            calendar.on(r.release_at.with_timezone(&calendar.timezone).date_naive())
                == Some(pt.clone())
        })
    };
    let without_release = calendar
        .next_release(now)
        .filter(|pt| pt.early_disclosure_at <= now && !on(pt));
    let next_open = calendar.next_with_lead_time(now);
    let upcoming = match &next_open {
        Some(next) => {
            use chrono::Datelike;
            let (y, m) = (next.patch_tuesday.year(), next.patch_tuesday.month());
            calendar.months_from(y, m, 4).into_iter().skip(1).collect()
        }
        None => Vec::new(),
    };
    (without_release, next_open, upcoming)
}

pub async fn home(state: web::Data<AppState>, viewer: Viewer) -> Result<HttpResponse, AppError> {
    let site = state
        .settings
        .base_url
        .as_str()
        .trim_end_matches('/')
        .to_owned();
    let announced = db::run(&state.pool, move |conn| {
        let upcoming = release::announced_upcoming(conn)?;
        let ids: Vec<i64> = upcoming.iter().map(|r| r.id).collect();
        let mut advisories = release::advisories_by_release(conn, &ids)?;
        let mut shown = Vec::new();
        for r in upcoming {
            let of_release = advisories.remove(&r.id).unwrap_or_default();
            shown.extend(visibility::public_view(&site, r, of_release).map(|s| s.release));
        }
        Ok::<_, DbError>(shown)
    })
    .await?;
    let calendar = state.settings.calendar();
    let (without_release, next_open, upcoming) =
        schedule(&calendar, &announced, state.ctx.clock.now());
    state.pages.page(
        &viewer,
        "home.html",
        HomePage {
            announced,
            without_release,
            next_open,
            upcoming,
            envoy_policy_url: ENVOY_POLICY_URL,
        },
    )
}
