//! The second factor on the web: the code page after the password (and for step-up), the
//! account's own setup page (TOTP with a QR code, recovery codes shown once), and the admin's
//! reset. The rules are in `accounts::second_factor`; where a code is asked for is the
//! guard's decision (`web::auth`).

use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};

use crate::accounts::passkeys::{self, PasskeyError, PasskeyInfo};
use crate::accounts::second_factor::{self, Checked, CodeAttempt, Confirmed, Enrolment, Status};
use crate::accounts::session::CurrentUser;
use crate::db;
use crate::error::AppError;
use crate::web::auth::{
    client_ip, safe_next, AnySession, CsrfForm, CsrfJson, EmptyForm, SignedIn, Viewer,
};
use crate::web::form::see_other;
use crate::web::{AppState, PASSKEY_PAGE_POLICY};

#[derive(Debug, Deserialize)]
pub struct CodeQuery {
    next: Option<String>,
    step_up: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct CodeForm {
    #[serde(default)]
    code: String,
    next: Option<String>,
    step_up: Option<String>,
}

#[derive(Serialize)]
struct CodePage<'a> {
    next: &'a str,
    step_up: bool,
    error: Option<String>,
    /// The account has a passkey and the site can use them: the page offers it.
    passkey: bool,
    /// The account has a TOTP authenticator: the page asks for its code.
    totp: bool,
}

/// A page with the passkey script: its policy lets the site's own script run.
fn with_passkey_script(mut response: HttpResponse) -> Result<HttpResponse, AppError> {
    response.headers_mut().insert(
        header::CONTENT_SECURITY_POLICY,
        header::HeaderValue::from_static(PASSKEY_PAGE_POLICY),
    );
    Ok(response)
}

/// The answer of the passkey routes on a site that cannot offer them.
fn not_offered() -> HttpResponse {
    json_error(
        StatusCode::NOT_FOUND,
        "Passkeys are not offered by this site: EDL_BASE_URL needs a host name.",
    )
}

fn json_error(status: StatusCode, message: &str) -> HttpResponse {
    HttpResponse::build(status).json(serde_json::json!({ "error": message }))
}

/// `GET /login/second-factor`: the code form, after the password or for step-up.
pub async fn code_form(
    state: web::Data<AppState>,
    viewer: Viewer,
    session: Option<AnySession>,
    query: web::Query<CodeQuery>,
) -> Result<HttpResponse, AppError> {
    let next = safe_next(query.next.as_deref());
    match session {
        None => Ok(see_other("/login")),
        Some(AnySession(user)) if !user.has_second_factor => Ok(see_other(&next)),
        Some(AnySession(user)) => {
            let status = status(&state, user.account_id).await?;
            with_passkey_script(state.pages.page(
                &viewer,
                "second_factor.html",
                CodePage {
                    next: &next,
                    step_up: query.step_up.is_some(),
                    error: None,
                    passkey: state.passkeys.is_some() && !status.passkeys.is_empty(),
                    totp: status.totp,
                },
            )?)
        }
    }
}

/// `POST /login/second-factor`: checks a TOTP or recovery code.
pub async fn check_code(
    state: web::Data<AppState>,
    viewer: Viewer,
    req: HttpRequest,
    session: Option<AnySession>,
    CsrfForm(form): CsrfForm<CodeForm>,
) -> Result<HttpResponse, AppError> {
    let next = safe_next(form.next.as_deref());
    let Some(AnySession(user)) = session else {
        return Ok(see_other("/login"));
    };
    if !user.has_second_factor {
        return Ok(see_other(&next));
    }
    let sealer = state.second_factor.clone();
    let lockout = (
        state.settings.security.lockout_threshold,
        state.settings.security.lockout_window,
    );
    let now = state.ctx.clock.now_naive();
    let ip = client_ip(&req, state.settings.security.trust_forwarded_for).map(|ip| ip.to_string());
    let (code, account_id, email, session_id) = (
        form.code.clone(),
        user.account_id,
        user.email.clone(),
        user.session_id,
    );
    let checked = db::run(&state.pool, move |c| {
        second_factor::check_code(
            c,
            &sealer,
            &CodeAttempt {
                account_id,
                account_email: &email,
                session_id: Some(session_id),
                code: &code,
                channel: "web",
                ip,
            },
            lockout,
            now,
        )
    })
    .await?;
    let factors = status(&state, user.account_id).await?;
    let refused = |code: StatusCode, message: String| {
        state
            .pages
            .page_with_status(
                code,
                &viewer,
                "second_factor.html",
                CodePage {
                    next: &next,
                    step_up: form.step_up.is_some(),
                    error: Some(message),
                    passkey: state.passkeys.is_some() && !factors.passkeys.is_empty(),
                    totp: factors.totp,
                },
            )
            .and_then(with_passkey_script)
    };
    match checked {
        Checked::Accepted { .. } if user.must_change_password => {
            Ok(see_other("/account?must_change=1"))
        }
        Checked::Accepted { .. } => Ok(see_other(&next)),
        Checked::Refused => refused(
            StatusCode::UNAUTHORIZED,
            "That code is not right, or was already used. Type the code your authenticator shows now, or one of your recovery codes.".into(),
        ),
        Checked::Locked { until } => {
            let seconds = (until - now).num_seconds().max(1);
            let minutes = (seconds + 59) / 60;
            let mut response = refused(
                StatusCode::TOO_MANY_REQUESTS,
                format!(
                    "Codes for this account are paused after too many wrong ones. Try again in {minutes} minute{}.",
                    if minutes == 1 { "" } else { "s" }
                ),
            )?;
            response.headers_mut().insert(
                header::RETRY_AFTER,
                header::HeaderValue::from_str(&seconds.to_string()).map_err(AppError::internal)?,
            );
            Ok(response)
        }
    }
}

#[derive(Debug, Deserialize)]
pub struct SetupQuery {
    required: Option<String>,
    notice: Option<String>,
}

#[derive(Serialize)]
struct SetupPage<'a> {
    status: StatusView,
    required: bool,
    enrolment: Option<EnrolmentView>,
    recovery_codes: &'a [String],
    error: Option<String>,
    notice: Option<&'a str>,
    /// The site can register passkeys (a host name in `EDL_BASE_URL`).
    passkeys_offered: bool,
}

#[derive(Serialize)]
struct StatusView {
    totp: bool,
    recovery_codes_left: i64,
    passkeys: Vec<PasskeyInfo>,
    any: bool,
}

impl From<&Status> for StatusView {
    fn from(s: &Status) -> Self {
        Self {
            totp: s.totp,
            recovery_codes_left: s.recovery_codes_left,
            passkeys: s.passkeys.clone(),
            any: s.has_second_factor(),
        }
    }
}

#[derive(Serialize)]
struct EnrolmentView {
    secret: String,
    uri: String,
    qr_svg: String,
}

impl From<Enrolment> for EnrolmentView {
    fn from(e: Enrolment) -> Self {
        Self {
            secret: e.secret_text,
            uri: e.uri,
            qr_svg: e.qr_svg,
        }
    }
}

async fn status(state: &AppState, account_id: i64) -> Result<Status, AppError> {
    Ok(db::run(&state.pool, move |c| second_factor::status(c, account_id)).await?)
}

fn must_have_one(state: &AppState, user: &crate::accounts::session::CurrentUser) -> bool {
    user.roles
        .iter()
        .any(|r| state.settings.security.require_2fa.contains(r))
}

/// `GET /account/second-factor`: what the account has, and the buttons to change it.
pub async fn show(
    state: web::Data<AppState>,
    viewer: Viewer,
    SignedIn(user): SignedIn,
    query: web::Query<SetupQuery>,
) -> Result<HttpResponse, AppError> {
    let status = status(&state, user.account_id).await?;
    state
        .pages
        .page(
            &viewer,
            "second_factor_setup.html",
            SetupPage {
                status: (&status).into(),
                required: query.required.is_some()
                    || (must_have_one(&state, &user) && !status.totp),
                enrolment: None,
                recovery_codes: &[],
                error: None,
                notice: query.notice.as_deref().and_then(notice_text),
                passkeys_offered: state.passkeys.is_some(),
            },
        )
        .and_then(with_passkey_script)
}

fn notice_text(code: &str) -> Option<&'static str> {
    match code {
        "passkey-added" => {
            Some("The passkey is added. Sign-in can now ask for it instead of a code.")
        }
        "passkey-removed" => Some("The passkey is removed."),
        "passkey-not-found" => Some("That passkey is not on your account; nothing was removed."),
        _ => None,
    }
}

fn issuer(state: &AppState) -> String {
    state.settings.list_name.clone()
}

/// `POST /account/second-factor/totp`: a new secret, shown once with its QR code.
pub async fn begin_totp(
    state: web::Data<AppState>,
    viewer: Viewer,
    SignedIn(user): SignedIn,
    CsrfForm(_): CsrfForm<EmptyForm>,
) -> Result<HttpResponse, AppError> {
    let (sealer, issuer, now) = (
        state.second_factor.clone(),
        issuer(&state),
        state.ctx.clock.now_naive(),
    );
    let (id, email) = (user.account_id, user.email.clone());
    let enrolment = db::run(&state.pool, move |c| {
        second_factor::begin_totp(c, &sealer, id, &email, &issuer, now)
    })
    .await?;
    let Some(enrolment) = enrolment else {
        return Ok(see_other("/account/second-factor"));
    };
    let status = status(&state, user.account_id).await?;
    state.pages.page(
        &viewer,
        "second_factor_setup.html",
        SetupPage {
            status: (&status).into(),
            required: must_have_one(&state, &user),
            enrolment: Some(enrolment.into()),
            recovery_codes: &[],
            error: None,
            notice: None,
            passkeys_offered: false,
        },
    )
}

#[derive(Debug, Deserialize)]
pub struct ConfirmForm {
    #[serde(default)]
    code: String,
}

/// `POST /account/second-factor/totp/confirm`: the first code from the authenticator turns
/// the factor on; the recovery codes are shown once.
pub async fn confirm_totp(
    state: web::Data<AppState>,
    viewer: Viewer,
    SignedIn(user): SignedIn,
    CsrfForm(form): CsrfForm<ConfirmForm>,
) -> Result<HttpResponse, AppError> {
    let (sealer, now) = (state.second_factor.clone(), state.ctx.clock.now_naive());
    let (id, email, session_id, code) = (
        user.account_id,
        user.email.clone(),
        user.session_id,
        form.code,
    );
    let outcome = db::run(&state.pool, move |c| {
        second_factor::confirm_totp(c, &sealer, id, &email, session_id, &code, now)
    })
    .await?;
    let status = status(&state, user.account_id).await?;
    match outcome {
        Confirmed::Done { recovery_codes } => state.pages.page(
            &viewer,
            "second_factor_setup.html",
            SetupPage {
                status: (&status).into(),
                required: false,
                enrolment: None,
                recovery_codes: &recovery_codes,
                error: None,
                notice: Some("Your authenticator is set up. Sign-in now asks for its code after your password."),
                passkeys_offered: false,
            },
        ),
        Confirmed::WrongCode => {
            let (sealer, issuer, email) = (
                state.second_factor.clone(),
                issuer(&state),
                user.email.clone(),
            );
            let enrolment = db::run(&state.pool, move |c| {
                second_factor::pending_enrolment(c, &sealer, id, &email, &issuer)
            })
            .await?;
            state.pages.page_with_status(
                StatusCode::UNPROCESSABLE_ENTITY,
                &viewer,
                "second_factor_setup.html",
                SetupPage {
                    status: (&status).into(),
                    required: must_have_one(&state, &user),
                    enrolment: enrolment.map(Into::into),
                    recovery_codes: &[],
                    error: Some("That code does not match. Check the clock of the device, type the six digits the authenticator shows now, or start again.".into()),
                    notice: None,
                    passkeys_offered: false,
                },
            )
        }
    }
}

/// `POST /account/second-factor/recovery-codes`: new recovery codes, the old ones void.
pub async fn renew_recovery_codes(
    state: web::Data<AppState>,
    viewer: Viewer,
    SignedIn(user): SignedIn,
    CsrfForm(_): CsrfForm<EmptyForm>,
) -> Result<HttpResponse, AppError> {
    let now = state.ctx.clock.now_naive();
    let (id, email) = (user.account_id, user.email.clone());
    let codes = db::run(&state.pool, move |c| {
        second_factor::renew_recovery_codes(c, id, &email, now)
    })
    .await?;
    let Some(codes) = codes else {
        return Ok(see_other("/account/second-factor"));
    };
    let status = status(&state, user.account_id).await?;
    state.pages.page(
        &viewer,
        "second_factor_setup.html",
        SetupPage {
            status: (&status).into(),
            required: false,
            enrolment: None,
            recovery_codes: &codes,
            error: None,
            notice: Some("New recovery codes are made; the old ones no longer work."),
            passkeys_offered: false,
        },
    )
}

/// `POST /account/second-factor/remove`: removes one's own second factor; the other sessions
/// end. An account whose role requires one is sent to set up a new one.
pub async fn remove(
    state: web::Data<AppState>,
    SignedIn(user): SignedIn,
    CsrfForm(_): CsrfForm<EmptyForm>,
) -> Result<HttpResponse, AppError> {
    let (id, email, session) = (user.account_id, user.email.clone(), user.session_id);
    db::run(&state.pool, move |c| {
        second_factor::remove(c, &email, id, "2fa.removed", Some(session))
    })
    .await?;
    Ok(see_other("/account/second-factor"))
}

/// `POST /account/second-factor/passkey/start` (JSON): the options the page's script gives
/// `navigator.credentials.create`.
pub async fn passkey_registration_start(
    state: web::Data<AppState>,
    SignedIn(user): SignedIn,
    CsrfJson(_): CsrfJson<serde_json::Value>,
) -> Result<HttpResponse, AppError> {
    let Some(rp) = state.passkeys.clone() else {
        return Ok(not_offered());
    };
    let now = state.ctx.clock.now_naive();
    let (id, email, name, session) = (
        user.account_id,
        user.email.clone(),
        user.name.clone(),
        user.session_id,
    );
    let started = db::run(&state.pool, move |c| {
        passkeys::start_registration(c, &rp, id, &email, &name, session, now)
    })
    .await?;
    Ok(match started {
        Ok(options) => HttpResponse::Ok().json(options),
        Err(error) => json_error(StatusCode::UNPROCESSABLE_ENTITY, &error.to_string()),
    })
}

#[derive(Debug, Deserialize)]
pub struct AddPasskey {
    #[serde(default)]
    name: String,
    credential: webauthn_rs::prelude::RegisterPublicKeyCredential,
}

/// `POST /account/second-factor/passkey/finish` (JSON): the authenticator's answer.
pub async fn passkey_registration_finish(
    state: web::Data<AppState>,
    SignedIn(user): SignedIn,
    CsrfJson(body): CsrfJson<AddPasskey>,
) -> Result<HttpResponse, AppError> {
    let Some(rp) = state.passkeys.clone() else {
        return Ok(not_offered());
    };
    let now = state.ctx.clock.now_naive();
    let (id, email, session) = (user.account_id, user.email.clone(), user.session_id);
    let finished = db::run(&state.pool, move |c| {
        passkeys::finish_registration(
            c,
            &rp,
            id,
            &email,
            session,
            &body.name,
            &body.credential,
            now,
        )
    })
    .await?;
    Ok(match finished {
        Ok(()) => HttpResponse::Ok()
            .json(serde_json::json!({ "redirect": "/account/second-factor?notice=passkey-added" })),
        Err(error @ PasskeyError::Name) => {
            json_error(StatusCode::UNPROCESSABLE_ENTITY, &error.to_string())
        }
        Err(error) => json_error(StatusCode::BAD_REQUEST, &error.to_string()),
    })
}

/// `POST /account/second-factor/passkeys/{id}/remove`: removes one of one's own passkeys.
pub async fn remove_passkey(
    state: web::Data<AppState>,
    SignedIn(user): SignedIn,
    path: web::Path<i64>,
    CsrfForm(_): CsrfForm<EmptyForm>,
) -> Result<HttpResponse, AppError> {
    let (id, email, passkey) = (user.account_id, user.email.clone(), path.into_inner());
    let removed = db::run(&state.pool, move |c| {
        passkeys::remove(c, id, &email, passkey)
    })
    .await?;
    // A passkey already removed (a second click, another tab) or not this account's: the page
    // says so rather than failing, and nothing about another account's passkeys is revealed.
    let notice = if removed {
        "passkey-removed"
    } else {
        "passkey-not-found"
    };
    Ok(see_other(&format!(
        "/account/second-factor?notice={notice}"
    )))
}

/// The account behind the sign-in step, if it has a second factor to prove.
fn proving(session: Option<AnySession>) -> Option<CurrentUser> {
    session
        .map(|AnySession(user)| user)
        .filter(|user| user.has_second_factor)
}

/// `POST /login/second-factor/passkey/start` (JSON): the options for
/// `navigator.credentials.get`, after the password or for step-up.
pub async fn passkey_sign_in_start(
    state: web::Data<AppState>,
    session: Option<AnySession>,
    CsrfJson(_): CsrfJson<serde_json::Value>,
) -> Result<HttpResponse, AppError> {
    let Some(rp) = state.passkeys.clone() else {
        return Ok(not_offered());
    };
    let Some(user) = proving(session) else {
        return Ok(json_error(
            StatusCode::UNAUTHORIZED,
            "Sign in with your password first.",
        ));
    };
    let now = state.ctx.clock.now_naive();
    let (id, session_id) = (user.account_id, user.session_id);
    let options = db::run(&state.pool, move |c| {
        passkeys::start_authentication(c, &rp, id, session_id, now)
    })
    .await?;
    Ok(match options {
        Some(options) => HttpResponse::Ok().json(options),
        None => json_error(StatusCode::NOT_FOUND, "This account has no passkey."),
    })
}

#[derive(Debug, Deserialize)]
pub struct UsePasskey {
    credential: webauthn_rs::prelude::PublicKeyCredential,
    next: Option<String>,
}

/// `POST /login/second-factor/passkey/finish` (JSON): checks the authenticator's answer;
/// where to go next, or why not.
pub async fn passkey_sign_in_finish(
    state: web::Data<AppState>,
    req: HttpRequest,
    session: Option<AnySession>,
    CsrfJson(body): CsrfJson<UsePasskey>,
) -> Result<HttpResponse, AppError> {
    let Some(rp) = state.passkeys.clone() else {
        return Ok(not_offered());
    };
    let Some(user) = proving(session) else {
        return Ok(json_error(
            StatusCode::UNAUTHORIZED,
            "Sign in with your password first.",
        ));
    };
    let next = if user.must_change_password {
        "/account?must_change=1".to_owned()
    } else {
        safe_next(body.next.as_deref())
    };
    let lockout = (
        state.settings.security.lockout_threshold,
        state.settings.security.lockout_window,
    );
    let now = state.ctx.clock.now_naive();
    let ip = client_ip(&req, state.settings.security.trust_forwarded_for).map(|ip| ip.to_string());
    let (id, email, session_id) = (user.account_id, user.email.clone(), user.session_id);
    let checked = db::run(&state.pool, move |c| {
        passkeys::finish_authentication(
            c,
            &rp,
            &CodeAttempt {
                account_id: id,
                account_email: &email,
                session_id: Some(session_id),
                code: "",
                channel: "web",
                ip,
            },
            &body.credential,
            lockout,
            now,
        )
    })
    .await?;
    Ok(match checked {
        Checked::Accepted { .. } => {
            HttpResponse::Ok().json(serde_json::json!({ "redirect": next }))
        }
        Checked::Refused => json_error(
            StatusCode::UNAUTHORIZED,
            "The passkey was not accepted. Try again, or type a code instead.",
        ),
        Checked::Locked { until } => {
            let seconds = (until - now).num_seconds().max(1);
            let mut response = json_error(
                StatusCode::TOO_MANY_REQUESTS,
                "Second-factor attempts for this account are paused after too many failures.",
            );
            response.headers_mut().insert(
                header::RETRY_AFTER,
                header::HeaderValue::from_str(&seconds.to_string()).map_err(AppError::internal)?,
            );
            response
        }
    })
}
