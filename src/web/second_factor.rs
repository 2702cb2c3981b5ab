//! The second factor on the web: the code page after the password (and for step-up), the
//! account's own setup page (TOTP with a QR code, recovery codes shown once), and the admin's
//! reset. The rules are in `accounts::second_factor`; where a code is asked for is the
//! guard's decision (`web::auth`).

use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};

use crate::accounts::second_factor::{self, Checked, CodeAttempt, Confirmed, Enrolment, Status};
use crate::db;
use crate::error::AppError;
use crate::web::auth::{client_ip, safe_next, AnySession, CsrfForm, EmptyForm, SignedIn, Viewer};
use crate::web::form::see_other;
use crate::web::AppState;

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
        Some(_) => state.pages.page(
            &viewer,
            "second_factor.html",
            CodePage {
                next: &next,
                step_up: query.step_up.is_some(),
                error: None,
            },
        ),
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
    let refused = |status: StatusCode, message: String| {
        state.pages.page_with_status(
            status,
            &viewer,
            "second_factor.html",
            CodePage {
                next: &next,
                step_up: form.step_up.is_some(),
                error: Some(message),
            },
        )
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
}

#[derive(Serialize)]
struct SetupPage<'a> {
    status: StatusView,
    required: bool,
    enrolment: Option<EnrolmentView>,
    recovery_codes: &'a [String],
    error: Option<String>,
    notice: Option<&'a str>,
}

#[derive(Serialize)]
struct StatusView {
    totp: bool,
    recovery_codes_left: i64,
}

impl From<&Status> for StatusView {
    fn from(s: &Status) -> Self {
        Self {
            totp: s.totp,
            recovery_codes_left: s.recovery_codes_left,
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
    state.pages.page(
        &viewer,
        "second_factor_setup.html",
        SetupPage {
            status: (&status).into(),
            required: query.required.is_some() || (must_have_one(&state, &user) && !status.totp),
            enrolment: None,
            recovery_codes: &[],
            error: None,
            notice: None,
        },
    )
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
