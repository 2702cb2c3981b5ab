//! Membership: applications through the web form, the automatic criteria checks, the alias
//! confirmation round trip, reviewer votes and final approval, and the members kept after.
//! Every workflow here runs in one transaction with the mail it causes (through the outbox)
//! and the audit entries it writes, so a crash never leaves one without the other.

pub mod application;
pub mod checks;
pub mod keys;
pub mod member_edit;
pub mod member_sign_in;
pub mod members;
pub mod policy;
pub mod review;
pub mod roster;

use serde_json::json;

use crate::accounts::session::CurrentUser;
use crate::accounts::{self, Role};
use crate::app::Context;
use crate::audit;
use crate::db::{self, DbConnection, DbError};
use crate::domain::MemberStatus;
use crate::mail::outbox::NewMail;
use crate::mail::MailError;
use crate::releases::upstream::ENVOY_POLICY_URL;
use application::{Application, ApplicationStatus, LinkProblem, NewApplication};
use checks::{CheckContext, CheckInput, CheckResult, Outcome};
use review::Vote;

/// How long a confirmation link works.
pub const CONFIRMATION_DAYS: i64 = 7;

#[derive(Debug, thiserror::Error)]
pub enum FlowError {
    #[error("{0} is already a member of the list")]
    AlreadyMember(String),
    #[error("an application for {0} is already open")]
    AlreadyOpen(String),
    #[error("the application is not open any more")]
    Decided,
    #[error("not found")]
    NotFound,
    #[error("{0}")]
    Refused(String),
    #[error(transparent)]
    Mail(#[from] MailError),
    #[error(transparent)]
    Db(#[from] DbError),
}

impl From<diesel::result::Error> for FlowError {
    fn from(error: diesel::result::Error) -> Self {
        Self::Db(error.into())
    }
}

fn app_subject(id: i64) -> String {
    format!("application:{id}")
}

/// Whether `error` is the index that keeps one open application per domain
/// (`applications_one_open_per_domain`) refusing a second one. Any other unique violation in a
/// submission is a fault, not an answer for the applicant.
fn is_already_open(error: &FlowError) -> bool {
    let FlowError::Db(DbError::Query(diesel::result::Error::DatabaseError(
        diesel::result::DatabaseErrorKind::UniqueViolation,
        info,
    ))) = error
    else {
        return false;
    };
    // PostgreSQL names the index; SQLite names the column it guards.
    info.constraint_name() == Some("applications_one_open_per_domain")
        || info
            .message()
            .contains("UNIQUE constraint failed: applications.primary_domain")
}

/// Runs every membership check on an application and stores the results.
pub fn run_checks(
    conn: &mut DbConnection,
    ctx: &Context,
    app: &Application,
) -> Result<Vec<CheckResult>, DbError> {
    let facts = MemberFacts::read(conn, app.domains(), app.voucher_alias.as_ref())?;
    let input = CheckInput {
        org_domains: app.domains(),
        alias: Ok(app.security_alias.clone()),
        alias_text: app.security_alias.as_str(),
        rep_name: &app.rep_name,
        website: &app.website,
        product_url: &app.product_url,
        track_record: &app.track_record,
        community_links: &app.community_links,
        voucher_alias: app.voucher_alias.as_ref(),
        days_to_fix: app.days_to_fix,
        pgp_key: app.pgp_key.as_deref(),
        accepted_policy_version: app.policy_version,
        stages_privately: app.attests_stage_privately,
        contributes_back: app.attests_contribute_back,
        alias_confirmed: app.alias_confirmed_at.is_some(),
    };
    let results = facts.judge(ctx, &input);
    application::store_checks(conn, app.id, &results)?;
    Ok(results)
}

/// What the checks read of the members: every current domain and active alias.
struct MemberFacts {
    domains: Vec<crate::domain::OrgDomain>,
    aliases: Vec<(crate::domain::SecurityAlias, crate::domain::OrgDomain)>,
}

impl MemberFacts {
    /// The members an application on `domains`, vouched for by `voucher`, could clash with or
    /// name: not the whole list, which the checks would only filter down to these.
    fn read(
        conn: &mut DbConnection,
        domains: &[crate::domain::OrgDomain],
        voucher: Option<&crate::domain::SecurityAlias>,
    ) -> Result<Self, DbError> {
        let mut facts = Self {
            domains: Vec::new(),
            aliases: Vec::new(),
        };
        // Members still on the list (active or suspended) hold their domains; only active
        // ones may vouch.
        for (domain, alias, status) in members::on_domains_or_alias(conn, domains, voucher)? {
            if status == MemberStatus::Active {
                facts.aliases.push((alias, domain.clone()));
            }
            facts.domains.push(domain);
        }
        Ok(facts)
    }

    /// The first of `domains` that belongs to a member (itself or a subdomain of one).
    fn member_domain<'a>(
        &self,
        domains: &'a [crate::domain::OrgDomain],
    ) -> Option<&'a crate::domain::OrgDomain> {
        domains
            .iter()
            .find(|d| crate::domain::org_domain::on_any(d.as_str(), &self.domains))
    }

    fn judge(&self, ctx: &Context, input: &CheckInput<'_>) -> Vec<CheckResult> {
        let context = CheckContext {
            member_domains: &self.domains,
            member_aliases: &self.aliases,
            current_policy_version: ctx.policy.version,
            max_days_to_fix: ctx.settings.membership.max_days_to_fix,
            voucher_required: ctx.settings.membership.voucher_required,
            required: &ctx.settings.membership.required_checks,
            now: ctx.clock.now(),
        };
        checks::run_all(input, &context)
    }
}

fn failing(results: &[CheckResult]) -> Vec<serde_json::Value> {
    results
        .iter()
        .filter(|r| r.outcome == Outcome::Fail)
        .map(|r| json!({ "title": r.title, "reason": r.reason }))
        .collect()
}

fn load(conn: &mut DbConnection, id: i64) -> Result<Application, FlowError> {
    application::find(conn, id)?.ok_or(FlowError::NotFound)
}

fn send_confirmation(
    conn: &mut DbConnection,
    ctx: &Context,
    app: &Application,
    status_token: Option<&str>,
) -> Result<(), FlowError> {
    let link =
        application::new_confirmation(conn, app.id, chrono::Duration::days(CONFIRMATION_DAYS))?;
    let mail = confirmation_mail(ctx, &app.org_name, &app.security_alias, &link, status_token)?;
    ctx.mailer.enqueue_many(conn, &[mail])?;
    Ok(())
}

/// The mail that asks the alias to confirm, with `link`; the status page's link too when the
/// applicant's `status_token` is at hand.
fn confirmation_mail(
    ctx: &Context,
    org_name: &str,
    alias: &crate::domain::SecurityAlias,
    link: &application::ConfirmationLink,
    status_token: Option<&str>,
) -> Result<NewMail, MailError> {
    let status_url = status_token.map_or_else(
        || ctx.url("/apply"),
        |t| ctx.url(&format!("/apply/status/{t}")),
    );
    Ok(ctx.mailer.render(
        "confirm_alias",
        alias.as_str(),
        json!({
            "org_name": org_name,
            "alias": alias,
            "confirm_url": ctx.url(&format!("/apply/confirm/{}", link.token)),
            "expires_on": ctx.moment(link.expires_at.and_utc()).local_date(),
            "status_url": status_url,
        }),
    )?)
}

/// Closes applications whose alias was never confirmed: once every confirmation link has
/// expired, the application stops holding its domain (otherwise anyone could block a domain
/// from applying by submitting in its name).
pub fn expire_unconfirmed(
    conn: &mut DbConnection,
    now: chrono::NaiveDateTime,
) -> Result<usize, DbError> {
    use crate::db::schema::{applications, confirmation_tokens};
    use diesel::prelude::*;
    let live_link = confirmation_tokens::table
        .filter(confirmation_tokens::application_id.eq(applications::id))
        .filter(confirmation_tokens::used_at.is_null())
        .filter(confirmation_tokens::expires_at.gt(now));
    let stale: Vec<i64> = applications::table
        .filter(applications::status.eq(ApplicationStatus::AwaitingConfirmation))
        .filter(diesel::dsl::not(diesel::dsl::exists(live_link)))
        .select(applications::id)
        .load(conn)?;
    close_unconfirmed(conn, &stale)?;
    Ok(stale.len())
}

/// The domain of the open application already holding one of `domains`, if any, after
/// closing those on them whose confirmation links have all expired, as [`expire_unconfirmed`]
/// would. One lookup by the domains' index, and one of the links only if an application there
/// awaits confirmation: the cost does not grow with the applications stored for other domains.
fn open_on_domains(
    conn: &mut DbConnection,
    domains: &[crate::domain::OrgDomain],
    now: chrono::NaiveDateTime,
) -> Result<Option<crate::domain::OrgDomain>, DbError> {
    use crate::db::schema::{applications, confirmation_tokens};
    use diesel::prelude::*;
    let on_domains: Vec<(i64, ApplicationStatus, crate::domain::OrgDomain)> = match conn {
        // Planned for these domains on every call. As a prepared statement, PostgreSQL reused
        // one plan for any domains, made while the table was small, and that plan read every
        // stored application: with 20,000 stored, submissions slowed to a third.
        DbConnection::Postgresql(pg) => {
            #[derive(diesel::QueryableByName)]
            struct OnDomain {
                #[diesel(sql_type = diesel::sql_types::BigInt)]
                id: i64,
                #[diesel(sql_type = diesel::sql_types::Text)]
                status: ApplicationStatus,
                #[diesel(sql_type = diesel::sql_types::Text)]
                primary_domain: crate::domain::OrgDomain,
            }
            let names: Vec<&str> = domains.iter().map(|d| d.as_str()).collect();
            diesel::sql_query(
                "SELECT id, status, primary_domain FROM applications \
                 WHERE primary_domain = ANY($1)",
            )
            .bind::<diesel::sql_types::Array<diesel::sql_types::Text>, _>(names)
            .load::<OnDomain>(pg)?
            .into_iter()
            .map(|row| (row.id, row.status, row.primary_domain))
            .collect()
        }
        // SQLite plans by its rules, not by statistics: the index serves the lookup. The status
        // is filtered after, on both backends, for the same reason as above.
        DbConnection::Sqlite(_) => applications::table
            .filter(applications::primary_domain.eq_any(domains))
            .select((
                applications::id,
                applications::status,
                applications::primary_domain,
            ))
            .load(conn)?,
    };
    let awaiting: Vec<i64> = on_domains
        .iter()
        .filter(|(_, status, _)| *status == ApplicationStatus::AwaitingConfirmation)
        .map(|(id, _, _)| *id)
        .collect();
    let stale: Vec<i64> = if awaiting.is_empty() {
        Vec::new()
    } else {
        let live: Vec<i64> = confirmation_tokens::table
            .filter(confirmation_tokens::application_id.eq_any(&awaiting))
            .filter(confirmation_tokens::used_at.is_null())
            .filter(confirmation_tokens::expires_at.gt(now))
            .select(confirmation_tokens::application_id)
            .load(conn)?;
        awaiting
            .into_iter()
            .filter(|id| !live.contains(id))
            .collect()
    };
    close_unconfirmed(conn, &stale)?;
    Ok(on_domains
        .into_iter()
        .find(|(id, status, _)| status.is_open() && !stale.contains(id))
        .map(|(_, _, domain)| domain))
}

/// Withdraws applications whose alias was not confirmed in time, each with its audit entry.
fn close_unconfirmed(conn: &mut DbConnection, stale: &[i64]) -> Result<(), DbError> {
    for id in stale {
        decide(
            conn,
            *id,
            ApplicationStatus::Withdrawn,
            Some("The security alias was not confirmed in time."),
        )?;
        audit::record(
            conn,
            "edl",
            "application.expired",
            &app_subject(*id),
            json!({}),
        )?;
    }
    Ok(())
}

/// Deletes applications whose alias was never confirmed once they have been closed for
/// `retention` (expired or withdrawn): nobody reviewed them, and bots must not be able to fill
/// the table. Their links, checks and answers go with them; one audit entry counts them.
pub fn purge_unconfirmed(
    conn: &mut DbConnection,
    retention: std::time::Duration,
    now: chrono::NaiveDateTime,
) -> Result<usize, DbError> {
    use crate::db::schema::applications;
    use diesel::prelude::*;
    let cutoff = now - chrono::Duration::from_std(retention).unwrap_or(chrono::Duration::days(30));
    let mut purged = 0;
    loop {
        let ids: Vec<i64> = applications::table
            .filter(applications::status.eq(ApplicationStatus::Withdrawn))
            .filter(applications::alias_confirmed_at.is_null())
            .filter(applications::decided_at.lt(cutoff))
            .select(applications::id)
            .limit(1000)
            .load(conn)?;
        if ids.is_empty() {
            break;
        }
        purged += diesel::delete(applications::table.filter(applications::id.eq_any(&ids)))
            .execute(conn)?;
    }
    if purged > 0 {
        audit::record(
            conn,
            "edl",
            "application.purged",
            "applications",
            json!({ "count": purged, "closed_before": cutoff }),
        )?;
    }
    Ok(purged)
}

/// What a successful submission hands back: the private status link's token.
pub struct Submitted {
    pub application_id: i64,
    pub status_token: String,
}

/// Stores a new application, runs the checks, and mails the confirmation link to the alias
/// and a receipt to the representative.
pub fn submit(
    conn: &mut DbConnection,
    ctx: &Context,
    new: &NewApplication,
    ip: Option<&str>,
) -> Result<Submitted, FlowError> {
    // The checks read the members on these domains and the voucher's, and parse the key: done
    // before the write transaction, which then only writes, so submissions do not queue behind
    // that work. (A member approved for the same domain in between is seen by the reviewers'
    // checks.)
    let facts = MemberFacts::read(conn, &new.org_domains, new.voucher_alias.as_ref())?;
    if let Some(domain) = facts.member_domain(&new.org_domains) {
        return Err(FlowError::AlreadyMember(domain.to_string()));
    }
    let results = facts.judge(
        ctx,
        &CheckInput {
            org_domains: &new.org_domains,
            alias: Ok(new.security_alias.clone()),
            alias_text: new.security_alias.as_str(),
            rep_name: &new.rep_name,
            website: &new.website,
            product_url: &new.product_url,
            track_record: &new.track_record,
            community_links: &new.community_links,
            voucher_alias: new.voucher_alias.as_ref(),
            days_to_fix: new.days_to_fix,
            pgp_key: new.pgp_key.as_deref(),
            accepted_policy_version: new.policy_version,
            stages_privately: new.stage_privately,
            contributes_back: new.contribute_back,
            alias_confirmed: false,
        },
    );
    // The links and both mails are made before the write transaction too, which then only
    // stores them.
    let status_token = accounts::session::new_token();
    let link =
        application::ConfirmationLink::new(db::now(), chrono::Duration::days(CONFIRMATION_DAYS));
    let mails = [
        confirmation_mail(
            ctx,
            &new.org_name,
            &new.security_alias,
            &link,
            Some(&status_token),
        )?,
        ctx.mailer
            .render(
                "application_received",
                &new.rep_email,
                json!({
                    "org_name": new.org_name,
                    "rep_name": new.rep_name,
                    "alias": new.security_alias,
                    "status_url": ctx.url(&format!("/apply/status/{status_token}")),
                    "failing": failing(&results),
                }),
            )
            .map_err(MailError::from)?,
    ];
    let result = db::write_transaction(conn, |conn| {
        if let Some(open) = open_on_domains(conn, &new.org_domains, db::now())? {
            return Err(FlowError::AlreadyOpen(open.to_string()));
        }
        let id = application::insert(conn, new, &accounts::session::token_hash(&status_token))?;
        application::insert_checks(conn, id, &results)?;
        application::insert_confirmation(conn, id, &link)?;
        ctx.mailer.enqueue_many(conn, &mails)?;
        audit::record(
            conn,
            &new.rep_email,
            "application.submitted",
            &app_subject(id),
            json!({ "org": new.org_name, "domains": new.org_domains, "ip": ip }),
        )?;
        Ok(Submitted {
            application_id: id,
            status_token,
        })
    });
    match result {
        // Two submissions for one domain at the same moment: the index keeps one.
        Err(error) if is_already_open(&error) => {
            Err(FlowError::AlreadyOpen(new.primary_domain().to_string()))
        }
        other => other,
    }
}

/// Replaces an open application's answers and re-runs the checks. A changed alias must be
/// confirmed again, which takes the application out of review until it is.
pub fn edit(
    conn: &mut DbConnection,
    ctx: &Context,
    id: i64,
    new: &NewApplication,
    status_token: &str,
) -> Result<(), FlowError> {
    db::write_transaction(conn, |conn| {
        let before = load(conn, id)?;
        if !before.status().is_open() {
            return Err(FlowError::Decided);
        }
        if let Some(domain) =
            MemberFacts::read(conn, &new.org_domains, None)?.member_domain(&new.org_domains)
        {
            return Err(FlowError::AlreadyMember(domain.to_string()));
        }
        if let Some(open) = application::open_for_domains(conn, &new.org_domains, Some(id))? {
            return Err(FlowError::AlreadyOpen(open.primary_domain.to_string()));
        }
        application::update_answers(conn, id, new)?;
        let alias_changed = before.security_alias != new.security_alias;
        if alias_changed {
            use crate::db::schema::applications;
            use diesel::prelude::*;
            diesel::update(applications::table.filter(applications::id.eq(id)))
                .set((
                    applications::alias_confirmed_at.eq(None::<chrono::NaiveDateTime>),
                    applications::status.eq(ApplicationStatus::AwaitingConfirmation),
                ))
                .execute(conn)?;
        }
        // Votes judged the old answers: reviewers look again at the new ones.
        let votes_cleared = if matches!(
            before.status(),
            ApplicationStatus::InReview | ApplicationStatus::Recommended
        ) {
            use crate::db::schema::votes;
            use diesel::prelude::*;
            let n =
                diesel::delete(votes::table.filter(votes::application_id.eq(id))).execute(conn)?;
            if before.status() == ApplicationStatus::Recommended && !alias_changed {
                application::set_status(conn, id, ApplicationStatus::InReview)?;
            }
            n
        } else {
            0
        };
        let app = load(conn, id)?;

        run_checks(conn, ctx, &app)?;
        if alias_changed {
            send_confirmation(conn, ctx, &app, Some(status_token))?;
        }
        audit::record(
            conn,
            &app.rep_email,
            "application.edited",
            &app_subject(id),
            json!({ "alias_changed": alias_changed, "votes_cleared": votes_cleared }),
        )?;
        Ok(())
    })
}

/// Mails a new confirmation link; earlier ones stop working.
pub fn resend_confirmation(
    conn: &mut DbConnection,
    ctx: &Context,
    id: i64,
    status_token: &str,
) -> Result<(), FlowError> {
    db::write_transaction(conn, |conn| {
        let app = load(conn, id)?;
        if app.status() != ApplicationStatus::AwaitingConfirmation {
            return Err(FlowError::Refused("The alias is already confirmed.".into()));
        }
        send_confirmation(conn, ctx, &app, Some(status_token))?;
        audit::record(
            conn,
            &app.rep_email,
            "application.confirmation-resent",
            &app_subject(id),
            json!({}),
        )?;
        Ok(())
    })
}

pub fn withdraw(conn: &mut DbConnection, id: i64) -> Result<(), FlowError> {
    db::write_transaction(conn, |conn| {
        let app = load(conn, id)?;
        if !app.status().is_open() {
            return Err(FlowError::Decided);
        }
        decide(
            conn,
            id,
            ApplicationStatus::Withdrawn,
            Some("Withdrawn by the applicant."),
        )?;
        audit::record(
            conn,
            &app.rep_email,
            "application.withdrawn",
            &app_subject(id),
            json!({}),
        )?;
        Ok(())
    })
}

fn decide(
    conn: &mut DbConnection,
    id: i64,
    status: ApplicationStatus,
    reason: Option<&str>,
) -> Result<(), DbError> {
    use crate::db::schema::applications;
    use diesel::prelude::*;
    diesel::update(applications::table.filter(applications::id.eq(id)))
        .set((
            applications::status.eq(status),
            applications::decided_at.eq(Some(db::now())),
            applications::decision_reason.eq(reason),
            applications::updated_at.eq(db::now()),
        ))
        .execute(conn)?;
    Ok(())
}

/// Reviewers who may act on an application: enabled, holding the role, not recused.
fn reviewers_for(
    conn: &mut DbConnection,
    app: &Application,
) -> Result<Vec<accounts::Account>, DbError> {
    let domains = app.domains();
    Ok(accounts::with_role(conn, Role::Reviewer)?
        .into_iter()
        .filter(|a| !review::is_recused(&a.email, domains))
        .collect())
}

/// Follows a confirmation link: the alias is proven monitored and the application enters the
/// review queue; reviewers are told.
pub fn confirm(
    conn: &mut DbConnection,
    ctx: &Context,
    token: &str,
) -> Result<Result<Application, LinkProblem>, FlowError> {
    db::write_transaction(conn, |conn| {
        let id = match application::use_confirmation(conn, token)? {
            Ok(id) => id,
            Err(problem) => return Ok(Err(problem)),
        };
        let app = load(conn, id)?;
        if !app.status().is_open() {
            return Ok(Err(LinkProblem::Closed));
        }
        if app.status() != ApplicationStatus::AwaitingConfirmation {
            return Ok(Ok(app));
        }
        {
            use crate::db::schema::applications;
            use diesel::prelude::*;
            diesel::update(applications::table.filter(applications::id.eq(id)))
                .set((
                    applications::alias_confirmed_at.eq(Some(db::now())),
                    applications::status.eq(ApplicationStatus::InReview),
                    applications::updated_at.eq(db::now()),
                ))
                .execute(conn)?;
        }
        let app = load(conn, id)?;
        let results = run_checks(conn, ctx, &app)?;
        let failing_required = results
            .iter()
            .filter(|r| r.required && r.outcome == Outcome::Fail)
            .count();
        for reviewer in reviewers_for(conn, &app)? {
            ctx.mailer.enqueue(
                conn,
                "review_new_application",
                &reviewer.email,
                json!({
                    "reviewer_name": reviewer.name,
                    "org_name": app.org_name,
                    "review_url": ctx.url(&format!("/review/applications/{id}")),
                    "failing_required": failing_required,
                }),
                Some(format!("review-new:{id}:{}", reviewer.id)),
            )?;
        }
        audit::record(
            conn,
            app.security_alias.as_str(),
            "application.alias-confirmed",
            &app_subject(id),
            json!({}),
        )?;
        Ok(Ok(app))
    })
}

/// Records a reviewer's vote and moves the application as the votes now say.
pub fn vote(
    conn: &mut DbConnection,
    ctx: &Context,
    id: i64,
    reviewer: &CurrentUser,
    vote: Vote,
    reason: &str,
) -> Result<ApplicationStatus, FlowError> {
    db::write_transaction(conn, |conn| {
        let app = load(conn, id)?;
        if !matches!(
            app.status(),
            ApplicationStatus::InReview | ApplicationStatus::Recommended
        ) {
            return Err(FlowError::Decided);
        }
        if review::is_recused(&reviewer.email, app.domains()) {
            return Err(FlowError::Refused(
                "You are recused: your email domain is the applicant's own.".into(),
            ));
        }
        review::cast(conn, id, reviewer.account_id, vote, reason)?;
        audit::record(
            conn,
            reviewer.actor(),
            "application.vote",
            &app_subject(id),
            json!({ "vote": vote.as_str(), "reason": reason }),
        )?;
        let tally = review::tally(&review::votes_for(conn, id)?);
        let mut next = review::outcome(
            tally,
            ctx.settings.approvals_required,
            ctx.settings.membership.rejections_required,
            ctx.settings.membership.final_approval,
        );
        let blocked = application::load_checks(conn, id)?
            .iter()
            .any(|c| c.failed_required());
        if next == ApplicationStatus::Approved && blocked {
            // Quorum alone cannot make a member while a required check fails.
            next = ApplicationStatus::Recommended;
        }
        match next {
            ApplicationStatus::Rejected => {
                let reasons = rejection_reasons(conn, id)?;
                reject(conn, ctx, &app, &reasons, "reviewers")?;
            }
            ApplicationStatus::Approved => {
                approve(conn, ctx, &app, "reviewers' quorum")?;
            }
            ApplicationStatus::Recommended if app.status() != ApplicationStatus::Recommended => {
                use crate::db::schema::applications;
                use diesel::prelude::*;
                diesel::update(applications::table.filter(applications::id.eq(id)))
                    .set((
                        applications::status.eq(ApplicationStatus::Recommended),
                        applications::recommended_at.eq(Some(db::now())),
                    ))
                    .execute(conn)?;
                audit::record(
                    conn,
                    "edl",
                    "application.recommended",
                    &app_subject(id),
                    json!({ "approvals": tally.approvals }),
                )?;
            }
            ApplicationStatus::InReview if app.status() != ApplicationStatus::InReview => {
                application::set_status(conn, id, ApplicationStatus::InReview)?;
                audit::record(
                    conn,
                    "edl",
                    "application.back-in-review",
                    &app_subject(id),
                    json!({ "approvals": tally.approvals }),
                )?;
            }
            _ => {}
        }
        Ok(next)
    })
}

/// The reasons of the reject votes, in the order they were cast, each once.
fn rejection_reasons(conn: &mut DbConnection, id: i64) -> Result<Vec<String>, DbError> {
    let mut reasons: Vec<String> = Vec::new();
    for vote in review::votes_for(conn, id)? {
        let reason = vote.reason.trim();
        if vote.vote == Vote::Reject && !reasons.iter().any(|r| r == reason) {
            reasons.push(reason.to_owned());
        }
    }
    Ok(reasons)
}

fn reject(
    conn: &mut DbConnection,
    ctx: &Context,
    app: &Application,
    reasons: &[String],
    by: &str,
) -> Result<(), FlowError> {
    // Stored and audited as one text, one reason per line; the mail lists them.
    let reason = reasons.join("\n");
    decide(conn, app.id, ApplicationStatus::Rejected, Some(&reason))?;
    ctx.mailer.enqueue(
        conn,
        "decision_rejected",
        app.security_alias.as_str(),
        json!({
            "org_name": app.org_name,
            "reasons": reasons,
            "reason": reason,
            "criteria_url": ctx.url("/criteria"),
            "apply_url": ctx.url("/apply"),
        }),
        Some(format!("decision:{}", app.id)),
    )?;
    audit::record(
        conn,
        by,
        "application.rejected",
        &app_subject(app.id),
        json!({ "reason": reason }),
    )?;
    Ok(())
}

fn approve(
    conn: &mut DbConnection,
    ctx: &Context,
    app: &Application,
    by: &str,
) -> Result<i64, FlowError> {
    decide(conn, app.id, ApplicationStatus::Approved, None)?;
    let member_id = members::create_from(conn, app)?;
    ctx.mailer.enqueue(
        conn,
        "decision_approved",
        app.security_alias.as_str(),
        json!({
            "org_name": app.org_name,
            "policy_version": ctx.policy.version,
            "policy_url": ctx.url("/embargo-policy"),
            "envoy_policy_url": ENVOY_POLICY_URL,
            "lead_days": ctx.settings.lead_days,
            "members_url": ctx.url("/members"),
        }),
        Some(format!("decision:{}", app.id)),
    )?;
    audit::record(
        conn,
        by,
        "application.approved",
        &app_subject(app.id),
        json!({ "member": member_id }),
    )?;
    audit::record(
        conn,
        by,
        "member.created",
        &format!("member:{member_id}"),
        json!({ "org": app.org_name }),
    )?;
    Ok(member_id)
}

/// An approver's final approval of a recommended application: it becomes a member.
pub fn final_approve(
    conn: &mut DbConnection,
    ctx: &Context,
    id: i64,
    approver: &CurrentUser,
) -> Result<i64, FlowError> {
    db::write_transaction(conn, |conn| {
        let app = load(conn, id)?;
        if app.status() != ApplicationStatus::Recommended {
            return Err(FlowError::Refused(format!(
                "Only a recommended application can be approved; this one is {}.",
                app.status().label().to_lowercase()
            )));
        }
        if review::is_recused(&approver.email, app.domains()) {
            return Err(FlowError::Refused(
                "You are recused: your email domain is the applicant's own.".into(),
            ));
        }
        // The facts may have changed since the checks last ran (a new member, new settings).
        let failing: Vec<String> = run_checks(conn, ctx, &app)?
            .into_iter()
            .filter(|c| c.required && c.outcome == Outcome::Fail)
            .map(|c| c.title.to_owned())
            .collect();
        if !failing.is_empty() {
            return Err(FlowError::Refused(format!(
                "Required checks fail: {}. The applicant must fix them first.",
                failing.join("; ")
            )));
        }
        approve(conn, ctx, &app, approver.actor())
    })
}

/// An approver's decision not to admit an application, with the reason the applicant is sent.
pub fn decline(
    conn: &mut DbConnection,
    ctx: &Context,
    id: i64,
    approver: &CurrentUser,
    reason: &str,
) -> Result<(), FlowError> {
    db::write_transaction(conn, |conn| {
        let app = load(conn, id)?;
        if !matches!(
            app.status(),
            ApplicationStatus::InReview | ApplicationStatus::Recommended
        ) {
            return Err(FlowError::Decided);
        }
        if review::is_recused(&approver.email, app.domains()) {
            return Err(FlowError::Refused(
                "You are recused: your email domain is the applicant's own.".into(),
            ));
        }
        reject(
            conn,
            ctx,
            &app,
            &[reason.trim().to_owned()],
            approver.actor(),
        )
    })
}

pub fn comment(
    conn: &mut DbConnection,
    id: i64,
    author: &CurrentUser,
    body: &str,
) -> Result<(), FlowError> {
    db::write_transaction(conn, |conn| {
        load(conn, id)?;
        review::add_comment(conn, id, author.account_id, body)?;
        audit::record(
            conn,
            author.actor(),
            "application.comment",
            &app_subject(id),
            json!({ "length": body.len() }),
        )?;
        Ok(())
    })
}

/// What an admin can do to a member.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemberAction {
    Suspend,
    Reinstate,
    Remove,
    MarkReviewed,
}

pub fn member_action(
    conn: &mut DbConnection,
    ctx: &Context,
    member_id: i64,
    admin: &CurrentUser,
    action: MemberAction,
    reason: &str,
) -> Result<(), FlowError> {
    db::write_transaction(conn, |conn| {
        let member = members::find(conn, member_id)?.ok_or(FlowError::NotFound)?;
        let subject = format!("member:{member_id}");
        let (name, template) = match action {
            MemberAction::Suspend if member.status == MemberStatus::Active => {
                members::set_status(conn, member_id, MemberStatus::Suspended, reason)?;
                ("member.suspended", Some("member_suspended"))
            }
            MemberAction::Reinstate if member.status == MemberStatus::Suspended => {
                members::set_status(conn, member_id, MemberStatus::Active, reason)?;
                ("member.reinstated", None)
            }
            MemberAction::Remove if member.status != MemberStatus::Removed => {
                members::set_status(conn, member_id, MemberStatus::Removed, reason)?;
                ("member.removed", Some("member_removed"))
            }
            MemberAction::MarkReviewed if member.status != MemberStatus::Removed => {
                members::mark_reviewed(conn, member_id)?;
                ("member.reviewed", None)
            }
            _ => {
                return Err(FlowError::Refused(format!(
                    "That cannot be done to a member that is {}.",
                    member.status
                )))
            }
        };
        if let Some(template) = template {
            ctx.mailer.enqueue(
                conn,
                template,
                member.security_alias.as_str(),
                json!({
                    "org_name": member.org_name,
                    "reason": reason,
                    "policy_url": ctx.url("/embargo-policy"),
                    "criteria_url": ctx.url("/criteria"),
                }),
                None,
            )?;
        }
        audit::record(
            conn,
            admin.actor(),
            name,
            &subject,
            json!({ "reason": reason }),
        )?;
        Ok(())
    })
}

pub fn record_breach(
    conn: &mut DbConnection,
    member_id: i64,
    admin: &CurrentUser,
    what: &str,
    to_whom: &str,
    occurred_at: chrono::NaiveDateTime,
    follow_up: &str,
) -> Result<(), FlowError> {
    db::write_transaction(conn, |conn| {
        members::find(conn, member_id)?.ok_or(FlowError::NotFound)?;
        members::record_breach(
            conn,
            member_id,
            what,
            to_whom,
            occurred_at,
            follow_up,
            admin.account_id,
        )?;
        audit::record(
            conn,
            admin.actor(),
            "member.breach-recorded",
            &format!("member:{member_id}"),
            json!({ "what": what, "to": to_whom, "when": occurred_at.to_string() }),
        )?;
        Ok(())
    })
}

/// The signed link a member follows to accept the current policy; valid for 30 days.
pub fn policy_link(ctx: &Context, member_id: i64) -> String {
    let expires = ctx.clock.now().timestamp() + 30 * 86_400;
    let token = ctx
        .links
        .policy_link(member_id, ctx.policy.version, expires);
    ctx.url(&format!("/members/accept-policy/{token}"))
}

pub fn accept_policy(
    conn: &mut DbConnection,
    ctx: &Context,
    member_id: i64,
    version: i32,
) -> Result<(), FlowError> {
    db::write_transaction(conn, |conn| {
        let member = members::find(conn, member_id)?.ok_or(FlowError::NotFound)?;
        if member.status == MemberStatus::Removed {
            return Err(FlowError::Refused(
                "This organisation is no longer a member.".into(),
            ));
        }
        if version != ctx.policy.version {
            return Err(FlowError::Refused(
                "This link is for an older version of the policy.".into(),
            ));
        }
        members::accept_policy(conn, member_id, version)?;
        audit::record(
            conn,
            member.security_alias.as_str(),
            "member.policy-accepted",
            &format!("member:{member_id}"),
            json!({ "version": version }),
        )?;
        Ok(())
    })
}

/// What one run of the periodic jobs did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct JobReport {
    pub reminders: usize,
    pub policy_requests: usize,
    /// Members reminded that their OpenPGP key expires soon.
    pub key_reminders: usize,
    /// Closed applications whose alias was never confirmed, deleted after their retention.
    pub purged: usize,
}

/// Reminds reviewers of applications waiting longer than `review_reminder_days` (once per
/// such period), asks members on an older policy version to accept the current one (once
/// per version), and reminds members whose OpenPGP key expires soon (once per key). Dedupe
/// keys make a second run, or a second process, a no-op.
pub fn run_jobs(
    conn: &mut DbConnection,
    ctx: &Context,
    now: chrono::NaiveDateTime,
) -> Result<JobReport, FlowError> {
    let mut report = JobReport::default();
    let period = i64::from(ctx.settings.membership.review_reminder_days);
    db::write_transaction(conn, |conn| {
        expire_unconfirmed(conn, now)?;
        report.purged =
            purge_unconfirmed(conn, ctx.settings.membership.unconfirmed_retention, now)?;
        let (waiting, _) = application::queue(
            conn,
            &[ApplicationStatus::InReview, ApplicationStatus::Recommended],
            0,
            10_000,
        )?;
        for app in waiting {
            let since = app.alias_confirmed_at.unwrap_or(app.created_at);
            let days = (now - since).num_days();
            if days < period {
                continue;
            }
            let votes = review::votes_for(conn, app.id)?;
            let voted: Vec<i64> = votes.iter().map(|v| v.account_id).collect();
            let tally = review::tally(&votes);
            for reviewer in reviewers_for(conn, &app)?
                .into_iter()
                .filter(|r| !voted.contains(&r.id))
            {
                let queued = ctx.mailer.enqueue(
                    conn,
                    "review_reminder",
                    &reviewer.email,
                    json!({
                        "reviewer_name": reviewer.name,
                        "org_name": app.org_name,
                        "review_url": ctx.url(&format!("/review/applications/{}", app.id)),
                        "waiting_days": days,
                        "approvals": tally.approvals,
                        "approvals_required": ctx.settings.approvals_required,
                    }),
                    Some(format!(
                        "review-reminder:{}:{}:{}",
                        app.id,
                        reviewer.id,
                        days / period
                    )),
                )?;
                report.reminders += usize::from(queued.is_some());
            }
        }
        for member in members::active(conn)?
            .into_iter()
            .filter(|m| m.policy_version < ctx.policy.version)
        {
            let queued = ctx.mailer.enqueue(
                conn,
                "policy_changed",
                member.security_alias.as_str(),
                json!({
                    "org_name": member.org_name,
                    "old_version": member.policy_version,
                    "new_version": ctx.policy.version,
                    "accept_url": policy_link(ctx, member.id),
                    "policy_url": ctx.url("/embargo-policy"),
                    "accept_by": ctx.moment((now + chrono::Duration::days(30)).and_utc()).local_date(),
                }),
                // A link lasts 30 days; a member who has not accepted is asked again after that.
                Some(format!(
                    "policy:{}:member:{}:{}",
                    ctx.policy.version,
                    member.id,
                    now.and_utc().timestamp() / (30 * 86_400)
                )),
            )?;
            report.policy_requests += usize::from(queued.is_some());
        }
        report.key_reminders = keys::remind_expiring(conn, ctx, now)?;
        Ok::<_, FlowError>(())
    })?;
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use diesel::result::{DatabaseErrorInformation, DatabaseErrorKind, Error};

    struct Refusal {
        message: &'static str,
        constraint: Option<&'static str>,
    }

    impl DatabaseErrorInformation for Refusal {
        fn message(&self) -> &str {
            self.message
        }
        fn details(&self) -> Option<&str> {
            None
        }
        fn hint(&self) -> Option<&str> {
            None
        }
        fn table_name(&self) -> Option<&str> {
            None
        }
        fn column_name(&self) -> Option<&str> {
            None
        }
        fn constraint_name(&self) -> Option<&str> {
            self.constraint
        }
        fn statement_position(&self) -> Option<i32> {
            None
        }
    }

    fn unique(message: &'static str, constraint: Option<&'static str>) -> FlowError {
        FlowError::Db(DbError::Query(Error::DatabaseError(
            DatabaseErrorKind::UniqueViolation,
            Box::new(Refusal {
                message,
                constraint,
            }),
        )))
    }

    #[test]
    fn only_the_one_open_per_domain_index_means_already_open() {
        // As PostgreSQL and SQLite word it.
        assert!(is_already_open(&unique(
            "duplicate key value violates unique constraint \"applications_one_open_per_domain\"",
            Some("applications_one_open_per_domain"),
        )));
        assert!(is_already_open(&unique(
            "UNIQUE constraint failed: applications.primary_domain",
            None,
        )));
        // Another index of the same transaction is a fault, not an answer for the applicant.
        assert!(!is_already_open(&unique(
            "duplicate key value violates unique constraint \"outbox_message_id_key\"",
            Some("outbox_message_id_key"),
        )));
        assert!(!is_already_open(&unique(
            "UNIQUE constraint failed: confirmation_tokens.token_hash",
            None,
        )));
    }
}
