//! `/members/key/{token}`: a member gives the list a new OpenPGP key through the signed link
//! it was mailed, and proves it holds the key by typing back a code encrypted to it. The rules
//! are in `membership::keys`; this module checks the link, calls them and renders.

use std::ops::ControlFlow::{self, Break, Continue};

use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};
use serde::{Deserialize, Serialize};

use crate::db;
use crate::error::{AppError, FieldErrors, Refusal, WorkflowError};
use crate::membership::keys::{self, KeyError, KeySummary, PendingChange};
use crate::membership::members::Member;
use crate::web::auth::{CheckedForm, CsrfForm, Viewer};
use crate::web::AppState;

/// Shown for a forged, altered or expired link alike, so a link says nothing about who is a
/// member.
const LINK_INVALID: &str = "This link is not valid or has expired. Use the link in the list's latest mail about your key, or ask the working group for a new one.";
const NOT_MEMBER: &str =
    "This organisation is no longer a member of the list, so this link does nothing.";
const TOKEN_REFUSED: &str = "Nothing was checked or stored: the form's security token did not match this browser. That happens when cookies are blocked or the page was open for a long time. Please send the form again.";
/// An armored message of a short code is about 1 KiB; anything far longer is not ours.
const MAX_CHALLENGE_BYTES: usize = 16 * 1024;

#[derive(Debug, Default, Deserialize)]
pub struct KeyForm {
    #[serde(default)]
    pgp_key: String,
}

#[derive(Debug, Deserialize)]
pub struct CodeForm {
    #[serde(default)]
    change: String,
    #[serde(default)]
    code: String,
    /// The encrypted code as the page showed it, sent back so a refused code keeps it on the
    /// page; shown only, never trusted.
    #[serde(default)]
    challenge: String,
}

#[derive(Serialize)]
struct Pending {
    id: i64,
    fingerprint: String,
    expires_at: String,
    attempts_left: i32,
    challenge: String,
}

impl Pending {
    fn new(change: &PendingChange, challenge: String) -> Self {
        Self {
            id: change.id,
            fingerprint: crate::mail::grouped_fingerprint(&change.fingerprint),
            expires_at: change
                .expires_at
                .and_utc()
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            attempts_left: change.attempts_left,
            challenge,
        }
    }
}

#[derive(Serialize)]
struct KeyPage<'a> {
    token: &'a str,
    org_name: &'a str,
    alias: &'a str,
    current: KeySummary,
    pgp_key: &'a str,
    errors: FieldErrors,
    problem: Option<String>,
    pending: Option<Pending>,
    code_minutes: i64,
}

struct Page<'a> {
    state: &'a AppState,
    viewer: &'a Viewer,
    token: &'a str,
}

/// What a handler answers.
type Answer = Result<HttpResponse, AppError>;

impl Page<'_> {
    fn link_problem(&self, message: &str) -> Answer {
        self.state.pages.page_with_status(
            StatusCode::GONE,
            self.viewer,
            "link_problem.html",
            minijinja::context! { message },
        )
    }

    /// A workflow error as a refusal to show on the page, or the answer it gets on its own
    /// (`Break`): the link-problem page when the link does nothing, the error page for the rest.
    fn refusal(&self, error: KeyError) -> ControlFlow<Answer, Refusal> {
        match error {
            KeyError::NotFound => Break(self.link_problem(LINK_INVALID)),
            KeyError::Removed => Break(self.link_problem(NOT_MEMBER)),
            other => match other.into_response() {
                Ok(refusal) => Continue(refusal),
                Err(error) => Break(Err(error)),
            },
        }
    }

    /// The link's member, as the workflows see it, or the answer when there is none (`Break`).
    async fn member(&self, member_id: i64) -> ControlFlow<Answer, Member> {
        let found = db::run(&self.state.pool, move |c| {
            Ok::<_, db::DbError>(keys::member_for_link(c, member_id))
        })
        .await;
        match found {
            Ok(Ok(member)) => Continue(member),
            Ok(Err(error)) => match self.refusal(error) {
                Continue(refusal) => Break(Err(refusal.into())),
                Break(answer) => Break(answer),
            },
            Err(error) => Break(Err(error.into())),
        }
    }

    fn show(
        &self,
        status: StatusCode,
        member: &Member,
        pgp_key: &str,
        refusal: Option<Refusal>,
        pending: Option<Pending>,
    ) -> Answer {
        // A secret key pasted by mistake is never sent back to the browser.
        let pgp_key = if pgp_key.contains("PRIVATE KEY BLOCK") {
            ""
        } else {
            pgp_key
        };
        let errors = refusal
            .as_ref()
            .map(Refusal::field_errors)
            .unwrap_or_default();
        // A message for the code field has no field to stand beside once the change is gone.
        let problem = refusal.as_ref().and_then(Refusal::banner).or_else(|| {
            pending
                .is_none()
                .then(|| errors.get("code").cloned())
                .flatten()
        });
        let page = KeyPage {
            token: self.token,
            org_name: &member.org_name,
            alias: member.security_alias.as_str(),
            current: keys::summary(member, self.state.ctx.clock.now_naive()),
            pgp_key,
            errors,
            problem,
            pending,
            code_minutes: keys::CODE_MINUTES,
        };
        self.state
            .pages
            .page_with_status(status, self.viewer, "member_key.html", page)
    }
}

/// The member of a key link that is signed and unexpired.
fn linked_member(state: &AppState, token: &str) -> Option<i64> {
    state
        .ctx
        .links
        .verify_key_link(token, state.ctx.clock.now().timestamp())
}

pub async fn page(state: web::Data<AppState>, viewer: Viewer, token: web::Path<String>) -> Answer {
    let page = Page {
        state: &state,
        viewer: &viewer,
        token: &token,
    };
    let Some(member_id) = linked_member(&state, &token) else {
        return page.link_problem(LINK_INVALID);
    };
    match page.member(member_id).await {
        Continue(member) => page.show(StatusCode::OK, &member, "", None, None),
        Break(answer) => answer,
    }
}

/// A key handed in: shown again with why when it cannot be used; otherwise the code
/// encrypted to it, with the field to type the code back.
pub async fn submit(
    state: web::Data<AppState>,
    viewer: Viewer,
    token: web::Path<String>,
    CheckedForm { form, csrf_ok }: CheckedForm<KeyForm>,
) -> Answer {
    let page = Page {
        state: &state,
        viewer: &viewer,
        token: &token,
    };
    let Some(member_id) = linked_member(&state, &token) else {
        return page.link_problem(LINK_INVALID);
    };
    let (status, refusal) = if csrf_ok {
        let ctx = state.ctx.clone();
        let armored = form.pgp_key.clone();
        let proposed = db::run(&state.pool, move |c| {
            Ok::<_, db::DbError>(keys::propose(c, &ctx, member_id, &armored))
        })
        .await?;
        match proposed {
            Ok(proposal) => {
                let pending = Pending::new(&proposal.change, proposal.challenge);
                return match page.member(member_id).await {
                    Continue(member) => page.show(StatusCode::OK, &member, "", None, Some(pending)),
                    Break(answer) => answer,
                };
            }
            Err(error) => match page.refusal(error) {
                Continue(refusal) => (refusal.status(), refusal),
                Break(answer) => return answer,
            },
        }
    } else {
        (StatusCode::FORBIDDEN, Refusal::conflict(TOKEN_REFUSED))
    };
    match page.member(member_id).await {
        Continue(member) => page.show(status, &member, &form.pgp_key, Some(refusal), None),
        Break(answer) => answer,
    }
}

/// The code typed back: the done page when it puts the key in use; otherwise the page again,
/// with the code field while the change is still open, or the key form with why it is void.
pub async fn confirm(
    state: web::Data<AppState>,
    viewer: Viewer,
    token: web::Path<String>,
    CsrfForm(form): CsrfForm<CodeForm>,
) -> Answer {
    let page = Page {
        state: &state,
        viewer: &viewer,
        token: &token,
    };
    let Some(member_id) = linked_member(&state, &token) else {
        return page.link_problem(LINK_INVALID);
    };
    // An id that is not a number names no change: the workflow says the change is void.
    let change_id: i64 = form.change.trim().parse().unwrap_or(0);
    let ctx = state.ctx.clone();
    let typed = form.code.clone();
    let confirmed = db::run(&state.pool, move |c| {
        Ok::<_, db::DbError>(keys::confirm(c, &ctx, member_id, change_id, &typed))
    })
    .await?;
    let refusal = match confirmed {
        Ok(changed) => {
            state.mailer.wake_workers();
            let member = match page.member(member_id).await {
                Continue(member) => member,
                Break(answer) => return answer,
            };
            let context = minijinja::context! {
                org_name => member.org_name,
                alias => member.security_alias,
                current => keys::summary(&member, state.ctx.clock.now_naive()),
                old_fingerprint => changed.old_fingerprint.as_deref().map(crate::mail::grouped_fingerprint),
            };
            return state.pages.page(&viewer, "member_key_done.html", context);
        }
        Err(error) => match page.refusal(error) {
            Continue(refusal) => refusal,
            Break(answer) => return answer,
        },
    };
    let member = match page.member(member_id).await {
        Continue(member) => member,
        Break(answer) => return answer,
    };
    let now = state.ctx.clock.now_naive();
    let open = db::run(&state.pool, move |c| {
        keys::open_change(c, member_id, change_id, now)
    })
    .await?;
    let challenge = if form.challenge.len() <= MAX_CHALLENGE_BYTES {
        form.challenge.trim().to_owned()
    } else {
        String::new()
    };
    let pending = open.map(|change| Pending::new(&change, challenge));
    page.show(refusal.status(), &member, "", Some(refusal), pending)
}
