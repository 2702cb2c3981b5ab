//! `edl audit verify`: walks the audit log's hash chain.

use clap::Subcommand;

use crate::audit::{self, Verification};
use crate::config::Settings;
use crate::db::{self, DbError};

#[derive(Subcommand)]
pub enum AuditCommand {
    /// Walk the hash chain and name the first entry that does not match.
    Verify,
}

pub async fn run(settings: Settings, command: AuditCommand) -> Result<(), String> {
    match command {
        AuditCommand::Verify => {
            let pool = super::open_database(&settings).await?;
            match db::run(&pool, audit::verify)
                .await
                .map_err(|e: DbError| e.to_string())?
            {
                Verification::Intact { entries, last_hash } => {
                    println!("The audit log is intact: {entries} entries, every hash matches.");
                    println!("Latest hash: {last_hash}");
                    println!(
                        "Record it elsewhere: a later rewrite of the log will not reproduce it."
                    );
                    Ok(())
                }
                Verification::Broken { seq, id, reason } => Err(format!(
                    "the audit log does not verify: entry {seq} (row id {id}) is the first that does not match: {reason}"
                )),
            }
        }
    }
}
