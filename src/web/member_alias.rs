//! `/members/alias/{token}`: the link mailed to a member's new security alias. The page says
//! which change it confirms; nothing changes on GET (mail scanners fetch links), the button
//! posts and the change is made. The rules are in `membership::member_edit`.

use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};

use crate::db;
use crate::error::AppError;
use crate::membership::member_edit::{self, AliasLinkProblem};
use crate::web::auth::{CsrfForm, EmptyForm, Viewer};
use crate::web::AppState;

fn link_problem(
    state: &AppState,
    viewer: &Viewer,
    problem: AliasLinkProblem,
) -> Result<HttpResponse, AppError> {
    let (status, message) = match problem {
        AliasLinkProblem::Unknown => (StatusCode::NOT_FOUND, "This confirmation link is not known. Check that the whole link was copied from the mail."),
        AliasLinkProblem::Used => (StatusCode::GONE, "This confirmation link was already used. Each link works once; the alias was changed when it was followed."),
        AliasLinkProblem::Expired => (StatusCode::GONE, "This confirmation link has expired, or a newer change replaced it; the alias was not changed. Ask the working group to request the change again."),
        AliasLinkProblem::Closed => (StatusCode::GONE, "This organisation is no longer a member of the list, so this link does nothing."),
        AliasLinkProblem::Taken => (StatusCode::CONFLICT, "This address has become another member's security alias in the meantime, so it cannot be this organisation's; the alias was not changed. Ask the working group."),
    };
    state.pages.page_with_status(
        status,
        viewer,
        "link_problem.html",
        minijinja::context! { message },
    )
}

/// Shows what following the link will do.
pub async fn page(
    state: web::Data<AppState>,
    viewer: Viewer,
    token: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let token = token.into_inner();
    let ctx = state.ctx.clone();
    let lookup = token.clone();
    match db::run(&state.pool, move |c| {
        member_edit::check_alias_link(c, &ctx, &lookup)
    })
    .await?
    {
        Ok(change) => state.pages.page(
            &viewer,
            "member_alias.html",
            minijinja::context! { token, change },
        ),
        Err(problem) => link_problem(&state, &viewer, problem),
    }
}

/// The page's button: the alias changes.
pub async fn confirm(
    state: web::Data<AppState>,
    viewer: Viewer,
    token: web::Path<String>,
    CsrfForm(_): CsrfForm<EmptyForm>,
) -> Result<HttpResponse, AppError> {
    let token = token.into_inner();
    let ctx = state.ctx.clone();
    match db::run(&state.pool, move |c| {
        member_edit::confirm_alias_change(c, &ctx, &token)
    })
    .await?
    {
        Ok(change) => {
            state.mailer.wake_workers();
            state.pages.page(
                &viewer,
                "member_alias_done.html",
                minijinja::context! { change },
            )
        }
        Err(problem) => link_problem(&state, &viewer, problem),
    }
}
