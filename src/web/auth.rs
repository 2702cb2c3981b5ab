//! Who may do what, decided in one place. Every route is declared in the route table in
//! `startup.rs` with the access it needs; the `guard` middleware resolves the session, issues
//! the CSRF cookie, applies per-IP limits to sign-in and public form posts, and refuses any
//! request the table does not allow before a handler runs. A route missing from the table is
//! refused too (fail closed).

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::Instant;

use actix_web::body::{EitherBody, MessageBody};
use actix_web::cookie::{Cookie, CookieJar, Key, SameSite};
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::http::{header, Method};
use actix_web::middleware::Next;
use actix_web::{web, FromRequest, HttpMessage, HttpRequest, HttpResponse};
use serde::de::DeserializeOwned;

use crate::accounts::api_tokens::{self, ApiCaller, Scope, TokenRefusal};
use crate::accounts::session::{self, CurrentUser};
use crate::accounts::Role;
use crate::db;
use crate::error::AppError;
use crate::membership::member_sign_in::{self, CurrentMember};
use crate::web::api::{ApiError, Problem, RateLimitState};
use crate::web::ratelimit::Client;
use crate::web::{member_page, AppState};

pub const SESSION_COOKIE: &str = "edl_session";
pub const CSRF_COOKIE: &str = "edl_csrf";
pub const CSRF_FIELD: &str = "csrf_token";

/// What a route requires of the person asking.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone, signed in or not.
    Public,
    /// Any signed-in account, whatever its roles.
    SignedIn,
    /// A signed-in account holding this role.
    Role(Role),
    /// A signed-in account holding any of these roles.
    AnyOf(&'static [Role]),
    /// A member signed in by the link mailed to its alias (the member cookie); no staff
    /// account, whatever its roles, is a member.
    Member,
    /// An API request with a bearer token holding this scope, whose account still holds a
    /// role the scope's web route asks for. Cookies are not looked at.
    Token(Scope),
}

impl Access {
    /// Whether an account holding `roles` is allowed, once signed in. Public and signed-in
    /// routes allow any account.
    pub fn permits(self, roles: &[Role]) -> bool {
        match self {
            Access::Public | Access::SignedIn => true,
            Access::Role(role) => roles.contains(&role),
            Access::AnyOf(allowed) => allowed.iter().any(|r| roles.contains(r)),
            Access::Member | Access::Token(_) => false,
        }
    }

    /// The roles it asks for, as a person reads them ("release manager or admin").
    pub fn describe(self) -> String {
        match self {
            Access::Public | Access::SignedIn => "any account".to_owned(),
            Access::Role(role) => role.label().to_lowercase(),
            Access::AnyOf(roles) => roles
                .iter()
                .map(|r| r.label().to_lowercase())
                .collect::<Vec<_>>()
                .join(" or "),
            Access::Member => "member signed in by link".to_owned(),
            Access::Token(scope) => format!("API token with the scope {scope}"),
        }
    }
}

/// One line of the route table.
pub struct RouteDef {
    pub method: Method,
    pub path: &'static str,
    pub access: Access,
    pub route: fn() -> actix_web::Route,
}

/// The access each (method, route pattern) requires, built from the route table.
pub struct AccessTable(HashMap<(Method, &'static str), Access>);

impl AccessTable {
    pub fn new(routes: &[RouteDef]) -> Self {
        Self(
            routes
                .iter()
                .map(|r| ((r.method.clone(), r.path), r.access))
                .collect(),
        )
    }

    /// The methods a route pattern answers, for the `Allow` field of a 405.
    pub fn methods(&self, pattern: &str) -> Vec<Method> {
        let mut methods: Vec<Method> = self
            .0
            .keys()
            .filter(|(_, p)| *p == pattern)
            .map(|(m, _)| m.clone())
            .collect();
        if methods.contains(&Method::GET) {
            methods.push(Method::HEAD);
        }
        methods.sort_by(|a, b| a.as_str().cmp(b.as_str()));
        methods
    }

    /// The access `method` on the route `pattern` requires; HEAD is asked as GET.
    pub fn lookup(&self, method: &Method, pattern: &str) -> Option<Access> {
        // HEAD is answered like GET.
        let method = if method == Method::HEAD {
            Method::GET
        } else {
            method.clone()
        };
        self.0
            .iter()
            .find(|((m, p), _)| *m == method && *p == pattern)
            .map(|(_, a)| *a)
    }
}

/// The CSRF token of this browser, for forms to embed.
#[derive(Debug, Clone)]
pub struct CsrfToken(pub String);

/// Who is looking at a page, and the CSRF token their forms need.
#[derive(Debug, Clone)]
pub struct Viewer {
    pub user: Option<CurrentUser>,
    pub csrf: String,
}

impl FromRequest for Viewer {
    type Error = AppError;
    type Future = std::future::Ready<Result<Self, AppError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let extensions = req.extensions();
        let csrf = extensions
            .get::<CsrfToken>()
            .map(|t| t.0.clone())
            .unwrap_or_default();
        let user = extensions.get::<CurrentUser>().cloned();
        std::future::ready(Ok(Self { user, csrf }))
    }
}

/// The signed-in account; only on routes whose access requires one.
pub struct SignedIn(pub CurrentUser);

impl FromRequest for SignedIn {
    type Error = AppError;
    type Future = std::future::Ready<Result<Self, AppError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let user = req.extensions().get::<CurrentUser>().cloned();
        std::future::ready(user.map(SignedIn).ok_or(AppError::SignInRequired))
    }
}

/// The account behind a session, whether or not it has given its second factor yet: for
/// signing out and for the code page.
pub struct AnySession(pub CurrentUser);

impl FromRequest for AnySession {
    type Error = AppError;
    type Future = std::future::Ready<Result<Self, AppError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let extensions = req.extensions();
        let user = extensions.get::<CurrentUser>().cloned().or_else(|| {
            extensions
                .get::<AwaitingSecondFactor>()
                .map(|a| a.0.clone())
        });
        std::future::ready(user.map(AnySession).ok_or(AppError::SignInRequired))
    }
}

/// A submitted form whose CSRF token was checked against this browser's cookie before the
/// fields were read. Repeated fields (checkboxes) may be read into a `Vec`.
pub struct CsrfForm<T>(pub T);

impl<T: DeserializeOwned + 'static> FromRequest for CsrfForm<T> {
    type Error = AppError;
    type Future = std::pin::Pin<Box<dyn std::future::Future<Output = Result<Self, AppError>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let checked = CheckedForm::<T>::from_request(req, payload);
        Box::pin(async move {
            match checked.await? {
                CheckedForm {
                    form,
                    csrf_ok: true,
                } => Ok(CsrfForm(form)),
                CheckedForm { csrf_ok: false, .. } => Err(AppError::Csrf),
            }
        })
    }
}

/// A submitted form read whether or not its CSRF token matched, for the long forms where a
/// refusal must not lose what was typed: the handler re-renders the values and says why,
/// and acts only when `csrf_ok`.
pub struct CheckedForm<T> {
    pub form: T,
    pub csrf_ok: bool,
}

impl<T: DeserializeOwned + 'static> FromRequest for CheckedForm<T> {
    type Error = AppError;
    type Future = std::pin::Pin<Box<dyn std::future::Future<Output = Result<Self, AppError>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let expected = req.extensions().get::<CsrfToken>().map(|t| t.0.clone());
        let is_form = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
        let body = web::Bytes::from_request(req, payload);
        Box::pin(async move {
            let bytes = body
                .await
                .map_err(|_| AppError::BadRequest("The form is too large.".into()))?;
            let fields: Vec<(String, String)> = if is_form {
                serde_html_form::from_bytes(&bytes).unwrap_or_default()
            } else {
                Vec::new()
            };
            let sent = fields
                .iter()
                .find(|(k, _)| k == CSRF_FIELD)
                .map(|(_, v)| v.as_str());
            let csrf_ok = matches!((expected, sent), (Some(expected), Some(sent))
                if constant_time_eq(expected.as_bytes(), sent.as_bytes()));
            if !csrf_ok && !is_form {
                return Err(AppError::Csrf);
            }
            // No browser sends a NUL from a form, and no database column takes one.
            if fields
                .iter()
                .any(|(k, v)| k.contains('\0') || v.contains('\0'))
            {
                return Err(AppError::BadRequest(
                    "The form carries a NUL character, which cannot be stored.".into(),
                ));
            }
            let form = serde_html_form::from_bytes(&bytes)
                .map_err(|e| AppError::BadRequest(format!("The form could not be read: {e}")))?;
            Ok(CheckedForm { form, csrf_ok })
        })
    }
}

/// The header a script sends the CSRF token in, with a JSON body.
pub const CSRF_HEADER: &str = "x-csrf-token";

/// A JSON body posted by the site's own script, whose CSRF token (in [`CSRF_HEADER`]) was
/// checked against this browser's cookie before the body was read.
pub struct CsrfJson<T>(pub T);

impl<T: DeserializeOwned + 'static> FromRequest for CsrfJson<T> {
    type Error = AppError;
    type Future = std::pin::Pin<Box<dyn std::future::Future<Output = Result<Self, AppError>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let expected = req.extensions().get::<CsrfToken>().map(|t| t.0.clone());
        let sent = req
            .headers()
            .get(CSRF_HEADER)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let is_json = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/json"));
        let body = web::Bytes::from_request(req, payload);
        Box::pin(async move {
            let csrf_ok = matches!((expected, sent), (Some(expected), Some(sent))
                if constant_time_eq(expected.as_bytes(), sent.as_bytes()));
            if !csrf_ok || !is_json {
                return Err(AppError::Csrf);
            }
            let bytes = body
                .await
                .map_err(|_| AppError::BadRequest("The request is too large.".into()))?;
            let value: serde_json::Value = serde_json::from_slice(&bytes)
                .map_err(|e| AppError::BadRequest(format!("The request could not be read: {e}")))?;
            if json_carries_nul(&value) {
                return Err(AppError::BadRequest(
                    "The request carries a NUL character, which cannot be stored.".into(),
                ));
            }
            let value = serde_json::from_value(value)
                .map_err(|e| AppError::BadRequest(format!("The request could not be read: {e}")))?;
            Ok(CsrfJson(value))
        })
    }
}

/// Whether a JSON value carries a NUL character anywhere, in a key or a string: no database
/// column takes one, so every JSON body is refused with it before it is read into fields.
pub fn json_carries_nul(value: &serde_json::Value) -> bool {
    match value {
        serde_json::Value::String(s) => s.contains('\0'),
        serde_json::Value::Array(items) => items.iter().any(json_carries_nul),
        serde_json::Value::Object(fields) => fields
            .iter()
            .any(|(k, v)| k.contains('\0') || json_carries_nul(v)),
        _ => false,
    }
}

/// A form whose only field is its CSRF token: a button that does one thing.
#[derive(Debug, serde::Deserialize)]
pub struct EmptyForm {}

pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    use subtle::ConstantTimeEq;
    bool::from(a.ct_eq(b))
}

/// Reads an encrypted cookie's value; `None` if absent or not made with our key.
pub fn read_private_cookie(req: &HttpRequest, key: &Key, name: &str) -> Option<String> {
    let cookie = req.cookie(name)?;
    let mut jar = CookieJar::new();
    jar.add_original(cookie);
    jar.private(key).get(name).map(|c| c.value().to_owned())
}

/// An encrypted, HttpOnly cookie, `Secure` when the site is served over https.
pub fn private_cookie(
    key: &Key,
    name: &'static str,
    value: String,
    secure: bool,
    same_site: SameSite,
) -> Cookie<'static> {
    let mut jar = CookieJar::new();
    let mut cookie = Cookie::new(name, value);
    cookie.set_http_only(true);
    cookie.set_secure(secure);
    cookie.set_same_site(same_site);
    cookie.set_path("/");
    jar.private_mut(key).add(cookie);
    jar.get(name)
        .cloned()
        .unwrap_or_else(|| Cookie::new(name, ""))
}

/// A cookie that tells the browser to forget `name`.
pub fn removal_cookie(name: &'static str) -> Cookie<'static> {
    let mut cookie = Cookie::new(name, "");
    cookie.set_path("/");
    cookie.make_removal();
    cookie
}

/// The client address: the socket's peer, or, when configured behind a proxy, the right-most
/// `X-Forwarded-For` entry, the one the proxy itself added (entries to its left come from the
/// client and can be anything).
pub fn client_ip(req: &HttpRequest, trust_forwarded_for: bool) -> Option<IpAddr> {
    if trust_forwarded_for {
        let forwarded = req
            .headers()
            .get_all("x-forwarded-for")
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .last()
            .and_then(|v| v.parse::<IpAddr>().ok());
        if forwarded.is_some() {
            return forwarded;
        }
    }
    req.peer_addr().map(|a| a.ip())
}

/// Paths a person who must change their password may still use.
const PASSWORD_CHANGE_PATHS: &[&str] =
    &["/account", "/account/password", "/logout", "/assets/{name}"];

/// Paths a session that has given the password but not yet the second factor may use.
const AWAITING_SECOND_FACTOR_PATHS: &[&str] = &[
    "/login/second-factor",
    "/login/second-factor/passkey/start",
    "/login/second-factor/passkey/finish",
    "/logout",
    "/assets/{name}",
];

/// Paths an account that must set up a second factor may use until it has.
const SECOND_FACTOR_SETUP_PATHS: &[&str] = &[
    "/account",
    "/account/password",
    "/account/second-factor",
    "/account/second-factor/totp",
    "/account/second-factor/totp/confirm",
    "/account/second-factor/passkey/start",
    "/account/second-factor/passkey/finish",
    "/login/second-factor",
    "/logout",
    "/assets/{name}",
];

/// The actions that ask for the second factor again when the last proof is older than
/// `EDL_STEP_UP_WINDOW`: approving a release, the final approval of a member, creating
/// accounts and changing roles, a member's key link, and changes to second factors
/// themselves; with the page to come back to once the code is given (`{id}` from the path).
pub const STEP_UP_ROUTES: &[(&str, &str)] = &[
    ("/manage/releases/{id}/approve", "/manage/releases/{id}"),
    (
        "/review/applications/{id}/approve",
        "/review/applications/{id}",
    ),
    ("/admin/users", "/admin/users"),
    ("/admin/users/{id}/roles", "/admin/users"),
    (
        "/admin/users/{id}/second-factor/reset",
        "/admin/users/{id}/second-factor/reset",
    ),
    ("/admin/members/{id}/key-link", "/admin/members"),
    (
        "/account/second-factor/recovery-codes",
        "/account/second-factor",
    ),
    ("/account/second-factor/remove", "/account/second-factor"),
    ("/account/tokens", "/account/tokens"),
    ("/account/second-factor/totp", "/account/second-factor"),
    (
        "/account/second-factor/passkey/start",
        "/account/second-factor",
    ),
    (
        "/account/second-factor/passkeys/{id}/remove",
        "/account/second-factor",
    ),
];

/// The session of a request that has given the password and not yet the second factor.
#[derive(Debug, Clone)]
pub struct AwaitingSecondFactor(pub CurrentUser);

enum Decision {
    Continue,
    Refuse(AppError),
    SignIn,
    ChangePassword,
    Redirect(String),
    /// A member route without a member session: to the page that mails a sign-in link.
    MemberSignIn,
    /// An API route refused, with its problem document.
    Api(Problem),
}

pub async fn guard<B: MessageBody + 'static>(
    req: ServiceRequest,
    next: Next<B>,
) -> Result<ServiceResponse<EitherBody<B>>, actix_web::Error> {
    let Some(state) = req.app_data::<web::Data<AppState>>().cloned() else {
        return Ok(next.call(req).await?.map_into_left_body());
    };
    let secure = state.settings.base_url.scheme() == "https";

    // The CSRF token: kept in an encrypted cookie, created on first sight.
    let existing_csrf = read_private_cookie(req.request(), &state.cookie_key, CSRF_COOKIE)
        .filter(|t| t.len() == 64);
    let csrf = existing_csrf.clone().unwrap_or_else(session::new_token);
    req.extensions_mut().insert(CsrfToken(csrf.clone()));

    // The session, if the browser sent one that is still alive. Static answers (assets,
    // probes, the list's key, the feeds, the advisory documents) are the same for everyone: no
    // database work for them.
    let mut clear_session_cookie = false;
    // API routes look at no cookie (a session is no token), except the API's page for people.
    let wants_session = !req.match_pattern().is_some_and(|pattern| {
        SESSIONLESS_ROUTES.contains(&pattern.as_str())
            || (pattern.starts_with(API_PREFIX) && pattern != API_DOCS_PAGE)
    });
    let cookie = wants_session
        .then(|| read_private_cookie(req.request(), &state.cookie_key, SESSION_COOKIE))
        .flatten();
    if let Some(token) = cookie {
        let security = state.settings.security.clone();
        let now = state.ctx.clock.now_naive();
        let user = db::run(&state.pool, move |conn| {
            session::resolve(conn, &token, &security, now)
        })
        .await;
        match user {
            // Password only, the second factor still to come: not signed in as far as any
            // handler is concerned, except the code page and sign-out.
            Ok(Some(user)) if user.awaiting_second_factor() => {
                req.extensions_mut().insert(AwaitingSecondFactor(user));
            }
            Ok(Some(user)) => {
                req.extensions_mut().insert(user);
            }
            Ok(None) => clear_session_cookie = true,
            Err(error) => {
                let response = req.error_response(crate::error::AppError::from(error));
                return Ok(response.map_into_right_body());
            }
        }
    }

    let clear_member_cookie = match resolve_member(&req, &state).await {
        Ok(clear) => clear,
        Err(error) => return Ok(req.error_response(error).map_into_right_body()),
    };
    if let Err(error) = resolve_token(&req, &state).await {
        return Ok(req
            .error_response(ApiError::from(error))
            .map_into_right_body());
    }

    let decision = decide(&req, &state);
    let response = match decision {
        Decision::Continue => next.call(req).await?.map_into_left_body(),
        Decision::Refuse(error) => req.error_response(error).map_into_right_body(),
        Decision::Api(problem) => req
            .error_response(ApiError::from(problem))
            .map_into_right_body(),
        Decision::SignIn => {
            let target = req
                .uri()
                .path_and_query()
                .map(|p| p.as_str().to_owned())
                .unwrap_or_default();
            let location = format!("/login?next={}", url_encode(&target));
            req.into_response(
                HttpResponse::SeeOther()
                    .insert_header((header::LOCATION, location))
                    .finish(),
            )
            .map_into_right_body()
        }
        Decision::MemberSignIn => req
            .into_response(
                HttpResponse::SeeOther()
                    .insert_header((header::LOCATION, member_page::SIGN_IN_PATH))
                    .finish(),
            )
            .map_into_right_body(),
        Decision::ChangePassword => req
            .into_response(
                HttpResponse::SeeOther()
                    .insert_header((header::LOCATION, "/account?must_change=1"))
                    .finish(),
            )
            .map_into_right_body(),
        Decision::Redirect(location) => req
            .into_response(
                HttpResponse::SeeOther()
                    .insert_header((header::LOCATION, location))
                    .finish(),
            )
            .map_into_right_body(),
    };
    let mut response = response;
    let limit = response
        .request()
        .extensions()
        .get::<RateLimitState>()
        .copied();
    if let Some(limit) = limit {
        limit.apply(response.response_mut().headers_mut());
    }
    // The CSRF cookie goes with pages, where forms are. Other answers (the public key, the
    // feed, assets) may be kept by shared caches, which would hand one visitor's cookie to the
    // next.
    let is_page = response
        .response()
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/html"));
    if existing_csrf.is_none() && is_page {
        let cookie = private_cookie(
            &state.cookie_key,
            CSRF_COOKIE,
            csrf,
            secure,
            SameSite::Strict,
        );
        response.response_mut().add_cookie(&cookie)?;
    }
    if clear_session_cookie
        && !response
            .response()
            .cookies()
            .any(|c| c.name() == SESSION_COOKIE)
    {
        response
            .response_mut()
            .add_cookie(&removal_cookie(SESSION_COOKIE))?;
    }
    if clear_member_cookie
        && !response
            .response()
            .cookies()
            .any(|c| c.name() == MEMBER_COOKIE)
    {
        response
            .response_mut()
            .add_cookie(&removal_cookie(MEMBER_COOKIE))?;
    }
    Ok(response)
}

/// Public routes whose answer does not depend on who asks: the guard does not look up the
/// session for them (they must stay [`Access::Public`]).
const SESSIONLESS_ROUTES: &[&str] = &[
    "/assets/{name}",
    "/healthz",
    "/readyz",
    "/openpgp.asc",
    "/feed.atom",
    "/calendar.ics",
    "/releases/{id}/osv.json",
    "/releases/{id}/osv/{cve}.json",
    "/releases/{id}/csaf.json",
    "/.well-known/openpgpkey/hu/{hash}",
    "/.well-known/openpgpkey/policy",
    "/.well-known/openpgpkey/{domain}/hu/{hash}",
    "/.well-known/openpgpkey/{domain}/policy",
];

fn decide(req: &ServiceRequest, state: &AppState) -> Decision {
    let Some(pattern) = req.match_pattern() else {
        // No route matches: the router answers 404.
        return Decision::Continue;
    };
    let method = req.method();
    let Some(access) = state.access.lookup(method, &pattern) else {
        // A path that exists without this method is a 405 from the router; anything else
        // routed but not declared in the table is refused.
        if state.access.0.keys().any(|(_, p)| *p == pattern) {
            return Decision::Continue;
        }
        tracing::error!(%pattern, %method, "A route is not in the access table; refusing it.");
        return Decision::Refuse(AppError::Forbidden(
            "This address is not open to anyone.".into(),
        ));
    };
    let user = req.extensions().get::<CurrentUser>().cloned();
    let awaiting = req.extensions().get::<AwaitingSecondFactor>().is_some();
    let unsafe_method = !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS);

    if unsafe_method && access == Access::Public {
        let bucket = if pattern == "/login" || pattern.starts_with("/login/second-factor") {
            "login"
        } else if pattern == member_page::SIGN_IN_PATH {
            "member-sign-in"
        } else {
            "public-post"
        };
        let limit = if bucket == "login" || bucket == "member-sign-in" {
            state.settings.security.login_rate_limit
        } else {
            state.settings.security.public_post_rate_limit
        };
        if let Some(ip) = client_ip(req.request(), state.settings.security.trust_forwarded_for) {
            if let Err(wait) = state.limiter.check(bucket, ip, limit, Instant::now()) {
                return Decision::Refuse(AppError::TooManyRequests {
                    retry_after: wait.as_secs().max(1),
                });
            }
        }
    }

    if let Access::Token(scope) = access {
        return decide_token(req, state, scope);
    }
    if access == Access::Member {
        let member = req.extensions().get::<CurrentMember>().is_some();
        return match (member, unsafe_method) {
            (true, _) => Decision::Continue,
            (false, true) => Decision::Refuse(AppError::SignInRequired),
            (false, false) => Decision::MemberSignIn,
        };
    }
    if awaiting {
        if AWAITING_SECOND_FACTOR_PATHS.contains(&pattern.as_str()) {
            return Decision::Continue;
        }
        if access != Access::Public {
            let target = req
                .uri()
                .path_and_query()
                .map(|p| p.as_str().to_owned())
                .unwrap_or_default();
            return Decision::Redirect(second_factor_page(&target));
        }
    }
    match (access, &user) {
        (Access::Public, _) => {}
        (_, None) if unsafe_method => return Decision::Refuse(AppError::SignInRequired),
        (_, None) => return Decision::SignIn,
        (access, Some(user)) if !access.permits(&user.roles) => {
            return Decision::Refuse(AppError::Forbidden(format!(
                "This page is for accounts with the {} role, which yours does not have.",
                access.describe()
            )))
        }
        (_, Some(_)) => {}
    }
    if user.as_ref().is_some_and(|u| u.must_change_password)
        && !PASSWORD_CHANGE_PATHS.contains(&pattern.as_str())
    {
        return Decision::ChangePassword;
    }
    let security = &state.settings.security;
    if let Some(user) = &user {
        if user.must_set_up_second_factor(&security.require_2fa)
            && !SECOND_FACTOR_SETUP_PATHS.contains(&pattern.as_str())
            && access != Access::Public
        {
            return Decision::Redirect("/account/second-factor?required=1".into());
        }
        let step_up = STEP_UP_ROUTES.iter().find(|(p, _)| *p == pattern.as_str());
        if let (true, true, Some((_, back))) = (unsafe_method, user.has_second_factor, step_up) {
            if !user.second_factor_is_fresh(security.step_up_window, state.ctx.clock.now_naive()) {
                // Back to the page the form is on once the code is given; the form itself is
                // not replayed, the person submits it again.
                let back = match path_id(&pattern, req.path()) {
                    Some(id) => back.replace("{id}", id),
                    None => (*back).to_owned(),
                };
                return Decision::Redirect(format!("{}&step_up=1", second_factor_page(&back)));
            }
        }
    }
    Decision::Continue
}

/// Every API route starts here; the guard looks at no cookie on them.
pub const API_PREFIX: &str = "/api/";

/// The API's page for people: a page like any other, which knows who is signed in.
pub const API_DOCS_PAGE: &str = "/api/v1/docs";

/// On a route for API tokens, resolves the `Authorization: Bearer` token into an
/// [`ApiCaller`] in the request's extensions, or the reason it is refused.
async fn resolve_token(req: &ServiceRequest, state: &AppState) -> Result<(), AppError> {
    let is_token_route = matches!(
        req.match_pattern()
            .and_then(|pattern| state.access.lookup(req.method(), &pattern)),
        Some(Access::Token(_))
    );
    if !is_token_route {
        return Ok(());
    }
    let presented = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            let (scheme, token) = v.trim().split_once(' ')?;
            scheme
                .eq_ignore_ascii_case("bearer")
                .then(|| token.trim().to_owned())
        });
    let Some(token) = presented else {
        req.extensions_mut().insert(TokenRefusal::Missing);
        return Ok(());
    };
    let now = state.ctx.clock.now_naive();
    let outcome = db::run(&state.pool, move |conn| {
        api_tokens::authenticate(conn, &token, now)
    })
    .await?;
    match outcome {
        Ok(caller) => {
            req.extensions_mut().insert(caller);
        }
        Err(refusal) => {
            req.extensions_mut().insert(refusal);
        }
    }
    Ok(())
}

/// An API route: a valid token, holding the scope, whose account may still use it, within
/// the token's rate limit.
fn decide_token(req: &ServiceRequest, state: &AppState, scope: Scope) -> Decision {
    let caller = req.extensions().get::<ApiCaller>().cloned();
    let Some(caller) = caller else {
        let refusal = req
            .extensions()
            .get::<TokenRefusal>()
            .copied()
            .unwrap_or(TokenRefusal::Missing);
        return Decision::Api(Problem::new(refusal.kind(), refusal.detail()));
    };
    if !caller.scopes.contains(&scope) {
        return Decision::Api(Problem::new(
            "scope-missing",
            format!("This endpoint needs a token with the scope {scope}."),
        ));
    }
    if !caller.may(scope) {
        return Decision::Api(Problem::new(
            "forbidden",
            format!("The token's account no longer holds a role that allows the scope {scope}."),
        ));
    }
    let limit = state.settings.security.api_rate_limit;
    match state
        .limiter
        .check("api", Client::Token(caller.token_id), limit, Instant::now())
    {
        Ok(remaining) => {
            req.extensions_mut().insert(RateLimitState {
                quota: limit.count,
                window_secs: limit.per.as_secs(),
                remaining,
                reset_secs: limit.per.as_secs(),
            });
            Decision::Continue
        }
        Err(wait) => Decision::Api(Problem::rate_limited(wait.as_secs().max(1))),
    }
}

/// The `{id}` segment of `path` under `pattern` (the router fills its own match only after
/// the guard has run).
fn path_id<'a>(pattern: &str, path: &'a str) -> Option<&'a str> {
    pattern
        .split('/')
        .zip(path.split('/'))
        .find(|(p, _)| *p == "{id}")
        .map(|(_, id)| id)
        .filter(|id| id.chars().all(|c| c.is_ascii_digit()) && !id.is_empty())
}

/// The second-factor page, coming back to `next` after.
fn second_factor_page(next: &str) -> String {
    format!(
        "/login/second-factor?next={}",
        url_encode(&safe_next(Some(next)))
    )
}

// ---- Members' own page: the member cookie, resolved only on member routes. ----

/// The member session's cookie, apart from the staff session's.
pub const MEMBER_COOKIE: &str = "edl_member";

/// On a route for members, resolves the member cookie into a [`CurrentMember`] in the
/// request's extensions; returns whether the browser should forget a dead cookie. The member's
/// status is read every time, so a suspended member's session stops at once.
async fn resolve_member(req: &ServiceRequest, state: &AppState) -> Result<bool, AppError> {
    let is_member_route = req
        .match_pattern()
        .and_then(|pattern| state.access.lookup(req.method(), &pattern))
        == Some(Access::Member);
    if !is_member_route {
        return Ok(false);
    }
    let Some(token) = read_private_cookie(req.request(), &state.cookie_key, MEMBER_COOKIE) else {
        return Ok(false);
    };
    let now = state.ctx.clock.now_naive();
    let member = db::run(&state.pool, move |conn| {
        member_sign_in::resolve(conn, &token, now)
    })
    .await?;
    Ok(match member {
        Some(member) => {
            req.extensions_mut().insert(member);
            false
        }
        None => true,
    })
}

/// The member signed in; only on routes whose access is [`Access::Member`].
pub struct SignedInMember(pub CurrentMember);

impl FromRequest for SignedInMember {
    type Error = AppError;
    type Future = std::future::Ready<Result<Self, AppError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let member = req.extensions().get::<CurrentMember>().cloned();
        std::future::ready(member.map(SignedInMember).ok_or(AppError::SignInRequired))
    }
}

/// Percent-encodes a value for a query string.
pub fn url_encode(value: &str) -> String {
    url::form_urlencoded::byte_serialize(value.as_bytes()).collect()
}

/// Where to go after signing in: only a path on this site, never another host. Browsers
/// drop tabs and newlines and treat `\\` like `/`, so any of those, or any other control or
/// space character, makes the target unsafe.
pub fn safe_next(next: Option<&str>) -> String {
    let fallback = "/account".to_owned();
    let Some(n) = next else { return fallback };
    let clean = n.starts_with('/')
        && !n
            .chars()
            .any(|c| c.is_control() || c.is_whitespace() || c == '\\')
        && !n.starts_with("//")
        && !n.contains("://");
    if clean {
        n.to_owned()
    } else {
        fallback
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_served_without_a_session_are_public_routes() {
        let table = crate::startup::route_table();
        for pattern in SESSIONLESS_ROUTES {
            let def = table
                .iter()
                .find(|d| d.path == *pattern)
                .unwrap_or_else(|| panic!("{pattern} is not a route"));
            assert_eq!(def.access, Access::Public, "{pattern}");
        }
    }

    #[test]
    fn next_targets_stay_on_this_site() {
        assert_eq!(safe_next(Some("/admin/users")), "/admin/users");
        assert_eq!(safe_next(Some("//evil.example/")), "/account");
        assert_eq!(safe_next(Some("https://evil.example/")), "/account");
        assert_eq!(safe_next(Some("/\\evil.example")), "/account");
        assert_eq!(safe_next(Some("/\t/evil.example")), "/account");
        assert_eq!(safe_next(Some("/\n/evil.example")), "/account");
        assert_eq!(safe_next(Some("/ /evil.example")), "/account");
        assert_eq!(safe_next(None), "/account");
    }

    #[test]
    fn tokens_compare_in_constant_time_and_exactly() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"abcd"));
    }
}
