//! Post/Redirect/Get for every form: run the workflow, then either redirect to a page with a
//! notice, or show the page again with the refusal (the values typed, and a message per field
//! or the reason). How a workflow's error becomes a refusal is decided in `crate::error`.

use std::future::Future;

use actix_web::http::header;
use actix_web::HttpResponse;

use crate::db::{self, DbConnection, DbError};
use crate::error::{AppError, Refusal, WorkflowError};
use crate::web::AppState;

/// Runs `work`; on success wakes the mail workers (the work may have queued mail) and
/// redirects to `done(value)`; on a refusal answers with `again(refusal)`.
pub async fn act<T, E, W, D, R, Fut>(
    state: &AppState,
    work: W,
    done: D,
    again: R,
) -> Result<HttpResponse, AppError>
where
    T: Send + 'static,
    E: WorkflowError + Send + 'static,
    W: FnOnce(&mut DbConnection) -> Result<T, E> + Send + 'static,
    D: FnOnce(T) -> String,
    R: FnOnce(Refusal) -> Fut,
    Fut: Future<Output = Result<HttpResponse, AppError>>,
{
    match db::run(&state.pool, move |c| Ok::<_, DbError>(work(c))).await? {
        Ok(value) => {
            state.mailer.wake_workers();
            Ok(see_other(&done(value)))
        }
        Err(error) => match error.into_response() {
            Ok(refusal) => again(refusal).await,
            Err(error) => Err(error),
        },
    }
}

/// After a successful form, the browser is sent to a page to GET.
pub fn see_other(location: &str) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, location.to_owned()))
        .finish()
}
