//! Turns a bare error status into the site's error page, so a person never meets a blank page.
//! Responses that already carry a body of their own kind (JSON from the API and probes, HTML)
//! pass through untouched.

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::ServiceResponse;
use actix_web::http::header::{self, HeaderValue};
use actix_web::middleware::ErrorHandlerResponse;
use actix_web::web;

use actix_web::HttpMessage;

use crate::accounts::session::CurrentUser;
use crate::error::PublicMessage;
use crate::web::api::{ApiError, Problem};
use crate::web::auth::{CsrfToken, Viewer};
use crate::web::AppState;
use actix_web::ResponseError;

pub fn render_error_page<B: MessageBody + 'static>(
    res: ServiceResponse<B>,
) -> actix_web::Result<ErrorHandlerResponse<B>> {
    let plain = res
        .headers()
        .get(header::CONTENT_TYPE)
        .is_none_or(|v| v.to_str().is_ok_and(|v| v.starts_with("text/plain")));
    if !plain {
        return Ok(ErrorHandlerResponse::Response(res.map_into_left_body()));
    }
    let status = res.status();
    let message = res
        .response()
        .extensions()
        .get::<PublicMessage>()
        .map(|m| m.0.clone())
        .unwrap_or_else(|| default_message(status.as_u16()).to_owned());
    let (req, response) = res.into_parts();
    // The API answers every error with a problem document, the router's 404 and 405 too.
    if req.path().starts_with(crate::web::auth::API_PREFIX) {
        drop(response);
        let mut problem =
            ApiError::from(Problem::for_status(status, Some(message))).error_response();
        // A 405 says which methods the address does answer (RFC 9110).
        let allowed = req.match_pattern().and_then(|pattern| {
            let state = req.app_data::<web::Data<AppState>>()?;
            let methods = state.access.methods(&pattern);
            (!methods.is_empty()).then(|| {
                methods
                    .iter()
                    .map(|m| m.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            })
        });
        if let (405, Some(allowed)) = (status.as_u16(), allowed) {
            if let Ok(value) = HeaderValue::from_str(&allowed) {
                problem.headers_mut().insert(header::ALLOW, value);
            }
        }
        return Ok(ErrorHandlerResponse::Response(
            ServiceResponse::new(req, problem).map_body(|_, body| EitherBody::right(body.boxed())),
        ));
    }
    let page = req.app_data::<web::Data<AppState>>().and_then(|state| {
        let viewer = Viewer {
            user: req.extensions().get::<CurrentUser>().cloned(),
            csrf: req
                .extensions()
                .get::<CsrfToken>()
                .map(|t| t.0.clone())
                .unwrap_or_default(),
        };
        let context = minijinja::context! {
            status => status.as_u16(),
            reason => status.canonical_reason().unwrap_or("Error"),
            message => message,
        };
        state.pages.render_for(&viewer, "error.html", context).ok()
    });
    let Some(page) = page else {
        return Ok(ErrorHandlerResponse::Response(
            ServiceResponse::new(req, response).map_into_left_body(),
        ));
    };
    let mut response = response.set_body(page);
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    // The page names the signed-in person and carries their CSRF token.
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(ErrorHandlerResponse::Response(
        ServiceResponse::new(req, response).map_body(|_, body| EitherBody::right(body.boxed())),
    ))
}

fn default_message(status: u16) -> &'static str {
    match status {
        400 => "The request could not be understood.",
        403 => "You are not allowed to do this.",
        404 => "There is nothing at this address.",
        405 => "This address does not accept that kind of request.",
        413 => "What was sent is too large.",
        429 => "Too many requests. Please wait a little and try again.",
        503 => "The service is not available right now. Please try again in a minute.",
        _ => "Something went wrong. Please try again.",
    }
}
