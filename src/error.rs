//! The error policy of the web layer, in one place.
//!
//! - A user sees a short sentence saying what happened and what to do, never an internal detail.
//! - 404 for anything that does not exist *or that the caller may not know exists*.
//! - 400 for input that cannot be understood, with the reason (forms re-render instead, with a
//!   message per field, and never reach this type).
//! - 503 when the database is unreachable or the pool is exhausted: the request may be retried.
//! - 500 for everything else.
//!
//! Unavailable and internal errors are logged here, once, with their cause; the others are the
//! caller's doing and are not logged. HTML requests get the error page (see `web::errors`).

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};

use crate::db::DbError;

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("not found")]
    NotFound,
    #[error("{0}")]
    BadRequest(String),
    #[error("sign-in required")]
    SignInRequired,
    #[error("forbidden: {0}")]
    Forbidden(String),
    #[error("missing or wrong CSRF token")]
    Csrf,
    #[error("conflict: {0}")]
    Conflict(String),
    #[error("too many requests; retry after {retry_after} s")]
    TooManyRequests { retry_after: u64 },
    #[error("service unavailable: {0}")]
    Unavailable(String),
    #[error("internal error: {0}")]
    Internal(String),
}

/// The sentence a user is shown, carried to the error page renderer.
#[derive(Debug, Clone)]
pub struct PublicMessage(pub String);

impl AppError {
    pub fn internal(error: impl std::fmt::Display) -> Self {
        Self::Internal(error.to_string())
    }

    fn public_message(&self) -> String {
        match self {
            Self::NotFound => "There is nothing at this address.".to_owned(),
            Self::BadRequest(reason) => reason.clone(),
            Self::SignInRequired => "Sign in first, then try again.".to_owned(),
            Self::Forbidden(reason) | Self::Conflict(reason) => reason.clone(),
            Self::Csrf => "This form could not be accepted: its security token is missing or does not \
                 match this browser. That happens when a page was open for a long time, cookies are \
                 blocked, or the form was sent from another site. Go back, reload the page and send \
                 it again."
                .to_owned(),
            Self::TooManyRequests { retry_after } => format!(
                "Too many requests from your address. Please wait {} and try again.",
                wait_text(*retry_after)
            ),
            Self::Unavailable(_) => {
                "The service cannot reach its database right now. Please try again in a minute."
                    .to_owned()
            }
            Self::Internal(_) => {
                "Something went wrong on our side. It has been logged; please try again.".to_owned()
            }
        }
    }
}

fn wait_text(seconds: u64) -> String {
    match seconds {
        0..=1 => "a second".to_owned(),
        2..=89 => format!("{seconds} seconds"),
        _ => format!("{} minutes", seconds.div_ceil(60)),
    }
}

impl From<DbError> for AppError {
    fn from(error: DbError) -> Self {
        match error {
            DbError::Pool(_) | DbError::Connect { .. } => Self::Unavailable(error.to_string()),
            DbError::Query(diesel::result::Error::NotFound) => Self::NotFound,
            other => Self::Internal(other.to_string()),
        }
    }
}

impl From<minijinja::Error> for AppError {
    fn from(error: minijinja::Error) -> Self {
        Self::Internal(format!("page template: {error:#}"))
    }
}

impl ResponseError for AppError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::SignInRequired => StatusCode::UNAUTHORIZED,
            Self::Forbidden(_) | Self::Csrf => StatusCode::FORBIDDEN,
            Self::Conflict(_) => StatusCode::CONFLICT,
            Self::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        match self {
            Self::Unavailable(cause) => {
                tracing::warn!(%cause, "Request failed: database unavailable.")
            }
            Self::Internal(cause) => {
                tracing::error!(%cause, "Request failed with an internal error.")
            }
            _ => {}
        }
        let message = self.public_message();
        let mut builder = HttpResponse::build(self.status_code());
        if let Self::TooManyRequests { retry_after } = self {
            builder.insert_header(("Retry-After", retry_after.to_string()));
        }
        let mut response = builder
            .content_type("text/plain; charset=utf-8")
            .body(message.clone());
        response.extensions_mut().insert(PublicMessage(message));
        response
    }
}
