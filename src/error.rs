//! The error policy, in one place: how every workflow's error reaches a person.
//!
//! - A user sees a short sentence saying what happened and what to do, never an internal detail.
//! - A form whose values are wrong answers 422 and is shown again with every value typed and a
//!   message beside each bad field ([`Refusal::Invalid`]).
//! - A request that is well formed but cannot be done in the current state (approving an
//!   approved release, deciding a decided application) answers 409 with the reason
//!   ([`Refusal::Conflict`]); pages show themselves again with the reason.
//! - 404 for anything that does not exist *or that the caller may not know exists*.
//! - 400 for input that cannot be understood at all (an unreadable form or upload).
//! - 503 when the database is unreachable or the pool is exhausted: the request may be retried.
//! - 500 for everything else.
//!
//! Each workflow's error type is turned into a [`Refusal`] or an [`AppError`] here and nowhere
//! else. Unavailable and internal errors are logged here, once, with their cause; the others are
//! the caller's doing and are not logged. HTML requests get the error page (see `web::errors`).

use std::collections::BTreeMap;

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};

use crate::accounts::AccountError;
use crate::db::DbError;
use crate::mail::outbox::SendAgainError;
use crate::membership::keys::KeyError as MemberKeyError;
use crate::membership::member_edit::EditError as MemberEditError;
use crate::membership::FlowError;
use crate::releases::release::ReleaseError;

/// One message per form field, keyed by the field's name.
pub type FieldErrors = BTreeMap<String, String>;

/// A workflow's refusal that the page which asked shows to the person, with what they typed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// The values typed are not usable: one message per field (422).
    Invalid(FieldErrors),
    /// The request is understood but cannot be done now (409): the reason, and where it
    /// concerns a field (a domain that is already a member), a message beside that field.
    Conflict { reason: String, fields: FieldErrors },
}

impl Refusal {
    pub fn conflict(reason: impl Into<String>) -> Self {
        Self::Conflict {
            reason: reason.into(),
            fields: FieldErrors::new(),
        }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            Self::Invalid(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Self::Conflict { .. } => StatusCode::CONFLICT,
        }
    }

    /// Every message, for a banner at the top of the page.
    pub fn message(&self) -> String {
        match self {
            Self::Invalid(errors) => errors.values().cloned().collect::<Vec<_>>().join(" "),
            Self::Conflict { reason, .. } => reason.clone(),
        }
    }

    /// The messages that belong beside a field.
    pub fn field_errors(&self) -> FieldErrors {
        match self {
            Self::Invalid(fields) | Self::Conflict { fields, .. } => fields.clone(),
        }
    }

    /// The message for the top of the page when no field carries it.
    pub fn banner(&self) -> Option<String> {
        match self {
            Self::Conflict { reason, fields } if fields.is_empty() => Some(reason.clone()),
            _ => None,
        }
    }
}

/// A workflow error: either a refusal the page shows, or an error answered on its own.
pub trait WorkflowError {
    fn into_response(self) -> Result<Refusal, AppError>;
}

impl WorkflowError for ReleaseError {
    fn into_response(self) -> Result<Refusal, AppError> {
        match self {
            ReleaseError::Invalid(errors) => Ok(Refusal::Invalid(errors)),
            ReleaseError::Refused(reason) => Ok(Refusal::conflict(reason)),
            ReleaseError::NotFound => Err(AppError::NotFound),
            ReleaseError::Mail(mail) => Err(AppError::internal(mail)),
            ReleaseError::Db(db) => Err(db.into()),
        }
    }
}

impl WorkflowError for FlowError {
    fn into_response(self) -> Result<Refusal, AppError> {
        match self {
            FlowError::NotFound => Err(AppError::NotFound),
            FlowError::Decided => Ok(Refusal::conflict(
                "This application has already been decided.",
            )),
            FlowError::Refused(reason) => Ok(Refusal::conflict(reason)),
            FlowError::AlreadyMember(ref domain) => Ok(Refusal::Conflict {
                reason: self.to_string(),
                fields: FieldErrors::from([(
                    "org_domains".to_owned(),
                    format!(
                        "{domain} is already a member of the list; there is no need to apply again."
                    ),
                )]),
            }),
            FlowError::AlreadyOpen(ref domain) => Ok(Refusal::Conflict {
                reason: self.to_string(),
                fields: FieldErrors::from([(
                    "org_domains".to_owned(),
                    format!(
                        "An application for {domain} is already open. Use the private status link sent with it to edit it, or wait for its decision."
                    ),
                )]),
            }),
            FlowError::Mail(mail) => Err(AppError::internal(mail)),
            FlowError::Db(db) => Err(db.into()),
        }
    }
}

impl WorkflowError for AccountError {
    fn into_response(self) -> Result<Refusal, AppError> {
        match self {
            AccountError::NotFound | AccountError::NoSuchEmail(_) => Err(AppError::NotFound),
            AccountError::Exists(ref email) => Ok(Refusal::Conflict {
                reason: self.to_string(),
                fields: FieldErrors::from([(
                    "email".to_owned(),
                    format!("An account with the email {email} already exists."),
                )]),
            }),
            AccountError::Refused(_) => Ok(Refusal::conflict(self.to_string())),
            AccountError::Db(db) => Err(db.into()),
        }
    }
}

impl WorkflowError for MemberKeyError {
    fn into_response(self) -> Result<Refusal, AppError> {
        match self {
            MemberKeyError::NotFound => Err(AppError::NotFound),
            MemberKeyError::Removed | MemberKeyError::Void(_) => {
                Ok(Refusal::conflict(self.to_string()))
            }
            MemberKeyError::Unusable(why) => Ok(Refusal::Invalid(FieldErrors::from([(
                "pgp_key".to_owned(),
                why,
            )]))),
            MemberKeyError::WrongCode { .. } => Ok(Refusal::Invalid(FieldErrors::from([(
                "code".to_owned(),
                self.to_string(),
            )]))),
            MemberKeyError::Mail(mail) => Err(AppError::internal(mail)),
            MemberKeyError::Db(db) => Err(db.into()),
        }
    }
}

impl WorkflowError for SendAgainError {
    fn into_response(self) -> Result<Refusal, AppError> {
        match self {
            SendAgainError::NotFound => Err(AppError::NotFound),
            SendAgainError::NotFailed { .. } => Ok(Refusal::conflict(self.to_string())),
            SendAgainError::Db(db) => Err(db.into()),
        }
    }
}

impl WorkflowError for MemberEditError {
    fn into_response(self) -> Result<Refusal, AppError> {
        match self {
            MemberEditError::NotFound => Err(AppError::NotFound),
            MemberEditError::Refused(reason) => Ok(Refusal::conflict(reason)),
            MemberEditError::Invalid(fields) => Ok(Refusal::Invalid(fields)),
            MemberEditError::AliasTaken { .. } => Ok(Refusal::Conflict {
                reason: self.to_string(),
                fields: FieldErrors::from([(
                    "security_alias".to_owned(),
                    format!("{self} Each member has an alias of its own; choose another address."),
                )]),
            }),
            MemberEditError::Mail(mail) => Err(AppError::internal(mail)),
            MemberEditError::Db(db) => Err(db.into()),
        }
    }
}

impl From<Refusal> for AppError {
    fn from(refusal: Refusal) -> Self {
        match refusal {
            Refusal::Invalid(_) => Self::Invalid(refusal.message()),
            Refusal::Conflict { reason, .. } => Self::Conflict(reason),
        }
    }
}

/// For handlers with no page to show a refusal on: it becomes the error page.
macro_rules! workflow_into_app_error {
    ($($ty:ty),*) => {$(
        impl From<$ty> for AppError {
            fn from(error: $ty) -> Self {
                match error.into_response() {
                    Ok(refusal) => refusal.into(),
                    Err(error) => error,
                }
            }
        }
    )*};
}

workflow_into_app_error!(
    ReleaseError,
    FlowError,
    AccountError,
    MemberKeyError,
    MemberEditError
);

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("not found")]
    NotFound,
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Invalid(String),
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
            Self::BadRequest(reason) | Self::Invalid(reason) => reason.clone(),
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
            Self::Invalid(_) => StatusCode::UNPROCESSABLE_ENTITY,
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
