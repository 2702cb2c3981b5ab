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
            Self::NotFound | Self::BadRequest(_) => {}
        }
        let message = self.public_message();
        let mut response = HttpResponse::build(self.status_code())
            .content_type("text/plain; charset=utf-8")
            .body(message.clone());
        response.extensions_mut().insert(PublicMessage(message));
        response
    }
}
