//! The JSON API under `/api/v1`: what release tooling, dashboards and vendors' scanners need,
//! next to the HTML pages and built on the same workflows.
//!
//! - Routes are declared in the one route table (`startup.rs`) like every page. Public ones
//!   are [`Access::Public`](crate::web::auth::Access); the others are
//!   [`Access::Token`](crate::web::auth::Access) with a scope, and the guard resolves the
//!   `Authorization: Bearer` token, checks the scope against the account's roles through the
//!   web route the scope stands for, and counts the token's rate limit before a handler runs.
//! - What the public may see comes from `releases::visibility`, the same rule as the public
//!   pages: nothing embargoed, no advisory before publication, never patch content.
//! - Every error is an RFC 9457 problem document ([`Problem`]) with a machine-readable `type`.
//! - Lists are paged by an opaque cursor: the answer's `next_cursor` asks for the next page.
//! - The OpenAPI 3.1 document is generated from the handlers' annotations ([`ApiDoc`]), and a
//!   test checks that it lists exactly the API routes of the route table, with their scopes.

pub mod public;
pub mod staff;

use actix_web::http::header::{self, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::{web, HttpMessage, HttpRequest, HttpResponse, ResponseError};
use serde::{Deserialize, Serialize};
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi, ToSchema};

use crate::accounts::api_tokens::{ApiCaller, Scope};
use crate::error::{AppError, FieldErrors};
use crate::web::AppState;

/// Where the problem types are described, for people: the API page, one anchor per type.
pub const PROBLEM_BASE: &str = "/api/v1/docs#problem-";

/// The media type of problem documents.
pub const PROBLEM_JSON: &str = "application/problem+json";

/// An RFC 9457 problem document: `type` is machine-readable and stable, `detail` is for people.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Problem {
    /// A URI reference naming the kind of problem, e.g. `/api/v1/docs#problem-token-expired`.
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
    /// For `invalid`: one message per field of the request.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub errors: Option<FieldErrors>,
    #[serde(skip)]
    retry_after: Option<u64>,
}

/// The problem types, with the status each comes with and its title; listed on the API page.
pub const PROBLEM_TYPES: &[(&str, u16, &str)] = &[
    ("bad-request", 400, "The request could not be read"),
    ("invalid-cursor", 400, "The cursor is not one this API gave"),
    ("invalid-parameter", 400, "A query parameter is not valid"),
    ("token-missing", 401, "An API token is needed"),
    ("token-invalid", 401, "The API token is not valid"),
    ("token-expired", 401, "The API token has expired"),
    ("token-revoked", 401, "The API token was revoked"),
    ("scope-missing", 403, "The token does not have the scope"),
    ("forbidden", 403, "Not allowed"),
    ("not-found", 404, "Not found"),
    ("method-not-allowed", 405, "Method not allowed"),
    ("not-acceptable", 406, "Not acceptable"),
    ("conflict", 409, "Conflict"),
    ("too-large", 413, "The request is too large"),
    ("unsupported-media-type", 415, "Send JSON"),
    ("invalid", 422, "The values are not valid"),
    ("rate-limited", 429, "Too many requests"),
    ("internal", 500, "Internal error"),
    ("unavailable", 503, "Service unavailable"),
];

impl Problem {
    pub fn new(kind: &str, detail: impl Into<String>) -> Self {
        let (status, title) = PROBLEM_TYPES
            .iter()
            .find(|(k, _, _)| *k == kind)
            .map(|(_, s, t)| (*s, *t))
            .unwrap_or((500, "Internal error"));
        Self {
            kind: format!("{PROBLEM_BASE}{kind}"),
            title: title.to_owned(),
            status,
            detail: detail.into(),
            errors: None,
            retry_after: None,
        }
    }

    pub fn invalid(errors: FieldErrors) -> Self {
        let mut problem = Self::new(
            "invalid",
            errors.values().cloned().collect::<Vec<_>>().join(" "),
        );
        problem.errors = Some(errors);
        problem
    }

    pub fn rate_limited(retry_after: u64) -> Self {
        let mut problem = Self::new(
            "rate-limited",
            format!("This token has made too many requests; retry after {retry_after} s."),
        );
        problem.retry_after = Some(retry_after);
        problem
    }

    pub fn not_found() -> Self {
        Self::new("not-found", "There is nothing at this address.")
    }

    /// The problem for an error status with no more to say (the router's 404 and 405).
    pub fn for_status(status: StatusCode, detail: Option<String>) -> Self {
        let kind = PROBLEM_TYPES
            .iter()
            .find(|(_, s, _)| *s == status.as_u16())
            .map_or("internal", |(k, _, _)| *k);
        let detail = detail.unwrap_or_else(|| {
            status
                .canonical_reason()
                .unwrap_or("The request failed.")
                .to_owned()
        });
        let mut problem = Self::new(kind, detail);
        problem.status = status.as_u16();
        problem
    }

    pub fn type_slug(&self) -> &str {
        self.kind.strip_prefix(PROBLEM_BASE).unwrap_or(&self.kind)
    }
}

/// A [`Problem`] as a handler's error: boxed, so results stay small.
#[derive(Debug)]
pub struct ApiError(pub Box<Problem>);

impl From<Problem> for ApiError {
    fn from(problem: Problem) -> Self {
        Self(Box::new(problem))
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.0.type_slug(), self.0.detail)
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        StatusCode::from_u16(self.0.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }

    fn error_response(&self) -> HttpResponse {
        let mut builder = HttpResponse::build(self.status_code());
        if let Some(wait) = self.0.retry_after {
            builder.insert_header(("Retry-After", wait.to_string()));
        }
        if self.0.status == 401 {
            builder.insert_header(("WWW-Authenticate", "Bearer realm=\"edl\""));
        }
        builder
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .content_type(PROBLEM_JSON)
            .body(serde_json::to_string(&*self.0).unwrap_or_default())
    }
}

impl From<AppError> for Problem {
    fn from(error: AppError) -> Self {
        // Logged once, where `AppError` renders; here only the kind and the public sentence.
        let status = error.status_code();
        if matches!(error, AppError::Internal(_) | AppError::Unavailable(_)) {
            let _ = error.error_response();
        }
        match error {
            AppError::NotFound => Problem::not_found(),
            AppError::BadRequest(reason) => Problem::new("bad-request", reason),
            AppError::Invalid(reason) => Problem::new("invalid", reason),
            AppError::Forbidden(reason) => Problem::new("forbidden", reason),
            AppError::Conflict(reason) => Problem::new("conflict", reason),
            AppError::TooManyRequests { retry_after } => Problem::rate_limited(retry_after),
            AppError::Unavailable(_) => Problem::new(
                "unavailable",
                "The service cannot reach its database right now; retry in a minute.",
            ),
            AppError::SignInRequired => Problem::new("token-missing", "An API token is needed."),
            AppError::Csrf | AppError::Internal(_) => Problem::for_status(status, None),
        }
    }
}

impl From<crate::db::DbError> for Problem {
    fn from(error: crate::db::DbError) -> Self {
        AppError::from(error).into()
    }
}

impl From<crate::db::DbError> for ApiError {
    fn from(error: crate::db::DbError) -> Self {
        Problem::from(error).into()
    }
}

impl From<AppError> for ApiError {
    fn from(error: AppError) -> Self {
        Problem::from(error).into()
    }
}

/// A workflow's refusal: 422 with the fields, or 409 with the reason.
pub fn refused<E: crate::error::WorkflowError>(error: E) -> Problem {
    match error.into_response() {
        Ok(crate::error::Refusal::Invalid(errors)) => Problem::invalid(errors),
        Ok(crate::error::Refusal::Conflict { reason, .. }) => Problem::new("conflict", reason),
        Err(error) => error.into(),
    }
}

/// The problems every endpoint that needs a token may answer, for the OpenAPI document.
#[derive(utoipa::IntoResponses)]
pub enum TokenProblems {
    #[response(
        status = 401,
        description = "No valid token",
        content_type = "application/problem+json"
    )]
    Unauthorized(Problem),
    #[response(
        status = 403,
        description = "The token lacks the scope",
        content_type = "application/problem+json"
    )]
    Forbidden(Problem),
    #[response(
        status = 429,
        description = "Over the token's rate limit",
        content_type = "application/problem+json"
    )]
    RateLimited(Problem),
}

/// The problems of a list: a bad `limit` or `cursor`.
#[derive(utoipa::IntoResponses)]
pub enum PageProblems {
    #[response(
        status = 400,
        description = "A bad limit or cursor",
        content_type = "application/problem+json"
    )]
    BadPage(Problem),
}

/// The problems of an endpoint that takes a JSON body.
#[derive(utoipa::IntoResponses)]
pub enum BodyProblems {
    #[response(
        status = 400,
        description = "The JSON could not be read",
        content_type = "application/problem+json"
    )]
    Unreadable(Problem),
    #[response(
        status = 415,
        description = "The body is not JSON",
        content_type = "application/problem+json"
    )]
    NotJson(Problem),
    #[response(
        status = 422,
        description = "Values not valid, one message per field",
        content_type = "application/problem+json"
    )]
    Invalid(Problem),
}

/// The answer of a JSON endpoint.
pub type ApiResult = Result<HttpResponse, ApiError>;

/// `200 OK` with `value` as JSON. API answers are not cached by shared caches: some depend
/// on the token.
pub fn json<T: Serialize>(value: &T) -> ApiResult {
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(value))
}

/// The caller of a token route, as the guard resolved it.
pub fn caller(req: &HttpRequest) -> Result<ApiCaller, ApiError> {
    req.extensions()
        .get::<ApiCaller>()
        .cloned()
        .ok_or_else(|| Problem::new("token-missing", "An API token is needed.").into())
}

// ---- Paging by cursor ----

/// The most items one page may hold, and how many when the request does not say.
pub const MAX_LIMIT: i64 = 100;
pub const DEFAULT_LIMIT: i64 = 50;

/// `?limit=&cursor=` of a list.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// Items on the page, 1 to 100 (default 50).
    #[param(value_type = Option<i64>, minimum = 1, maximum = 100)]
    pub limit: Option<String>,
    /// The `next_cursor` of the previous page; absent for the first page.
    pub cursor: Option<String>,
}

/// Where a page starts and how long it is, read from [`PageQuery`].
#[derive(Debug, Clone, Copy)]
pub struct PageAt {
    /// The last id of the previous page: the page holds items after it in the list's order.
    pub after: Option<i64>,
    pub limit: i64,
}

impl PageQuery {
    pub fn read(&self) -> Result<PageAt, ApiError> {
        let limit = match self.limit.as_deref().map(str::trim) {
            None => DEFAULT_LIMIT,
            Some(text) => match text.parse::<i64>() {
                Ok(n) if (1..=MAX_LIMIT).contains(&n) => n,
                _ => {
                    return Err(Problem::new(
                        "invalid-parameter",
                        format!("limit must be a whole number from 1 to {MAX_LIMIT}."),
                    )
                    .into())
                }
            },
        };
        let after = match self.cursor.as_deref() {
            None | Some("") => None,
            Some(cursor) => Some(decode_cursor(cursor).ok_or_else(|| {
                Problem::new(
                    "invalid-cursor",
                    "The cursor is not one this API gave; start again without it.",
                )
            })?),
        };
        Ok(PageAt { after, limit })
    }
}

/// Cursors are opaque to clients (they may change form between versions); today they carry
/// the last id seen.
fn encode_cursor(id: i64) -> String {
    data_encoding::BASE64URL_NOPAD.encode(format!("after:{id}").as_bytes())
}

fn decode_cursor(cursor: &str) -> Option<i64> {
    let bytes = data_encoding::BASE64URL_NOPAD
        .decode(cursor.as_bytes())
        .ok()?;
    let text = String::from_utf8(bytes).ok()?;
    text.strip_prefix("after:")?.parse().ok()
}

/// One page of a list.
#[derive(Debug, Serialize, ToSchema)]
pub struct Page<T: ToSchema> {
    pub items: Vec<T>,
    /// Pass as `cursor` for the next page; `null` on the last page.
    pub next_cursor: Option<String>,
}

/// Cuts `items` (fetched with one more than the limit, in the list's order) to a page.
pub fn page_of<T: ToSchema>(mut items: Vec<T>, at: PageAt, id: impl Fn(&T) -> i64) -> Page<T> {
    let more = items.len() as i64 > at.limit;
    items.truncate(at.limit as usize);
    let next_cursor = if more {
        items.last().map(|last| encode_cursor(id(last)))
    } else {
        None
    };
    Page { items, next_cursor }
}

/// A page as JSON, with an RFC 8288 `Link` to the next one.
pub fn page_response<T: ToSchema + Serialize>(req: &HttpRequest, page: &Page<T>) -> ApiResult {
    let mut response = HttpResponse::Ok();
    response.insert_header((header::CACHE_CONTROL, "no-store"));
    if let Some(cursor) = &page.next_cursor {
        let query: Vec<(String, String)> =
            url::form_urlencoded::parse(req.query_string().as_bytes())
                .filter(|(k, _)| k != "cursor")
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .chain([("cursor".to_owned(), cursor.clone())])
                .collect();
        let query = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(query)
            .finish();
        response.insert_header((
            header::LINK,
            format!("<{}?{query}>; rel=\"next\"", req.path()),
        ));
    }
    Ok(response.json(page))
}

// ---- Rate limits per token ----

/// The `RateLimit-Policy` and `RateLimit` fields (draft-ietf-httpapi-ratelimit-headers) of an
/// answer to a token: the quota and what is left of it.
#[derive(Debug, Clone, Copy)]
pub struct RateLimitState {
    pub quota: u32,
    pub window_secs: u64,
    pub remaining: u32,
    pub reset_secs: u64,
}

impl RateLimitState {
    pub fn apply(&self, headers: &mut actix_web::http::header::HeaderMap) {
        let policy = format!("\"token\";q={};w={}", self.quota, self.window_secs);
        let now = format!("\"token\";r={};t={}", self.remaining, self.reset_secs);
        for (name, value) in [("ratelimit-policy", policy), ("ratelimit", now)] {
            if let Ok(value) = HeaderValue::from_str(&value) {
                headers.insert(header::HeaderName::from_static(name), value);
            }
        }
    }
}

// ---- The OpenAPI document ----

/// The API's OpenAPI 3.1 document, generated from the handlers.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "Security early-disclosure list API",
        version = "1",
        description = "Releases, advisories, the calendar and the roster for everyone; applications, members, releases' metadata and deliveries with an API token. Errors are RFC 9457 problem documents; lists are paged by cursor. Approval is never done through the API."
    ),
    paths(
        public::releases,
        public::release,
        public::advisories,
        public::calendar,
        public::roster,
        staff::applications,
        staff::application,
        staff::members,
        staff::manage_releases,
        staff::manage_release,
        staff::deliveries,
        staff::plan_release,
        staff::add_advisory,
        staff::upload_patch,
    ),
    components(schemas(Problem)),
    modifiers(&BearerToken),
    tags(
        (name = "public", description = "Open to everyone, no token."),
        (name = "reviewers", description = "Scope applications:read."),
        (name = "admins", description = "Scope members:read."),
        (name = "release managers", description = "Scopes releases:read and releases:write."),
    )
)]
pub struct ApiDoc;

struct BearerToken;

impl Modify for BearerToken {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "token",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
        );
    }
}

/// The document as served: with this site's address as the server.
pub fn document(site_url: &str) -> utoipa::openapi::OpenApi {
    let mut doc = ApiDoc::openapi();
    doc.servers = Some(vec![utoipa::openapi::Server::new(format!("{site_url}/"))]);
    doc
}

/// `GET /api/v1/openapi.json`
pub async fn openapi_json(state: web::Data<AppState>) -> ApiResult {
    let doc = document(state.settings.base_url.as_str().trim_end_matches('/'));
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .content_type("application/json")
        .body(doc.to_json().map_err(AppError::internal)?))
}

/// One operation, as the API page lists it.
#[derive(Debug, Serialize)]
struct Operation {
    method: String,
    path: String,
    summary: String,
    description: String,
    scope: Option<String>,
}

/// `GET /api/v1/docs`: the API for people, from the same document.
pub async fn docs_page(
    state: web::Data<AppState>,
    viewer: crate::web::auth::Viewer,
) -> Result<HttpResponse, AppError> {
    let doc = ApiDoc::openapi();
    let mut operations = Vec::new();
    for (path, item) in &doc.paths.paths {
        let methods = [
            ("GET", &item.get),
            ("POST", &item.post),
            ("PUT", &item.put),
            ("DELETE", &item.delete),
        ];
        for (method, op) in methods {
            let Some(op) = op else { continue };
            let scope = op.security.as_ref().and_then(|s| {
                serde_json::to_value(s)
                    .ok()?
                    .pointer("/0/token/0")?
                    .as_str()
                    .map(str::to_owned)
            });
            operations.push(Operation {
                method: method.to_owned(),
                path: path.clone(),
                summary: op.summary.clone().unwrap_or_default(),
                description: op.description.clone().unwrap_or_default(),
                scope,
            });
        }
    }
    let problems: Vec<_> = PROBLEM_TYPES
        .iter()
        .map(|(kind, status, title)| minijinja::context! { kind, status, title })
        .collect();
    let scopes: Vec<_> = Scope::ALL
        .iter()
        .map(|s| minijinja::context! { name => s.as_str(), what => s.describe() })
        .collect();
    state.pages.page(
        &viewer,
        "api_docs.html",
        minijinja::context! { operations, problems, scopes },
    )
}
