//! `edl release plan|list|show|approve`: the release workflow from the command line. Who may
//! do what is the route table's rule for the same action on the web.

use actix_web::http::Method;
use clap::Subcommand;

use crate::accounts::{self, password, second_factor, AccountEmail};
use crate::config::Settings;
use crate::db::{self, DbError, DbPool};
use crate::domain::ReleaseKind;
use crate::releases::calendar::Moment;
use crate::releases::release::{self, Actor, Plan, ReleaseError, Upload};
use crate::releases::{approval, distribution, upstream};
use crate::startup::access_for;

#[derive(Subcommand)]
pub enum ReleaseCommand {
    /// Plan a release. Patch Tuesday by default, on the next one with its full lead time.
    Plan {
        /// patch-tuesday, zero-day or third-party.
        #[arg(long, default_value = "patch-tuesday")]
        kind: String,
        /// The release's name in mail and on its page, e.g. "Security release 1.9.5".
        #[arg(long)]
        title: String,
        /// A release line, e.g. 1.9.5; repeat for several.
        #[arg(long = "line", required = true)]
        lines: Vec<String>,
        /// A later Patch Tuesday, as YYYY-MM-DD.
        #[arg(long)]
        date: Option<String>,
        /// For a 0-day: when it ships; for a third-party release: the embargo lift (RFC 3339).
        #[arg(long)]
        at: Option<String>,
        /// The upstream whose embargo a third-party release follows, e.g. envoy.
        #[arg(long)]
        upstream: Option<String>,
        /// Hours of member notice for a 0-day.
        #[arg(long, default_value_t = 0)]
        notice_hours: u32,
        /// Members may deploy the fix to infrastructure they host during the embargo.
        #[arg(long)]
        members_may_deploy: bool,
        /// The account planning it (a release manager).
        #[arg(long = "as")]
        by: String,
    },
    /// Add an advisory to a release (a change: a new revision if the current one was approved).
    AddAdvisory {
        /// The release's number, as `edl release list` shows it.
        id: i64,
        /// The CVE id, e.g. CVE-2026-31337.
        #[arg(long)]
        cve: String,
        /// critical, high, medium or low.
        #[arg(long)]
        severity: String,
        /// One or two sentences on the issue, as the advisory will publish it.
        #[arg(long)]
        summary: String,
        /// The affected versions, e.g. "1.9.0 to 1.9.4".
        #[arg(long, default_value = "")]
        affected: String,
        /// The versions with the fix, e.g. 1.9.5.
        #[arg(long)]
        fixed: String,
        /// A CVSS v3.x or v4.0 vector.
        #[arg(long, default_value = "")]
        cvss: String,
        /// The release manager adding it.
        #[arg(long = "as")]
        by: String,
    },
    /// Add a patch file (git format-patch or unified diff) to a release.
    AddPatch {
        /// The release's number, as `edl release list` shows it.
        id: i64,
        /// The patch file.
        file: std::path::PathBuf,
        /// The release line it is for, one of the release's lines.
        #[arg(long)]
        line: String,
        /// The upstream it comes from, e.g. envoy; the project's own when left out.
        #[arg(long)]
        upstream: Option<String>,
        /// It is not a security fix (a Patch Tuesday release then needs a recorded exception).
        #[arg(long)]
        not_security_fix: bool,
        /// The release manager adding it.
        #[arg(long = "as")]
        by: String,
    },
    /// List releases.
    List,
    /// Show one release: times, advisories, patches, revisions, what blocks approval.
    Show {
        /// The release's number, as `edl release list` shows it.
        id: i64,
    },
    /// Approve the current revision of a release, as a second release manager.
    Approve {
        /// The release's number, as `edl release list` shows it.
        id: i64,
        /// The approving account: a release manager or admin other than the planner.
        #[arg(long = "as")]
        by: String,
        /// Read the approving account's password from standard input (required: an approval
        /// is a person's decision, so the person proves who they are). An account with a
        /// second factor gives its code (or a recovery code) on the next line.
        #[arg(long, required = true)]
        password_stdin: bool,
    },
}

/// The account named by `--as`, if it is enabled and the route table lets it do what the
/// web's `method path` does.
async fn actor_for(
    pool: &DbPool,
    email: &str,
    method: Method,
    path: &str,
) -> Result<(Actor, String), String> {
    let address = AccountEmail::parse(email)?;
    let found = db::run(pool, move |c| {
        let account = accounts::find_by_email(c, address.as_str())?;
        match account {
            Some(a) => Ok::<_, DbError>(Some((a.clone(), accounts::roles_of(c, a.id)?))),
            None => Ok(None),
        }
    })
    .await
    .map_err(|e| e.to_string())?;
    let Some((account, roles)) = found else {
        return Err(format!("there is no account with the email {email}"));
    };
    let access = access_for(&method, path)
        .ok_or_else(|| format!("no access rule is declared for {method} {path}"))?;
    if account.disabled || !access.permits(&roles) {
        return Err(format!(
            "{email} is not an enabled account with the {} role",
            access.describe()
        ));
    }
    Ok((
        Actor {
            account_id: account.id,
            email: account.email,
        },
        account.password_hash,
    ))
}

/// The second step of signing in, on the command line: an account with a second factor gives
/// a TOTP or recovery code on the line after its password (single use and locked out after
/// failures, as on the web); an account whose role requires one and has none is refused.
async fn second_factor_for(
    settings: &Settings,
    pool: &DbPool,
    actor: &Actor,
    by: &str,
) -> Result<(), String> {
    let account_id = actor.account_id;
    let (has, roles) = db::run(pool, move |c| {
        Ok::<_, DbError>((
            second_factor::has_second_factor(c, account_id)?,
            accounts::roles_of(c, account_id)?,
        ))
    })
    .await
    .map_err(|e| e.to_string())?;
    if !has {
        if roles
            .iter()
            .any(|r| settings.security.require_2fa.contains(r))
        {
            return Err(format!(
                "{by} must set up a second factor first: sign in on the web and open /account/second-factor"
            ));
        }
        return Ok(());
    }
    let code = super::read_password_line().map_err(|_| {
        format!("{by} has a second factor: give its code on the line after the password")
    })?;
    let key = crate::accounts::session::cookie_key(settings).map_err(|e| e.to_string())?;
    let sealer = second_factor::SecretBox::new(key.master());
    let lockout = (
        settings.security.lockout_threshold,
        settings.security.lockout_window,
    );
    let now = crate::clock::Clock::system().now_naive();
    let email = actor.email.clone();
    let checked = db::run(pool, move |c| {
        second_factor::check_code(
            c,
            &sealer,
            &second_factor::CodeAttempt {
                account_id,
                account_email: &email,
                session_id: None,
                code: &code,
                channel: "cli",
                ip: None,
            },
            lockout,
            now,
        )
    })
    .await
    .map_err(|e| e.to_string())?;
    match checked {
        second_factor::Checked::Accepted { .. } => Ok(()),
        second_factor::Checked::Refused => Err(format!(
            "the second-factor code of {by} is not right, or was already used"
        )),
        second_factor::Checked::Locked { until } => Err(format!(
            "codes for {by} are paused after too many wrong ones; try again after {until} UTC"
        )),
    }
}

/// Runs a release workflow on the pool, turning its refusal into the sentence to print.
async fn run_workflow<T, F>(pool: &DbPool, work: F) -> Result<T, String>
where
    T: Send + 'static,
    F: FnOnce(&mut db::DbConnection) -> Result<T, ReleaseError> + Send + 'static,
{
    db::run(pool, move |c| Ok::<_, DbError>(work(c)))
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| e.to_string())
}

pub async fn run(settings: Settings, command: ReleaseCommand) -> Result<(), String> {
    let pool = super::open_database(&settings).await?;
    match command {
        ReleaseCommand::Plan {
            kind,
            title,
            lines,
            date,
            at,
            upstream,
            notice_hours,
            members_may_deploy,
            by,
        } => {
            let (actor, _) = actor_for(&pool, &by, Method::POST, "/manage/releases").await?;
            let kind = kind.parse::<ReleaseKind>().map_err(|_| {
                format!(
                    "{kind:?} is not a kind of release: use patch-tuesday, zero-day or third-party"
                )
            })?;
            let patch_tuesday = date
                .map(|d| {
                    chrono::NaiveDate::parse_from_str(&d, "%Y-%m-%d")
                        .map_err(|_| format!("{d:?} is not a date as YYYY-MM-DD"))
                })
                .transpose()?;
            let release_at = at
                .map(|t| {
                    chrono::DateTime::parse_from_rfc3339(&t)
                        .map(|t| t.with_timezone(&chrono::Utc))
                        .map_err(|_| format!("{t:?} is not a time such as 2026-12-08T16:00:00Z"))
                })
                .transpose()?;
            let upstream_id = match upstream {
                Some(slug) => Some(
                    db::run(&pool, move |c| upstream::find_by_slug(c, &slug))
                        .await
                        .map_err(|e: DbError| e.to_string())?
                        .map(|u| u.id)
                        .ok_or("there is no such upstream")?,
                ),
                None => None,
            };
            let plan = Plan {
                kind,
                title,
                release_lines: lines.iter().flat_map(|l| release::parse_lines(l)).collect(),
                patch_tuesday,
                release_at,
                upstream_id,
                notice_hours,
                members_may_deploy,
                notes: String::new(),
            };
            let calendar = settings.calendar();
            let id = run_workflow(&pool, move |c| {
                release::plan(c, &calendar, &plan, &actor, chrono::Utc::now())
            })
            .await?;
            println!("Planned release {id}. Add advisories and patches, then have a second release manager approve it.");
            Ok(())
        }
        ReleaseCommand::AddAdvisory {
            id,
            cve,
            severity,
            summary,
            affected,
            fixed,
            cvss,
            by,
        } => {
            let path = "/manage/releases/{id}/advisories";
            let (actor, _) = actor_for(&pool, &by, Method::POST, path).await?;
            let advisory = release::AdvisoryForm {
                cve_id: cve,
                severity,
                cvss_vector: cvss,
                summary,
                affected_versions: affected,
                fixed_versions: fixed,
            }
            .parse()
            .map_err(|errors| errors.into_values().collect::<Vec<_>>().join(" "))?;
            let revision = run_workflow(&pool, move |c| {
                release::add_advisory(c, id, &advisory, &actor)?;
                Ok(release::find(c, id)?.map_or(0, |r| r.revision))
            })
            .await?;
            println!("Added the advisory to release {id}, revision {revision}.");
            Ok(())
        }
        ReleaseCommand::AddPatch {
            id,
            file,
            line,
            upstream,
            not_security_fix,
            by,
        } => {
            let path = "/manage/releases/{id}/patches";
            let (actor, _) = actor_for(&pool, &by, Method::POST, path).await?;
            let bytes =
                std::fs::read(&file).map_err(|e| format!("cannot read {}: {e}", file.display()))?;
            let upstream_id = match upstream {
                Some(slug) => Some(
                    db::run(&pool, move |c| upstream::find_by_slug(c, &slug))
                        .await
                        .map_err(|e: DbError| e.to_string())?
                        .map(|u| u.id)
                        .ok_or("there is no such upstream")?,
                ),
                None => None,
            };
            let upload = Upload {
                filename: file
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default(),
                bytes,
                release_line: line,
                upstream_id,
                is_security_fix: !not_security_fix,
            };
            let (patch, flagged) = run_workflow(&pool, move |c| {
                let patch = release::add_patch(c, id, &upload, &actor)?;
                let flagged = release::patches_of(c, id)?
                    .into_iter()
                    .find(|p| p.id == patch)
                    .is_some_and(|p| p.blocks());
                Ok((patch, flagged))
            })
            .await?;
            println!("Stored patch {patch} with its SHA-256 in release {id}.");
            if flagged {
                println!("It looks like an upstream's: it blocks approval until a person sets its origin (edl release show {id}).");
            }
            Ok(())
        }
        ReleaseCommand::List => {
            let all = db::run(&pool, release::list)
                .await
                .map_err(|e: DbError| e.to_string())?;
            let tz = settings.timezone;
            for r in all {
                let state = format!("{} (rev {})", r.state().label(), r.revision);
                println!(
                    "{:>5}  {:<14} {}  {:<28} {}",
                    r.id,
                    r.kind,
                    Moment::new(r.release_at.and_utc(), tz),
                    state,
                    r.title
                );
            }
            Ok(())
        }
        ReleaseCommand::Show { id } => show(&pool, id, settings.timezone).await,
        ReleaseCommand::Approve {
            id,
            by,
            password_stdin: _,
        } => {
            let path = "/manage/releases/{id}/approve";
            let (actor, stored) = actor_for(&pool, &by, Method::POST, path).await?;
            let password = super::read_password_line()?;
            if password::Hasher::default()
                .verify(password, Some(stored))
                .await
                == password::Verified::No
            {
                return Err(format!("the password of {by} is not right"));
            }
            second_factor_for(&settings, &pool, &actor, &by).await?;
            let revision = run_workflow(&pool, move |c| approval::approve(c, id, &actor)).await?;
            println!("Approved revision {revision} of release {id}.");
            // What is due now (an approval after the early-disclosure time) is queued by this
            // process, as an approval on the web starts the scheduler at once: the running
            // service's workers send it without waiting for its next tick.
            let ctx = super::context(&settings, crate::clock::Clock::system())?;
            let tick = db::run(&pool, move |c| {
                distribution::distribute(c, &ctx, ctx.clock.now())
                    .map_err(|e| DbError::Task(e.to_string()))
            })
            .await
            .map_err(|e| e.to_string())?;
            if tick.mailed > 0 {
                println!(
                    "Queued the embargoed mail for {} member{}; the running service sends it.",
                    tick.mailed,
                    if tick.mailed == 1 { "" } else { "s" }
                );
            }
            Ok(())
        }
    }
}

async fn show(pool: &DbPool, id: i64, tz: chrono_tz::Tz) -> Result<(), String> {
    let when = |t: chrono::NaiveDateTime| Moment::new(t.and_utc(), tz);
    let shown = db::run(pool, move |c| {
        let Some(r) = release::find(c, id)? else {
            return Ok::<_, DbError>(None);
        };
        let advisories = release::advisories_of(c, id)?;
        let patches = release::evidence_of(c, id)?;
        let blockers = approval::blockers(c, &r)?;
        let revisions = release::revisions_of(c, id)?;
        Ok(Some((r, advisories, patches, blockers, revisions)))
    })
    .await
    .map_err(|e| e.to_string())?;
    let Some((r, advisories, patches, blockers, revisions)) = shown else {
        return Err(format!("there is no release {id}"));
    };
    println!(
        "{} ({}), revision {}{}",
        r.title,
        r.kind,
        r.revision,
        if r.approved_current() {
            ", approved"
        } else {
            ""
        }
    );
    println!("public at         {}", when(r.release_at));
    if let Some(d) = r.disclosure_at {
        println!("early disclosure  {}", when(d));
    }
    println!("release lines     {}", r.lines().join(", "));
    for a in advisories {
        println!(
            "advisory          {} ({}): {}",
            a.cve_id, a.severity, a.summary
        );
    }
    for e in patches {
        let p = &e.patch;
        println!(
            "patch             {} [{}] {} sha256:{}{}",
            p.filename,
            p.release_line,
            e.origin,
            p.sha256,
            if e.refiled { " RE-FILED" } else { "" }
        );
        for f in &e.files {
            println!("  file            {} +{} -{}", f.path, f.added, f.removed);
        }
        for signal in p.upstream_signals.iter() {
            println!("  looks like      {signal}");
        }
        for c in &e.reclassifications {
            println!(
                "  origin changed  {} -> {}{} by {} at {}, revision {}: {}",
                c.from,
                c.to,
                if c.was_flagged { " (was flagged)" } else { "" },
                c.by,
                when(c.at),
                c.revision,
                c.reason
            );
        }
    }
    for v in revisions {
        let approved = match (&v.approved_by, v.approved_at) {
            (Some(by), Some(at)) => {
                format!("approved by {by} at {}", when(at))
            }
            _ => "not approved".to_owned(),
        };
        let changes: Vec<String> = v
            .changes
            .iter()
            .map(|c| format!("{} by {}", c.change, c.changed_by))
            .collect();
        println!(
            "revision {:<8} {approved}; {}",
            v.revision,
            changes.join(", ")
        );
    }
    for b in blockers {
        println!("blocks approval   {b}");
    }
    Ok(())
}
