//! Where members find the list's OpenPGP key: `/openpgp.asc` for people, and the Web Key
//! Directory (draft-koch-openpgp-webkey-service) for mail clients that look a key up by the
//! From address, in its direct and advanced forms. Only the From address has a key here.

use actix_web::http::header;
use actix_web::{web, HttpResponse};

use crate::error::AppError;
use crate::openpgp::wkd::wkd_hash;
use crate::web::AppState;

/// How long a cache may keep the key: short, so a rotated key reaches members soon.
const CACHE_CONTROL: &str = "public, max-age=300";

/// `GET /openpgp.asc`: the public key, ASCII-armored.
pub async fn armored(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/pgp-keys")
        .insert_header((header::CACHE_CONTROL, CACHE_CONTROL))
        .insert_header((
            header::CONTENT_DISPOSITION,
            "inline; filename=\"openpgp.asc\"",
        ))
        .body(state.ctx.mailer.signer.public_armored().to_owned())
}

/// `GET /.well-known/openpgpkey/hu/{hash}` (direct method).
pub async fn direct_key(
    state: web::Data<AppState>,
    hash: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    key_for(&state, None, &hash)
}

/// `GET /.well-known/openpgpkey/policy` (direct method).
pub async fn direct_policy() -> HttpResponse {
    policy()
}

/// `GET /.well-known/openpgpkey/{domain}/hu/{hash}` (advanced method).
pub async fn advanced_key(
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, AppError> {
    let (domain, hash) = path.into_inner();
    key_for(&state, Some(&domain), &hash)
}

/// `GET /.well-known/openpgpkey/{domain}/policy` (advanced method).
pub async fn advanced_policy(
    state: web::Data<AppState>,
    domain: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    if !is_list_domain(&state, &domain) {
        return Err(AppError::NotFound);
    }
    Ok(policy())
}

/// The binary key when `hash` (and, for the advanced method, `domain`) names the From address;
/// 404 for anything else. The `?l=` parameter (the local part in clear) is accepted and not
/// needed: the hash decides.
fn key_for(state: &AppState, domain: Option<&str>, hash: &str) -> Result<HttpResponse, AppError> {
    if domain.is_some_and(|d| !is_list_domain(state, d)) {
        return Err(AppError::NotFound);
    }
    let expected = wkd_hash(state.settings.mail_from.email.user()).ok_or(AppError::NotFound)?;
    if !hash.eq_ignore_ascii_case(&expected) {
        return Err(AppError::NotFound);
    }
    Ok(HttpResponse::Ok()
        .content_type("application/octet-stream")
        .insert_header((header::CACHE_CONTROL, CACHE_CONTROL))
        // The draft asks for this, so web-based mail clients can fetch the key.
        .insert_header((header::ACCESS_CONTROL_ALLOW_ORIGIN, "*"))
        .body(state.ctx.mailer.signer.public_binary().to_vec()))
}

/// The policy file: its presence says the directory is served; it states no policy flags.
fn policy() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/plain; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, CACHE_CONTROL))
        .insert_header((header::ACCESS_CONTROL_ALLOW_ORIGIN, "*"))
        .body("")
}

fn is_list_domain(state: &AppState, domain: &str) -> bool {
    state
        .settings
        .mail_from
        .email
        .domain()
        .eq_ignore_ascii_case(domain)
}
