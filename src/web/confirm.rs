//! The page that asks before a destructive action (removing a member, disabling an account,
//! resetting a password, cancelling a release): what will happen, and a form that posts to the
//! action with `confirm=yes` and, when the action takes one, a reason. It works without
//! JavaScript; the action's POST does nothing without the field, so a stray or forged post of
//! an older form only shows the page again.

use actix_web::http::StatusCode;
use actix_web::HttpResponse;
use serde::Serialize;

use crate::error::AppError;
use crate::web::auth::Viewer;
use crate::web::AppState;

/// The value of the `confirm` field that the page's form sends.
pub const CONFIRMED: &str = "yes";

/// Whether a posted `confirm` field came from the confirmation page.
pub fn confirmed(field: &str) -> bool {
    field == CONFIRMED
}

/// Said when an action was posted without going through its page.
pub const NOT_CONFIRMED: &str =
    "Nothing was done yet: read what will happen, then confirm it on this page.";

/// What the page shows.
#[derive(Debug, Serialize)]
pub struct ConfirmPage {
    pub title: String,
    pub summary: String,
    pub consequences: Vec<String>,
    /// Where the form posts.
    pub action: String,
    pub button: String,
    /// The reason typed so far, when the action asks for one.
    pub reason: Option<String>,
    pub reason_label: String,
    /// The message beside the reason field.
    pub reason_error: Option<String>,
    /// A message about the whole action (not confirmed, no longer possible).
    pub error: Option<String>,
    /// Where the way back leads, and what it says ("Cancel", "Keep it").
    pub back: String,
    pub back_label: String,
    /// False when the action can no longer be done: the page says why, without the form.
    pub can_act: bool,
}

pub fn show(
    state: &AppState,
    viewer: &Viewer,
    status: StatusCode,
    page: ConfirmPage,
) -> Result<HttpResponse, AppError> {
    state
        .pages
        .page_with_status(status, viewer, "confirm_action.html", page)
}
