//! The `edl` command: parses the arguments and hands them to `edl::cli`.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    edl::cli::run(edl::cli::Cli::parse())
}
