//! `edl user add|list|disable|enable|set-roles|reset-password|reset-second-factor`: working-group accounts.

use clap::Subcommand;

use crate::accounts::{self, password, AccountEmail, AccountError, Role};
use crate::config::Settings;
use crate::db::{self, DbError, DbPool};

#[derive(Subcommand)]
pub enum UserCommand {
    /// Create an account. The password is read from standard input (one line).
    Add {
        /// The account's email address, which it signs in with.
        #[arg(long)]
        email: String,
        /// The person's name, as pages and the audit log show it.
        #[arg(long)]
        name: String,
        /// reviewer, approver, release-manager or admin; repeat for several.
        #[arg(long = "role", required = true)]
        roles: Vec<String>,
        /// Read the password from standard input (required: passwords never go on the command line).
        #[arg(long, required = true)]
        password_stdin: bool,
    },
    /// List accounts with their roles.
    List,
    /// Disable an account and end its sessions.
    Disable {
        /// The account's email address.
        #[arg(long)]
        email: String,
    },
    /// Enable a disabled account.
    Enable {
        /// The account's email address.
        #[arg(long)]
        email: String,
    },
    /// Replace an account's roles.
    SetRoles {
        /// The account's email address.
        #[arg(long)]
        email: String,
        /// reviewer, approver, release-manager or admin; repeat for several. Without any, the
        /// account keeps no role.
        #[arg(long = "role")]
        roles: Vec<String>,
    },
    /// Set a new password from standard input and end the account's sessions.
    ResetPassword {
        /// The account's email address.
        #[arg(long)]
        email: String,
        /// Read the password from standard input (required: passwords never go on the command line).
        #[arg(long, required = true)]
        password_stdin: bool,
    },
    /// Remove an account's second factor (a lost phone) and end its sessions; an account whose
    /// role requires one sets up a new one at its next sign-in.
    ResetSecondFactor {
        /// The account's email address.
        #[arg(long)]
        email: String,
    },
}

/// How the audit log names changes made from the command line.
const ACTOR: &str = "cli";

fn parse_roles(names: &[String]) -> Result<Vec<Role>, String> {
    names.iter().map(|n| n.parse::<Role>()).collect()
}

async fn find_id(pool: &DbPool, email: &str) -> Result<i64, String> {
    let address = AccountEmail::parse(email)?;
    db::run(pool, move |c| accounts::find_by_email(c, address.as_str()))
        .await
        .map_err(|e: DbError| e.to_string())?
        .map(|a| a.id)
        .ok_or_else(|| format!("there is no account with the email {email}"))
}

pub async fn run(settings: Settings, command: UserCommand) -> Result<(), String> {
    let pool = super::open_database(&settings).await?;
    match command {
        UserCommand::Add {
            email,
            name,
            roles,
            password_stdin: _,
        } => {
            let email = AccountEmail::parse(&email)?;
            let roles = parse_roles(&roles)?;
            if name.trim().is_empty() {
                return Err("--name must not be empty".into());
            }
            let password = super::read_password_line()?;
            password::check_policy(&password, email.as_str(), &name).map_err(|e| e.to_string())?;
            let hash = password::Hasher::default().hash(password).await?;
            let shown = email.as_str().to_owned();
            db::run(&pool, move |c| {
                accounts::create(c, ACTOR, &email, &name, &hash, &roles, false)
            })
            .await
            .map_err(|e: AccountError| e.to_string())?;
            println!("Created the account {shown}.");
            Ok(())
        }
        UserCommand::List => {
            let all = db::run(&pool, accounts::list)
                .await
                .map_err(|e: DbError| e.to_string())?;
            for a in all {
                let roles: Vec<&str> = a.roles.iter().map(|r| r.as_str()).collect();
                println!(
                    "{:<36} {:<24} {:<40} {}",
                    a.account.email,
                    a.account.name,
                    roles.join(","),
                    if a.account.disabled {
                        "disabled"
                    } else {
                        "active"
                    }
                );
            }
            Ok(())
        }
        UserCommand::Disable { email } => {
            let id = find_id(&pool, &email).await?;
            db::run(&pool, move |c| accounts::set_disabled(c, ACTOR, id, true))
                .await
                .map_err(|e: AccountError| e.to_string())?;
            println!("Disabled {email} and ended its sessions.");
            Ok(())
        }
        UserCommand::Enable { email } => {
            let id = find_id(&pool, &email).await?;
            db::run(&pool, move |c| accounts::set_disabled(c, ACTOR, id, false))
                .await
                .map_err(|e: AccountError| e.to_string())?;
            println!("Enabled {email}.");
            Ok(())
        }
        UserCommand::SetRoles { email, roles } => {
            let roles = parse_roles(&roles)?;
            let id = find_id(&pool, &email).await?;
            db::run(&pool, move |c| accounts::set_roles(c, ACTOR, id, &roles))
                .await
                .map_err(|e: AccountError| e.to_string())?;
            println!("Saved the roles of {email}.");
            Ok(())
        }
        UserCommand::ResetPassword {
            email,
            password_stdin: _,
        } => {
            let id = find_id(&pool, &email).await?;
            let password = super::read_password_line()?;
            let (address, name) = db::run(&pool, move |c| accounts::find(c, id))
                .await
                .map_err(|e: DbError| e.to_string())?
                .map(|a| (a.account.email, a.account.name))
                .ok_or("the account disappeared")?;
            password::check_policy(&password, &address, &name).map_err(|e| e.to_string())?;
            let hash = password::Hasher::default().hash(password).await?;
            db::run(&pool, move |c| {
                accounts::set_password(c, ACTOR, id, &hash, false, None, "account.password-reset")
            })
            .await
            .map_err(|e: AccountError| e.to_string())?;
            println!("Set a new password for {email} and ended its sessions.");
            Ok(())
        }
        UserCommand::ResetSecondFactor { email } => {
            let id = find_id(&pool, &email).await?;
            let removed = db::run(&pool, move |c| {
                crate::accounts::second_factor::remove(c, ACTOR, id, "2fa.reset", None)
            })
            .await
            .map_err(|e: DbError| e.to_string())?;
            if removed {
                println!("Removed the second factor of {email} and ended its sessions.");
            } else {
                println!("{email} had no second factor; its sessions ended.");
            }
            Ok(())
        }
    }
}
