//! Builds the running service from [`Settings`]: the database pool (migrated), the mail
//! transport and its workers, and the HTTP server with the whole route table below.

use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::{Server, ServerHandle};
use actix_web::middleware::{DefaultHeaders, ErrorHandlers};
use actix_web::{web, App, HttpServer};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing_actix_web::TracingLogger;

use crate::telemetry::RequestSpan;

use crate::accounts::password::Hasher;
use crate::accounts::second_factor::SecretBox;
use crate::accounts::session::{cookie_key, KeyError};
use crate::app::Context;
use crate::clock::Clock;
use crate::config::Settings;
use crate::db::{self, DbError, DbPool};
use crate::mail::transport::{Transport, TransportError};
use crate::mail::worker::{Delivery, SendGuard, Worker};
use crate::mail::Mailer;
use crate::web::auth::{self, Access, AccessTable, RouteDef};
use crate::web::member_page;
use crate::web::ratelimit::RateLimiter;
use crate::web::{
    account, admin, admin_members, api, api_tokens, apply, assets, errors, health, home, login,
    manage_releases, openpgp, pages::Pages, public, receipts, releases_public, review,
    second_factor, AppState, CONTENT_SECURITY_POLICY,
};

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error(transparent)]
    Database(#[from] DbError),
    #[error(transparent)]
    Transport(#[from] TransportError),
    #[error(transparent)]
    Key(#[from] KeyError),
    #[error(transparent)]
    Policy(#[from] crate::membership::policy::PolicyError),
    #[error(transparent)]
    OpenPgp(#[from] crate::openpgp::OpenPgpError),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: String,
        source: std::io::Error,
    },
}

/// Every route of the service with the access it requires. Registration and authorization
/// both read this table, so a route cannot exist without a declared access.
pub fn route_table() -> Vec<RouteDef> {
    use crate::accounts::Role::{Admin, Approver, Reviewer};
    const REVIEWERS: &[crate::accounts::Role] = &[Reviewer, Approver];
    const RELEASERS: &[crate::accounts::Role] = &[crate::accounts::Role::ReleaseManager, Admin];
    use crate::accounts::api_tokens::Scope;
    use actix_web::http::Method;
    use Access::{AnyOf, Public, Role, SignedIn, Token};
    let r = |method: Method,
             path: &'static str,
             access: Access,
             route: fn() -> actix_web::Route| RouteDef {
        method,
        path,
        access,
        route,
    };
    vec![
        r(Method::GET, "/", Public, || web::get().to(home::home)),
        r(Method::GET, "/healthz", Public, || {
            web::get().to(health::healthz)
        }),
        r(Method::GET, "/readyz", Public, || {
            web::get().to(health::readyz)
        }),
        r(Method::GET, "/assets/{name}", Public, || {
            web::get().to(assets::get_asset)
        }),
        r(Method::GET, "/login", Public, || {
            web::get().to(login::login_form)
        }),
        r(Method::POST, "/login", Public, || {
            web::post().to(login::login)
        }),
        r(Method::POST, "/logout", SignedIn, || {
            web::post().to(login::logout)
        }),
        r(Method::GET, "/account", SignedIn, || {
            web::get().to(account::show)
        }),
        r(Method::POST, "/account/password", SignedIn, || {
            web::post().to(account::change_password)
        }),
        r(Method::GET, "/login/second-factor", Public, || {
            web::get().to(second_factor::code_form)
        }),
        r(Method::POST, "/login/second-factor", Public, || {
            web::post().to(second_factor::check_code)
        }),
        r(Method::GET, "/account/second-factor", SignedIn, || {
            web::get().to(second_factor::show)
        }),
        r(
            Method::POST,
            "/account/second-factor/passkey/start",
            SignedIn,
            || web::post().to(second_factor::passkey_registration_start),
        ),
        r(
            Method::POST,
            "/account/second-factor/passkey/finish",
            SignedIn,
            || web::post().to(second_factor::passkey_registration_finish),
        ),
        r(
            Method::POST,
            "/account/second-factor/passkeys/{id}/remove",
            SignedIn,
            || web::post().to(second_factor::remove_passkey),
        ),
        r(
            Method::POST,
            "/login/second-factor/passkey/start",
            Public,
            || web::post().to(second_factor::passkey_sign_in_start),
        ),
        r(
            Method::POST,
            "/login/second-factor/passkey/finish",
            Public,
            || web::post().to(second_factor::passkey_sign_in_finish),
        ),
        r(
            Method::POST,
            "/account/second-factor/totp",
            SignedIn,
            || web::post().to(second_factor::begin_totp),
        ),
        r(
            Method::POST,
            "/account/second-factor/totp/confirm",
            SignedIn,
            || web::post().to(second_factor::confirm_totp),
        ),
        r(
            Method::POST,
            "/account/second-factor/recovery-codes",
            SignedIn,
            || web::post().to(second_factor::renew_recovery_codes),
        ),
        r(
            Method::POST,
            "/account/second-factor/remove",
            SignedIn,
            || web::post().to(second_factor::remove),
        ),
        r(
            Method::GET,
            "/admin/users/{id}/second-factor/reset",
            Role(Admin),
            || web::get().to(admin::reset_second_factor_page),
        ),
        r(
            Method::POST,
            "/admin/users/{id}/second-factor/reset",
            Role(Admin),
            || web::post().to(admin::reset_second_factor),
        ),
        r(Method::GET, "/admin", Role(Admin), || {
            web::get().to(admin::index)
        }),
        r(Method::GET, "/admin/users", Role(Admin), || {
            web::get().to(admin::users)
        }),
        r(Method::POST, "/admin/users", Role(Admin), || {
            web::post().to(admin::create_user)
        }),
        r(Method::POST, "/admin/users/{id}/roles", Role(Admin), || {
            web::post().to(admin::set_roles)
        }),
        r(
            Method::POST,
            "/admin/users/{id}/disable",
            Role(Admin),
            || web::post().to(admin::disable),
        ),
        r(
            Method::POST,
            "/admin/users/{id}/enable",
            Role(Admin),
            || web::post().to(admin::enable),
        ),
        r(
            Method::POST,
            "/admin/users/{id}/reset-password",
            Role(Admin),
            || web::post().to(admin::reset_password),
        ),
        r(Method::GET, "/admin/audit", Role(Admin), || {
            web::get().to(admin::audit_log)
        }),
        r(Method::GET, "/criteria", Public, || {
            web::get().to(public::criteria)
        }),
        r(Method::GET, "/embargo-policy", Public, || {
            web::get().to(public::embargo_policy)
        }),
        r(Method::GET, "/members", Public, || {
            web::get().to(public::roster)
        }),
        r(Method::GET, "/openpgp.asc", Public, || {
            web::get().to(openpgp::armored)
        }),
        r(
            Method::GET,
            "/.well-known/openpgpkey/hu/{hash}",
            Public,
            || web::get().to(openpgp::direct_key),
        ),
        r(
            Method::GET,
            "/.well-known/openpgpkey/policy",
            Public,
            || web::get().to(openpgp::direct_policy),
        ),
        r(
            Method::GET,
            "/.well-known/openpgpkey/{domain}/hu/{hash}",
            Public,
            || web::get().to(openpgp::advanced_key),
        ),
        r(
            Method::GET,
            "/.well-known/openpgpkey/{domain}/policy",
            Public,
            || web::get().to(openpgp::advanced_policy),
        ),
        r(Method::GET, "/releases", Public, || {
            web::get().to(releases_public::list)
        }),
        r(Method::GET, "/releases/{id}", Public, || {
            web::get().to(releases_public::show)
        }),
        r(Method::GET, "/releases/{id}/osv.json", Public, || {
            web::get().to(releases_public::osv)
        }),
        r(Method::GET, "/releases/{id}/osv/{cve}.json", Public, || {
            web::get().to(releases_public::osv_advisory)
        }),
        r(Method::GET, "/releases/{id}/csaf.json", Public, || {
            web::get().to(releases_public::csaf)
        }),
        r(Method::GET, "/feed.atom", Public, || {
            web::get().to(releases_public::atom)
        }),
        r(Method::GET, "/calendar.ics", Public, || {
            web::get().to(releases_public::ics)
        }),
        r(
            Method::GET,
            "/members/accept-policy/{token}",
            Public,
            || web::get().to(public::accept_policy_page),
        ),
        r(
            Method::POST,
            "/members/accept-policy/{token}",
            Public,
            || web::post().to(public::accept_policy),
        ),
        r(Method::GET, "/members/key/{token}", Public, || {
            web::get().to(crate::web::member_key::page)
        }),
        r(Method::POST, "/members/key/{token}", Public, || {
            web::post().to(crate::web::member_key::submit)
        }),
        r(Method::POST, "/members/key/{token}/confirm", Public, || {
            web::post().to(crate::web::member_key::confirm)
        }),
        r(Method::GET, "/apply", Public, || web::get().to(apply::form)),
        r(Method::POST, "/apply", Public, || {
            web::post().to(apply::submit)
        }),
        r(Method::GET, "/apply/confirm/{token}", Public, || {
            web::get().to(apply::confirm_page)
        }),
        r(Method::POST, "/apply/confirm/{token}", Public, || {
            web::post().to(apply::confirm)
        }),
        r(Method::GET, "/apply/status/{token}", Public, || {
            web::get().to(apply::status)
        }),
        r(Method::GET, "/apply/status/{token}/edit", Public, || {
            web::get().to(apply::edit_form)
        }),
        r(Method::POST, "/apply/status/{token}/edit", Public, || {
            web::post().to(apply::edit)
        }),
        r(Method::POST, "/apply/status/{token}/resend", Public, || {
            web::post().to(apply::resend)
        }),
        r(
            Method::POST,
            "/apply/status/{token}/withdraw",
            Public,
            || web::post().to(apply::withdraw),
        ),
        r(
            Method::GET,
            "/review/applications",
            AnyOf(REVIEWERS),
            || web::get().to(review::queue),
        ),
        r(
            Method::GET,
            "/review/applications/{id}",
            AnyOf(REVIEWERS),
            || web::get().to(review::detail),
        ),
        r(
            Method::POST,
            "/review/applications/{id}/vote",
            Role(Reviewer),
            || web::post().to(review::vote),
        ),
        r(
            Method::POST,
            "/review/applications/{id}/comment",
            AnyOf(REVIEWERS),
            || web::post().to(review::comment),
        ),
        r(
            Method::POST,
            "/review/applications/{id}/approve",
            Role(Approver),
            || web::post().to(review::approve),
        ),
        r(
            Method::POST,
            "/review/applications/{id}/decline",
            Role(Approver),
            || web::post().to(review::decline),
        ),
        r(Method::GET, "/manage/releases", AnyOf(RELEASERS), || {
            web::get().to(manage_releases::list)
        }),
        r(Method::POST, "/manage/releases", AnyOf(RELEASERS), || {
            web::post().to(manage_releases::plan)
        }),
        r(
            Method::GET,
            "/manage/releases/{id}",
            AnyOf(RELEASERS),
            || web::get().to(manage_releases::detail),
        ),
        r(
            Method::POST,
            "/manage/releases/{id}/advisories",
            AnyOf(RELEASERS),
            || web::post().to(manage_releases::add_advisory),
        ),
        r(
            Method::POST,
            "/manage/releases/{id}/patches",
            AnyOf(RELEASERS),
            || web::post().to(manage_releases::upload_patch),
        ),
        r(
            Method::POST,
            "/manage/releases/{id}/patches/{patch}/reclassify",
            AnyOf(RELEASERS),
            || web::post().to(manage_releases::reclassify),
        ),
        r(
            Method::POST,
            "/manage/releases/{id}/exception",
            AnyOf(RELEASERS),
            || web::post().to(manage_releases::exception),
        ),
        r(
            Method::POST,
            "/manage/releases/{id}/approve",
            AnyOf(RELEASERS),
            || web::post().to(manage_releases::approve),
        ),
        r(
            Method::GET,
            "/manage/releases/{id}/cancel",
            AnyOf(RELEASERS),
            || web::get().to(manage_releases::cancel_confirm),
        ),
        r(
            Method::POST,
            "/manage/releases/{id}/cancel",
            AnyOf(RELEASERS),
            || web::post().to(manage_releases::cancel),
        ),
        r(
            Method::POST,
            "/manage/releases/{id}/postpone",
            AnyOf(RELEASERS),
            || web::post().to(manage_releases::postpone),
        ),
        r(Method::GET, "/releases/ack/{token}", Public, || {
            web::get().to(receipts::page)
        }),
        r(Method::POST, "/releases/ack/{token}", Public, || {
            web::post().to(receipts::confirm)
        }),
        r(Method::GET, "/admin/upstreams", Role(Admin), || {
            web::get().to(admin::upstreams)
        }),
        r(Method::POST, "/admin/upstreams", Role(Admin), || {
            web::post().to(admin::add_upstream)
        }),
        r(Method::GET, "/admin/members", Role(Admin), || {
            web::get().to(admin_members::list)
        }),
        r(
            Method::POST,
            "/admin/members/{id}/suspend",
            Role(Admin),
            || web::post().to(admin_members::suspend),
        ),
        r(
            Method::POST,
            "/admin/members/{id}/reinstate",
            Role(Admin),
            || web::post().to(admin_members::reinstate),
        ),
        r(
            Method::POST,
            "/admin/members/{id}/remove",
            Role(Admin),
            || web::post().to(admin_members::remove),
        ),
        r(
            Method::POST,
            "/admin/members/{id}/reviewed",
            Role(Admin),
            || web::post().to(admin_members::reviewed),
        ),
        r(
            Method::POST,
            "/admin/members/{id}/breach",
            Role(Admin),
            || web::post().to(admin_members::breach),
        ),
        r(
            Method::POST,
            "/admin/members/{id}/key-link",
            Role(Admin),
            || web::post().to(admin_members::key_link),
        ),
        r(Method::GET, "/admin/outbox", AnyOf(RELEASERS), || {
            web::get().to(crate::web::admin_outbox::list)
        }),
        r(
            Method::POST,
            "/admin/outbox/{id}/resend",
            AnyOf(RELEASERS),
            || web::post().to(crate::web::admin_outbox::resend),
        ),
        // Roster search, export and member edit; pages that ask before destructive actions.
        r(Method::GET, "/admin/members.csv", Role(Admin), || {
            web::get().to(admin_members::export_csv)
        }),
        r(Method::GET, "/admin/members.json", Role(Admin), || {
            web::get().to(admin_members::export_json)
        }),
        r(Method::GET, "/admin/members/{id}/edit", Role(Admin), || {
            web::get().to(admin_members::edit_form)
        }),
        r(
            Method::POST,
            "/admin/members/{id}/edit",
            Role(Admin),
            || web::post().to(admin_members::edit),
        ),
        r(
            Method::GET,
            "/admin/members/{id}/remove",
            Role(Admin),
            || web::get().to(admin_members::remove_page),
        ),
        r(
            Method::GET,
            "/admin/users/{id}/disable",
            Role(Admin),
            || web::get().to(admin::disable_page),
        ),
        r(
            Method::GET,
            "/admin/users/{id}/reset-password",
            Role(Admin),
            || web::get().to(admin::reset_password_page),
        ),
        r(Method::GET, "/members/alias/{token}", Public, || {
            web::get().to(crate::web::member_alias::page)
        }),
        r(Method::POST, "/members/alias/{token}", Public, || {
            web::post().to(crate::web::member_alias::confirm)
        }),
        // A member's own page: signed in by a link mailed to its alias, no member id in URLs.
        r(Method::GET, "/member/sign-in", Public, || {
            web::get().to(member_page::sign_in_form)
        }),
        r(Method::POST, "/member/sign-in", Public, || {
            web::post().to(member_page::request_link)
        }),
        r(Method::GET, "/member/sign-in/{token}", Public, || {
            web::get().to(member_page::link_page)
        }),
        r(Method::POST, "/member/sign-in/{token}", Public, || {
            web::post().to(member_page::use_link)
        }),
        r(Method::POST, "/member/sign-out", Access::Member, || {
            web::post().to(member_page::sign_out)
        }),
        r(Method::GET, "/member", Access::Member, || {
            web::get().to(member_page::home)
        }),
        r(Method::POST, "/member/acknowledge", Access::Member, || {
            web::post().to(member_page::acknowledge)
        }),
        r(Method::POST, "/member/policy", Access::Member, || {
            web::post().to(member_page::accept_policy)
        }),
        r(Method::GET, "/member/contacts", Access::Member, || {
            web::get().to(member_page::contacts_form)
        }),
        r(Method::POST, "/member/contacts", Access::Member, || {
            web::post().to(member_page::save_contacts)
        }),
        r(Method::GET, "/member/key", Access::Member, || {
            web::get().to(member_page::key)
        }),
        // An account's own API tokens.
        r(Method::GET, "/account/tokens", SignedIn, || {
            web::get().to(api_tokens::show)
        }),
        r(Method::POST, "/account/tokens", SignedIn, || {
            web::post().to(api_tokens::create)
        }),
        r(
            Method::POST,
            "/account/tokens/{id}/revoke",
            SignedIn,
            || web::post().to(api_tokens::revoke),
        ),
        // The JSON API: public, or with a token holding the scope.
        r(Method::GET, "/api/v1/openapi.json", Public, || {
            web::get().to(api::openapi_json)
        }),
        r(Method::GET, "/api/v1/docs", Public, || {
            web::get().to(api::docs_page)
        }),
        r(Method::GET, "/api/v1/releases", Public, || {
            web::get().to(api::public::releases)
        }),
        r(Method::GET, "/api/v1/releases/{id}", Public, || {
            web::get().to(api::public::release)
        }),
        r(Method::GET, "/api/v1/advisories", Public, || {
            web::get().to(api::public::advisories)
        }),
        r(Method::GET, "/api/v1/calendar", Public, || {
            web::get().to(api::public::calendar)
        }),
        r(Method::GET, "/api/v1/roster", Public, || {
            web::get().to(api::public::roster)
        }),
        r(
            Method::GET,
            "/api/v1/applications",
            Token(Scope::ApplicationsRead),
            || web::get().to(api::staff::applications),
        ),
        r(
            Method::GET,
            "/api/v1/applications/{id}",
            Token(Scope::ApplicationsRead),
            || web::get().to(api::staff::application),
        ),
        r(
            Method::GET,
            "/api/v1/members",
            Token(Scope::MembersRead),
            || web::get().to(api::staff::members),
        ),
        r(
            Method::GET,
            "/api/v1/manage/releases",
            Token(Scope::ReleasesRead),
            || web::get().to(api::staff::manage_releases),
        ),
        r(
            Method::POST,
            "/api/v1/manage/releases",
            Token(Scope::ReleasesWrite),
            || web::post().to(api::staff::plan_release),
        ),
        r(
            Method::GET,
            "/api/v1/manage/releases/{id}",
            Token(Scope::ReleasesRead),
            || web::get().to(api::staff::manage_release),
        ),
        r(
            Method::GET,
            "/api/v1/manage/releases/{id}/deliveries",
            Token(Scope::ReleasesRead),
            || web::get().to(api::staff::deliveries),
        ),
        r(
            Method::POST,
            "/api/v1/manage/releases/{id}/advisories",
            Token(Scope::ReleasesWrite),
            || web::post().to(api::staff::add_advisory),
        ),
        r(
            Method::POST,
            "/api/v1/manage/releases/{id}/patches",
            Token(Scope::ReleasesWrite),
            || web::post().to(api::staff::upload_patch),
        ),
    ]
}

/// The access the route table gives `method` on `path`: the one rule the web guard and the
/// command line both check roles against.
pub fn access_for(method: &actix_web::http::Method, path: &str) -> Option<Access> {
    // Asked on every API request (a token's scope is allowed by a route's access): the table
    // is built once.
    static ACCESS: std::sync::OnceLock<AccessTable> = std::sync::OnceLock::new();
    ACCESS
        .get_or_init(|| AccessTable::new(&route_table()))
        .lookup(method, path)
}

/// The last check every outgoing message passes: the release rules (stale embargoed mail is
/// held, an upstream's embargoed patch is never attached, embargoed mail is encrypted to a
/// usable key or not sent).
pub fn send_guard(ctx: Context) -> SendGuard {
    Arc::new(move |conn, rows, now| {
        crate::releases::distribution::before_send(conn, &ctx, rows, now)
    })
}

/// HEAD is answered by the GET route of the same path, as HTTP asks: uptime checkers and link
/// checkers use it. The request reaches the route as a GET; the connection still knows it was
/// a HEAD and sends the headers without the body.
async fn head_as_get(
    mut req: actix_web::dev::ServiceRequest,
    next: actix_web::middleware::Next<impl actix_web::body::MessageBody>,
) -> Result<actix_web::dev::ServiceResponse<impl actix_web::body::MessageBody>, actix_web::Error> {
    if req.method() == actix_web::http::Method::HEAD {
        req.head_mut().method = actix_web::http::Method::GET;
    }
    next.call(req).await
}

/// Registers the route table, one resource per path.
pub fn routes(cfg: &mut web::ServiceConfig) {
    let table = route_table();
    let mut paths: Vec<&'static str> = Vec::new();
    for def in &table {
        if !paths.contains(&def.path) {
            paths.push(def.path);
        }
    }
    for path in paths {
        let mut resource = web::resource(path);
        for def in table.iter().filter(|d| d.path == path) {
            resource = resource.route((def.route)());
        }
        cfg.service(resource);
    }
}

/// Opens the pool and brings the schema up to date. PostgreSQL runs the migrations under an
/// advisory lock, so several processes starting at once do not race each other.
pub async fn prepare_database(settings: &Settings) -> Result<DbPool, DbError> {
    let settings = settings.clone();
    let pool = tokio::task::spawn_blocking(move || db::connect(&settings))
        .await
        .map_err(|e| DbError::Task(e.to_string()))??;
    let applied = db::run(&pool, db::migrate_locked).await?;
    if applied > 0 {
        tracing::info!(applied, "Database migrations applied.");
    }
    Ok(pool)
}

/// Facts this version derives from stored rows that an earlier version may not have derived:
/// the files of patches stored before they were recorded, the patches of open releases checked
/// again with what this version knows of upstreams' trees, and members' key fingerprints. Run
/// by the long-lived processes and `edl migrate` at start, not by every command.
pub async fn bring_derived_facts_up_to_date(pool: &DbPool) -> Result<(), DbError> {
    let (recorded, flagged) = db::run(pool, |conn| {
        let recorded = crate::releases::release::record_missing_evidence(conn)?;
        let flagged = crate::releases::upstream::recheck_open_patches(conn)?;
        crate::membership::members::record_missing_key_facts(conn)?;
        Ok::<_, DbError>((recorded, flagged))
    })
    .await?;
    if recorded > 0 || flagged > 0 {
        tracing::warn!(
            recorded,
            flagged,
            "Patches checked again: files recorded, and patches of open releases flagged."
        );
    }
    Ok(())
}

/// How the application is assembled; the defaults are what `edl serve` runs.
pub struct Options {
    /// Overrides the transport from the settings (tests capture mail in memory).
    pub transport: Option<Transport>,
    /// Whether SIGINT/SIGTERM stop the server (off in tests, where many run in one process).
    pub handle_signals: bool,
    /// The clock every time rule reads; tests move it forward instead of sleeping.
    pub clock: Clock,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            transport: None,
            handle_signals: true,
            clock: Clock::system(),
        }
    }
}

pub struct Application {
    port: u16,
    server: Server,
    workers: Vec<JoinHandle<()>>,
    stop_workers: watch::Sender<bool>,
    pub state: web::Data<AppState>,
}

impl Application {
    pub async fn build(settings: Settings, options: Options) -> Result<Self, StartupError> {
        let pool = prepare_database(&settings).await?;
        bring_derived_facts_up_to_date(&pool).await?;
        let transport = match options.transport {
            Some(t) => t,
            None => Transport::from_settings(&settings)?,
        };
        let listener = TcpListener::bind(settings.bind).map_err(|source| StartupError::Bind {
            addr: settings.bind.to_string(),
            source,
        })?;
        let port = listener
            .local_addr()
            .map_err(|source| StartupError::Bind {
                addr: settings.bind.to_string(),
                source,
            })?
            .port();

        let mailer = Mailer::new(&settings)?;
        let (stop_workers, stopped) = watch::channel(false);
        let key = cookie_key(&settings)?;
        let settings = Arc::new(settings);
        // Member links are signed with a key of their own, derived from the cookie key.
        let ctx = Context::new(
            settings.clone(),
            mailer.clone(),
            key.signing().to_vec(),
            options.clock.clone(),
        )?;
        let delivery = delivery(&ctx, &pool, &transport);
        let mut workers = spawn_workers(&settings, &delivery, &stopped, "serve");
        workers.push(spawn_scheduler(&pool, ctx.clone(), stopped.clone()));
        workers.extend(spawn_checkpointer(&pool, &settings, stopped.clone()));
        let state = web::Data::new(AppState {
            pages: Pages::new(&settings),
            second_factor: SecretBox::new(key.master()),
            passkeys: passkey_relying_party(&settings),
            cookie_key: key,
            settings,
            pool,
            mailer,
            access: AccessTable::new(&route_table()),
            limiter: RateLimiter::default(),
            hasher: Hasher::default(),
            ctx,
        });
        let app_state = state.clone();
        let https = state.settings.base_url.scheme() == "https";
        let mut server = HttpServer::new(move || {
            App::new()
                .app_data(app_state.clone())
                .app_data(web::FormConfig::default().limit(256 * 1024))
                .wrap(actix_web::middleware::from_fn(auth::guard))
                .wrap(actix_web::middleware::from_fn(head_as_get))
                .wrap(ErrorHandlers::new().default_handler(errors::render_error_page))
                .wrap(security_headers(https))
                .wrap(TracingLogger::<RequestSpan>::new())
                .configure(routes)
        })
        .shutdown_timeout(30)
        .listen(listener)
        .map_err(|source| StartupError::Bind {
            addr: format!("port {port}"),
            source,
        })?;
        if !options.handle_signals {
            server = server.disable_signals();
        }
        Ok(Self {
            port,
            server: server.run(),
            workers,
            stop_workers,
            state,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn handle(&self) -> ServerHandle {
        self.server.handle()
    }

    /// Serves until SIGINT/SIGTERM (or the handle stops it), then lets in-flight requests and
    /// the mail workers finish before returning.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let result = self.server.await;
        stop_workers(&self.stop_workers, self.workers).await;
        result
    }
}

/// Passkeys need a host name in `EDL_BASE_URL` (browsers refuse an IP address as the site's
/// identity); without one they are not offered, and TOTP remains.
fn passkey_relying_party(settings: &Settings) -> Option<crate::accounts::passkeys::RelyingParty> {
    match crate::accounts::passkeys::RelyingParty::new(&settings.base_url, &settings.list_name) {
        Ok(rp) => Some(rp),
        Err(error) => {
            tracing::warn!(%error, "Passkeys are not offered.");
            None
        }
    }
}

/// Headers every response carries. Strict-Transport-Security only when the site is served
/// over https, since it binds browsers to https for a year.
fn security_headers(https: bool) -> DefaultHeaders {
    let headers = DefaultHeaders::new()
        .add(("Content-Security-Policy", CONTENT_SECURITY_POLICY))
        .add(("X-Content-Type-Options", "nosniff"))
        .add(("X-Frame-Options", "DENY"))
        .add(("Referrer-Policy", "no-referrer"));
    if https {
        headers.add(("Strict-Transport-Security", "max-age=31536000"))
    } else {
        headers
    }
}

/// What the outbox workers of this process share.
pub fn delivery(ctx: &Context, pool: &DbPool, transport: &Transport) -> Delivery {
    Delivery {
        pool: pool.clone(),
        transport: transport.clone(),
        from: ctx.mailer.from.clone(),
        settings: ctx.settings.outbox.clone(),
        wake: ctx.mailer.wake.clone(),
        pause: ctx.mailer.pause.clone(),
        guard: send_guard(ctx.clone()),
        clock: ctx.clock.clone(),
        signer: ctx.mailer.signer.clone(),
    }
}

/// Starts the configured number of outbox workers.
pub fn spawn_workers(
    settings: &Settings,
    delivery: &Delivery,
    stopped: &watch::Receiver<bool>,
    role: &str,
) -> Vec<JoinHandle<()>> {
    let host = hostname();
    (0..settings.outbox.workers)
        .map(|i| {
            let worker = Worker::new(
                format!("{host}:{}:{role}-{i}", std::process::id()),
                delivery.clone(),
            );
            tokio::spawn(worker.run(stopped.clone()))
        })
        .collect()
}

/// Runs the periodic jobs every `EDL_SCHEDULER_INTERVAL` until stopped: review reminders,
/// policy-acceptance requests, and release distribution (embargoed mailings, announcements,
/// publications). Dedupe keys and recorded moments make several processes safe.
pub fn spawn_scheduler(
    pool: &DbPool,
    ctx: Context,
    mut stopped: watch::Receiver<bool>,
) -> JoinHandle<()> {
    let (pool, interval) = (pool.clone(), ctx.settings.scheduler_interval);
    tokio::spawn(async move {
        while !*stopped.borrow() {
            let run_ctx = ctx.clone();
            let now = ctx.clock.now();
            let result = db::run(&pool, move |c| {
                crate::membership::run_jobs(c, &run_ctx, now.naive_utc())
            })
            .await;
            match result {
                Ok(report)
                    if report.reminders + report.policy_requests + report.key_reminders > 0 =>
                {
                    ctx.mailer.wake_workers();
                    tracing::info!(
                        reminders = report.reminders,
                        policy_requests = report.policy_requests,
                        key_reminders = report.key_reminders,
                        "Scheduled mail queued."
                    );
                }
                Ok(_) => {}
                Err(error) => {
                    tracing::warn!(%error, "The scheduler could not run the membership jobs; it will try again.")
                }
            }
            // Embargoed mailings, pre-announcements and publications that are due.
            let run_ctx = ctx.clone();
            let tick = db::run(&pool, move |c| {
                crate::releases::distribution::distribute(c, &run_ctx, now)
            })
            .await;
            match tick {
                Ok(tick) if tick.mailed + tick.announced + tick.published > 0 => {
                    ctx.mailer.wake_workers();
                    tracing::info!(
                        mailed = tick.mailed,
                        announced = tick.announced,
                        published = tick.published,
                        "Release distribution ran."
                    );
                }
                Ok(_) => {}
                Err(error) => {
                    tracing::warn!(%error, "The scheduler could not distribute releases; it will try again.")
                }
            }
            tokio::select! {
                _ = tokio::time::sleep(interval) => {}
                _ = ctx.scheduler_woken() => {}
                _ = stopped.changed() => {}
            }
        }
    })
}

/// On SQLite, checkpoints the write-ahead log every [`db::CHECKPOINT_INTERVAL`] until stopped,
/// off every request's path (see [`db::checkpoint`]). Nothing on PostgreSQL.
pub fn spawn_checkpointer(
    pool: &DbPool,
    settings: &Settings,
    mut stopped: watch::Receiver<bool>,
) -> Option<JoinHandle<()>> {
    if !matches!(settings.database_url, crate::config::DatabaseUrl::Sqlite(_)) {
        return None;
    }
    let pool = pool.clone();
    Some(tokio::spawn(async move {
        while !*stopped.borrow() {
            if let Err(error) = db::run(&pool, db::checkpoint).await {
                tracing::warn!(%error, "Checkpointing the SQLite log failed; it will try again.");
            }
            tokio::select! {
                _ = tokio::time::sleep(db::CHECKPOINT_INTERVAL) => {}
                _ = stopped.changed() => {}
            }
        }
    }))
}

/// Signals the workers and waits for them to hand back unsent work.
pub async fn stop_workers(signal: &watch::Sender<bool>, workers: Vec<JoinHandle<()>>) {
    let _ = signal.send(true);
    for worker in workers {
        if tokio::time::timeout(Duration::from_secs(60), worker)
            .await
            .is_err()
        {
            tracing::warn!("An outbox worker did not stop in time; its lease will expire and another will resume.");
        }
    }
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_owned())
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "edl".to_owned())
}
