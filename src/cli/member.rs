//! `edl member list`: the roster on the command line, searched and filtered as on
//! `/admin/members`, printed as an aligned table, CSV or JSON. The query and the writers are
//! the web export's own (`membership::roster`).

use std::io::Write;

use clap::{Subcommand, ValueEnum};

use crate::config::Settings;
use crate::db::{self, DbError};
use crate::membership::roster;

#[derive(Subcommand)]
pub enum MemberCommand {
    /// List members, in the order of their organisations' names.
    List {
        /// How to print the list.
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
        /// Only members in this state: active, suspended or removed.
        #[arg(long)]
        status: Option<String>,
        /// Only members whose organisation, domain, security alias, or representative's name
        /// or email contains this text (any letter case).
        #[arg(long)]
        search: Option<String>,
    },
}

/// The output formats of `edl member list`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Aligned columns for a terminal.
    Table,
    /// RFC 4180 CSV, the same file as /admin/members.csv.
    Csv,
    /// A JSON array, the same as /admin/members.json.
    Json,
}

pub async fn run(settings: Settings, command: MemberCommand) -> Result<(), String> {
    match command {
        MemberCommand::List {
            format,
            status,
            search,
        } => {
            let filter = roster::Filter::parse(
                search.as_deref().unwrap_or_default(),
                status.as_deref().unwrap_or_default(),
            )?;
            let pool = super::open_database(&settings).await?;
            let rows = db::run(&pool, move |c| roster::rows(c, &filter))
                .await
                .map_err(|e: DbError| e.to_string())?;
            let mut out = std::io::stdout().lock();
            match format {
                Format::Table => roster::write_table(&rows, &mut out),
                Format::Csv => roster::write_csv(&rows, &mut out),
                Format::Json => roster::write_json(&rows, &mut out),
            }
            .and_then(|()| out.flush())
            .map_err(|e| format!("cannot write the list: {e}"))
        }
    }
}
