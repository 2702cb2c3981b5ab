//! `edl upstream list|import-tree|project-path`: what the upstream rule knows about upstreams'
//! trees and the project's own look-alike paths.

use clap::Subcommand;

use crate::config::Settings;
use crate::db::{self, DbError};
use crate::releases::release::ReleaseError;
use crate::releases::upstream;

#[derive(Subcommand)]
pub enum UpstreamCommand {
    /// List the upstreams, whether their fixes may be redistributed, and their imported trees.
    List,
    /// Replace an upstream's exact file list with the output of `git ls-files` in a checkout of
    /// it; from then on its files are recognised by exact path suffix.
    ImportTree {
        /// The upstream, e.g. envoy.
        slug: String,
        /// A file with one path per line.
        file: std::path::PathBuf,
    },
    /// The project's own paths that look like an upstream's.
    ProjectPath {
        #[command(subcommand)]
        command: ProjectPathCommand,
    },
}

#[derive(Subcommand)]
pub enum ProjectPathCommand {
    /// Declare a path prefix as the project's own, so its files are not flagged.
    Add {
        /// A folder of the project's tree, from its root, e.g.
        /// source/extensions/filters/http/istio_stats/.
        prefix: String,
        /// Why these paths are the project's (kept in the audit log).
        #[arg(long)]
        reason: String,
    },
    /// List the declared prefixes.
    List,
}

/// How the audit log names changes made from the command line.
const ACTOR: &str = "cli";

pub async fn run(settings: Settings, command: UpstreamCommand) -> Result<(), String> {
    let pool = super::open_database(&settings).await?;
    let workflow = |e: ReleaseError| e.to_string();
    match command {
        UpstreamCommand::List => {
            let (all, counts) = db::run(&pool, |c| {
                Ok::<_, DbError>((upstream::list(c)?, upstream::imported_file_counts(c)?))
            })
            .await
            .map_err(|e| e.to_string())?;
            for u in all {
                let files = counts
                    .iter()
                    .find(|(id, _)| *id == u.id)
                    .map_or("layout only".to_owned(), |(_, n)| {
                        format!("{n} files imported")
                    });
                println!(
                    "{:<16} {:<10} {:<22} {}",
                    u.slug,
                    if u.may_redistribute {
                        "shared"
                    } else {
                        "withheld"
                    },
                    files,
                    u.policy_url
                );
            }
            Ok(())
        }
        UpstreamCommand::ImportTree { slug, file } => {
            let listing = std::fs::read_to_string(&file)
                .map_err(|e| format!("cannot read {}: {e}", file.display()))?;
            let shown = slug.clone();
            let stored = db::run(&pool, move |c| {
                Ok::<_, DbError>(upstream::import_tree(c, &slug, &listing, ACTOR))
            })
            .await
            .map_err(|e| e.to_string())?
            .map_err(workflow)?;
            println!(
                "Imported {} paths of {shown}'s tree; {} patch(es) of releases not yet public are now flagged.",
                stored.paths, stored.flagged
            );
            Ok(())
        }
        UpstreamCommand::ProjectPath {
            command: ProjectPathCommand::Add { prefix, reason },
        } => {
            let added = db::run(&pool, move |c| {
                Ok::<_, DbError>(upstream::add_project_path(c, &prefix, &reason, ACTOR))
            })
            .await
            .map_err(|e| e.to_string())?
            .map_err(workflow)?;
            println!("Files under {added} are the project's own: their paths and content are not flagged.");
            Ok(())
        }
        UpstreamCommand::ProjectPath {
            command: ProjectPathCommand::List,
        } => {
            let paths = db::run(&pool, upstream::project_paths)
                .await
                .map_err(|e: DbError| e.to_string())?;
            for (prefix, reason) in paths {
                println!("{prefix:<48} {reason}");
            }
            Ok(())
        }
    }
}
