//! The web side: page rendering, the error pages and security headers every response gets, and
//! one module per resource. The route table itself lives in `startup.rs`.

pub mod assets;
pub mod errors;
pub mod health;
pub mod home;
pub mod pages;

use std::sync::Arc;

use crate::config::Settings;
use crate::db::DbPool;
use crate::mail::Mailer;
use pages::Pages;

/// What every handler may use; built once in `Application::build`.
pub struct AppState {
    pub settings: Arc<Settings>,
    pub pool: DbPool,
    pub pages: Pages,
    pub mailer: Mailer,
}

/// The Content-Security-Policy of every page: no script at all, no framing, forms only to us.
pub const CONTENT_SECURITY_POLICY: &str =
    "default-src 'none'; style-src 'self'; img-src 'self' data:; \
     form-action 'self'; frame-ancestors 'none'; base-uri 'none'";
