//! `/releases/ack/{token}`: a member confirms receipt of an embargoed mailing through the
//! signed link in it. The GET only shows a button: mail scanners fetch links.

use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};

use crate::db;
use crate::error::AppError;
use crate::releases::release;
use crate::web::auth::{CsrfForm, EmptyForm, Viewer};
use crate::web::AppState;

fn invalid(state: &AppState, viewer: &Viewer) -> Result<HttpResponse, AppError> {
    state.pages.page_with_status(
        StatusCode::NOT_FOUND,
        viewer,
        "link_problem.html",
        minijinja::context! { message => "This receipt link is not valid. Check that the whole link was copied from the mail." },
    )
}

pub async fn page(
    state: web::Data<AppState>,
    viewer: Viewer,
    token: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let token = token.into_inner();
    let Some((release_id, _, revision)) = state.ctx.links.verify_receipt_link(&token) else {
        return invalid(&state, &viewer);
    };
    let found = db::run(&state.pool, move |c| release::find(c, release_id)).await?;
    let Some(found) = found else {
        return invalid(&state, &viewer);
    };
    state.pages.page(
        &viewer,
        "receipt.html",
        minijinja::context! { title => found.title, revision, token, done => false },
    )
}

pub async fn confirm(
    state: web::Data<AppState>,
    viewer: Viewer,
    token: web::Path<String>,
    CsrfForm(_): CsrfForm<EmptyForm>,
) -> Result<HttpResponse, AppError> {
    let token = token.into_inner();
    let Some((release_id, member_id, revision)) = state.ctx.links.verify_receipt_link(&token)
    else {
        return invalid(&state, &viewer);
    };
    let found = db::run(&state.pool, move |c| {
        let found = release::find(c, release_id)?;
        if found.is_some() {
            release::acknowledge(c, release_id, member_id, revision)?;
        }
        Ok::<_, db::DbError>(found)
    })
    .await?;
    let Some(found) = found else {
        return invalid(&state, &viewer);
    };
    state.pages.page(
        &viewer,
        "receipt.html",
        minijinja::context! { title => found.title, revision, token, done => true },
    )
}
