//! The web side: page rendering, the error pages and security headers every response gets, and
//! one module per resource. The route table itself lives in `startup.rs`.

pub mod account;
pub mod admin;
pub mod admin_members;
pub mod admin_outbox;
pub mod api;
pub mod api_tokens;
pub mod apply;
pub mod assets;
pub mod auth;
pub mod confirm;
pub mod errors;
pub mod form;
pub mod health;
pub mod home;
pub mod login;
pub mod manage_releases;
pub mod member_alias;
pub mod member_key;
pub mod member_page;
pub mod openpgp;
pub mod pages;
pub mod public;
pub mod ratelimit;
pub mod receipts;
pub mod releases_public;
pub mod review;
pub mod second_factor;

use std::sync::Arc;

use actix_web::cookie::Key;

use crate::accounts::password::Hasher;
use crate::accounts::second_factor::SecretBox;
use crate::accounts::signin::SignInContext;
use crate::app::Context;
use crate::config::Settings;
use crate::db::DbPool;
use crate::mail::Mailer;
use auth::AccessTable;
use pages::Pages;
use ratelimit::RateLimiter;

/// What every handler may use; built once in `Application::build`.
pub struct AppState {
    pub settings: Arc<Settings>,
    pub pool: DbPool,
    pub pages: Pages,
    pub mailer: Mailer,
    pub access: AccessTable,
    pub limiter: RateLimiter,
    pub cookie_key: Key,
    /// Seals the TOTP secrets at rest; derived from the cookie key.
    pub second_factor: SecretBox,
    /// The WebAuthn relying party; `None` when `EDL_BASE_URL` has no host name.
    pub passkeys: Option<crate::accounts::passkeys::RelyingParty>,
    pub hasher: Hasher,
    /// The workflow context, shared with the scheduler.
    pub ctx: Context,
}

impl AppState {
    pub fn sign_in_context(&self) -> SignInContext<'_> {
        SignInContext {
            pool: &self.pool,
            hasher: &self.hasher,
            security: &self.settings.security,
            clock: &self.ctx.clock,
        }
    }
}

/// The policy of the two second-factor pages: the same, plus the site's own passkey script
/// and its requests to the site.
pub const PASSKEY_PAGE_POLICY: &str =
    "default-src 'none'; style-src 'self'; img-src 'self' data:; script-src 'self'; \
     connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// The Content-Security-Policy of every page: no script at all, no framing, forms only to us.
pub const CONTENT_SECURITY_POLICY: &str =
    "default-src 'none'; style-src 'self'; img-src 'self' data:; \
     form-action 'self'; frame-ancestors 'none'; base-uri 'none'";
