//! `/`: what the list is and when the next security release and its early disclosure fall.

use actix_web::{web, HttpResponse};
use serde::Serialize;

use crate::error::AppError;
use crate::releases::calendar::PatchTuesday;
use crate::releases::upstream::ENVOY_POLICY_URL;
use crate::web::auth::Viewer;
use crate::web::AppState;

#[derive(Serialize)]
struct HomePage {
    next_release: Option<PatchTuesday>,
    upcoming: Vec<PatchTuesday>,
    envoy_policy_url: &'static str,
}

pub async fn home(state: web::Data<AppState>, viewer: Viewer) -> Result<HttpResponse, AppError> {
    let calendar = state.settings.calendar();
    let now = state.ctx.clock.now();
    let next_release = calendar.next_release(now);
    let upcoming = match &next_release {
        Some(next) => {
            use chrono::Datelike;
            let (y, m) = (next.patch_tuesday.year(), next.patch_tuesday.month());
            calendar.months_from(y, m, 4).into_iter().skip(1).collect()
        }
        None => Vec::new(),
    };
    state.pages.page(
        &viewer,
        "home.html",
        HomePage {
            next_release,
            upcoming,
            envoy_policy_url: ENVOY_POLICY_URL,
        },
    )
}
