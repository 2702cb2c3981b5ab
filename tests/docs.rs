//! The commands the documentation shows are run, so the docs cannot drift from the product.
//!
//! In `README.md` and every file under `docs/`:
//! - every ```` ```sh ```` block is run with bash, block after block in one sandbox per document
//!   (its own folder and database, a loopback SMTP server, `edl` on the `PATH`, and `cargo run
//!   --release --` meaning that same `edl`), on SQLite and on PostgreSQL. It must succeed. A
//!   fence with no language or `text` right after it is its expected output: each of its lines
//!   must appear, in order, where `…` stands for anything;
//! - a block that cannot run here (installing packages, systemd, a long-running server) says so
//!   with `<!-- doc-test: skip REASON -->` on the line before its fence;
//! - every `edl …` command written inline in the prose must be one the command line accepts.

use std::path::{Path, PathBuf};

use clap::Parser;

use crate::helpers::smtp::SmtpServer;
use crate::helpers::{Backend, TestDb};
use crate::on_both_backends;

on_both_backends!(every_command_block_in_the_docs_runs_as_written);

/// What the documentation is made of.
fn documents() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = vec![root.join("README.md")];
    let mut docs: Vec<PathBuf> = std::fs::read_dir(root.join("docs"))
        .expect("docs/")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .collect();
    docs.sort();
    files.extend(docs);
    files
}

#[derive(Debug, Clone)]
struct Block {
    line: usize,
    info: String,
    body: String,
    /// Why the block is not run, from a `<!-- doc-test: skip … -->` line before it.
    skip: Option<String>,
    /// Whether only blank lines separate it from the block before.
    follows_previous: bool,
}

const SKIP_MARK: &str = "<!-- doc-test: skip";

fn blocks(text: &str) -> Vec<Block> {
    let mut out = Vec::new();
    let lines: Vec<&str> = text.lines().collect();
    let mut i = 0;
    let mut last_closed: Option<usize> = None;
    while i < lines.len() {
        let trimmed = lines[i].trim_start();
        if let Some(info) = trimmed.strip_prefix("```") {
            let indent = lines[i].len() - trimmed.len();
            let start = i;
            let mut body = Vec::new();
            i += 1;
            while i < lines.len() && !lines[i].trim_start().starts_with("```") {
                body.push(lines[i].get(indent..).unwrap_or(lines[i].trim_start()));
                i += 1;
            }
            let before = lines[..start]
                .iter()
                .rev()
                .find(|l| !l.trim().is_empty())
                .map(|l| l.trim());
            let skip = before
                .and_then(|l| l.strip_prefix(SKIP_MARK))
                .map(|rest| rest.trim_end_matches("-->").trim().to_owned());
            let follows_previous = last_closed
                .is_some_and(|end| lines[end + 1..start].iter().all(|l| l.trim().is_empty()));
            out.push(Block {
                line: start + 1,
                info: info.trim().to_owned(),
                body: body.join("\n"),
                skip,
                follows_previous,
            });
            last_closed = Some(i);
        }
        i += 1;
    }
    out
}

/// Lines of `expected` in order within `actual`; `…` alone skips lines, inside a line it
/// matches any text. Runs of spaces count as one.
fn matches_output(expected: &str, actual: &str) -> Result<(), String> {
    let squeeze = |s: &str| s.split_whitespace().collect::<Vec<_>>().join(" ");
    let actual: Vec<String> = actual.lines().map(squeeze).collect();
    let mut at = 0;
    for line in expected.lines().map(squeeze).filter(|l| !l.is_empty()) {
        if line == "…" {
            continue;
        }
        let pieces: Vec<&str> = line.split('…').map(str::trim).collect();
        let fits = |candidate: &str| {
            let mut rest = candidate;
            for (n, piece) in pieces.iter().enumerate() {
                if piece.is_empty() {
                    continue;
                }
                match rest.find(piece) {
                    Some(pos) if n > 0 || pos == 0 => rest = &rest[pos + piece.len()..],
                    _ => return false,
                }
            }
            pieces
                .last()
                .is_none_or(|p| p.is_empty() || rest.is_empty())
        };
        match actual[at..].iter().position(|a| fits(a)) {
            Some(found) => at += found + 1,
            None => return Err(format!("no line matches {line:?}")),
        }
    }
    Ok(())
}

/// A folder with `edl` and a `cargo` that runs it, for the blocks' `PATH`.
fn tools(dir: &Path) -> PathBuf {
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).expect("bin folder");
    std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_edl"), bin.join("edl")).expect("edl link");
    let cargo = bin.join("cargo");
    std::fs::write(
        &cargo,
        "#!/bin/sh\n\
         # The docs build and run edl with cargo; here the binary under test stands in.\n\
         if [ \"$1\" = run ] && [ \"$2\" = --release ] && [ \"$3\" = -- ]; then\n\
           shift 3; exec edl \"$@\"\n\
         fi\n\
         echo \"the documentation tests do not run 'cargo $*'; mark the block with a doc-test skip\" >&2\n\
         exit 3\n",
    )
    .expect("cargo shim");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&cargo, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    bin
}

async fn every_command_block_in_the_docs_runs_as_written(backend: Backend) {
    let mut failures = Vec::new();
    let mut ran = 0;
    for path in documents() {
        let text = std::fs::read_to_string(&path).expect("a document");
        let name = path
            .strip_prefix(env!("CARGO_MANIFEST_DIR"))
            .unwrap_or(&path)
            .display()
            .to_string();
        let all = blocks(&text);
        if !all.iter().any(|b| b.info == "sh" && b.skip.is_none()) {
            continue;
        }
        let Some(db) = TestDb::create(backend) else {
            return;
        };
        let smtp = SmtpServer::start().await;
        let folder = db.folder();
        let bin = tools(&folder);
        let path_var = format!(
            "{}:{}",
            bin.display(),
            std::env::var("PATH").unwrap_or_default()
        );
        let vars = [
            ("PATH", path_var.as_str()),
            ("HOME", &folder.display().to_string()),
            ("EDL_DATABASE_URL", db.url.as_str()),
            ("EDL_SMTP_URL", &smtp.url()),
            ("EDL_DATA_DIR", &folder.display().to_string()),
        ]
        .map(|(k, v)| (k.to_owned(), v.to_owned()));
        for (n, block) in all.iter().enumerate() {
            if block.info != "sh" || block.skip.is_some() {
                continue;
            }
            ran += 1;
            // Both streams in one pipe, so the output keeps the order a terminal shows.
            let script = format!("exec 2>&1\n{}", block.body);
            let output = tokio::process::Command::new("bash")
                .args(["-e", "-o", "pipefail", "-c", &script])
                .current_dir(&folder)
                .env_clear()
                .envs(vars.iter().cloned())
                .output()
                .await
                .expect("bash runs");
            let text = format!(
                "{}{}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            );
            if !output.status.success() {
                failures.push(format!(
                    "{name}:{}: the block failed ({}):\n{}\n---\n{text}",
                    block.line, output.status, block.body
                ));
                continue;
            }
            if let Some(expected) = all
                .get(n + 1)
                .filter(|b| b.follows_previous && (b.info.is_empty() || b.info == "text"))
            {
                if let Err(why) = matches_output(&expected.body, &text) {
                    failures.push(format!(
                        "{name}:{}: the output shown at line {} is not what the block prints ({why}):\n{text}",
                        block.line, expected.line
                    ));
                }
            }
        }
    }
    assert!(
        ran >= 8,
        "only {ran} blocks ran: the docs lost their examples?"
    );
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn every_shell_block_runs_or_says_why_not() {
    let mut silent = Vec::new();
    for path in documents() {
        let text = std::fs::read_to_string(&path).expect("a document");
        for block in blocks(&text) {
            if matches!(block.info.as_str(), "bash" | "shell" | "console") {
                silent.push(format!(
                    "{}:{}: use ```sh, which the tests run",
                    path.display(),
                    block.line
                ));
            }
            if block.skip.as_deref() == Some("") {
                silent.push(format!(
                    "{}:{}: a skipped block must say why",
                    path.display(),
                    block.line
                ));
            }
        }
    }
    assert!(silent.is_empty(), "{}", silent.join("\n"));
}

/// Inline `edl …` commands in the prose, as written (placeholders such as ID or EMAIL stand
/// for values).
fn inline_commands(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut in_fence = false;
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            in_fence = !in_fence;
            continue;
        }
        if in_fence {
            continue;
        }
        let mut parts = line.split('`');
        parts.next();
        while let Some(code) = parts.next() {
            if code.starts_with("edl ") || code == "edl" {
                out.push(code.to_owned());
            }
            parts.next();
        }
    }
    out
}

/// Words as a shell splits them: quotes group, and are removed.
fn words(command: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut word = String::new();
    let mut quote: Option<char> = None;
    let mut any = false;
    for c in command.chars() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), c) => word.push(c),
            (None, '\'' | '"') => {
                quote = Some(c);
                any = true;
            }
            (None, c) if c.is_whitespace() => {
                if any || !word.is_empty() {
                    out.push(std::mem::take(&mut word));
                }
                any = false;
            }
            (None, c) => word.push(c),
        }
    }
    if any || !word.is_empty() {
        out.push(word);
    }
    out
}

/// A sample value for a placeholder the docs use, or the word itself.
fn sample(word: &str) -> String {
    let placeholder = !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '-' || c == '_');
    if !placeholder {
        return word.to_owned();
    }
    match word {
        "ID" | "N" => "1",
        "EMAIL" | "ADDRESS" => "you@example.org",
        "FILE" => "file",
        "NAME" => "test_message",
        "YYYY-MM" => "2027-01",
        "YYYY-MM-DD" => "2027-01-12",
        _ => "x",
    }
    .to_owned()
}

/// Checks one inline command: its subcommands exist, every option it names exists on that
/// subcommand, and, unless it is abbreviated (with `…` or `[optional]` parts), it parses as
/// given with its placeholders filled in. Prose that names one option writes "the `--at`
/// option of `edl release plan`", not a command that would not run.
fn check_inline(command: &str) -> Result<(), String> {
    use clap::CommandFactory;
    let abbreviated = command.contains('…') || command.contains('[');
    let cleaned: String = command
        .split('…')
        .next()
        .unwrap_or_default()
        .chars()
        .filter(|c| !matches!(c, '[' | ']' | '\\'))
        .collect();
    let tokens = words(&cleaned);
    let path_len = tokens
        .iter()
        .position(|t| t.starts_with('-'))
        .unwrap_or(tokens.len());
    // Every alternative of "a|b" in the path, each checked on its own.
    let mut paths: Vec<Vec<String>> = vec![Vec::new()];
    for token in tokens.iter().take(path_len).skip(1) {
        paths = paths
            .into_iter()
            .flat_map(|p| {
                token.split('|').map(move |alt| {
                    let mut next = p.clone();
                    next.push(alt.to_owned());
                    next
                })
            })
            .collect();
    }
    for path in paths {
        let mut cmd = edl::cli::Cli::command();
        let mut positionals = Vec::new();
        let mut generic = false;
        for word in &path {
            if sample(word) != *word && cmd.has_subcommands() {
                // A placeholder ("COMMAND") stands for any command.
                generic = true;
                break;
            }
            match cmd.find_subcommand(word) {
                Some(sub) => cmd = sub.clone(),
                None if cmd.has_subcommands() && positionals.is_empty() => {
                    return Err(format!("there is no command {word:?}"))
                }
                None => positionals.push(word.clone()),
            }
        }
        if generic {
            continue;
        }
        for option in tokens[path_len..].iter().filter(|t| t.starts_with("--")) {
            let name = option
                .trim_start_matches('-')
                .split('=')
                .next()
                .unwrap_or_default();
            let known = matches!(name, "help" | "version" | "config")
                || cmd.get_arguments().any(|a| a.get_long() == Some(name));
            if !known {
                return Err(format!("{} has no option --{name}", cmd.get_name()));
            }
        }
        if !abbreviated && tokens.len() > path_len {
            let mut args: Vec<String> = vec!["edl".to_owned()];
            args.extend(path.iter().map(|w| sample(w)));
            args.extend(tokens[path_len..].iter().map(|w| sample(w)));
            if let Err(e) = edl::cli::Cli::try_parse_from(&args) {
                if !matches!(
                    e.kind(),
                    clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion
                ) {
                    return Err(e.to_string().lines().next().unwrap_or_default().to_owned());
                }
            }
        }
    }
    Ok(())
}

#[test]
fn every_inline_command_is_one_edl_accepts() {
    let mut wrong = Vec::new();
    for path in documents() {
        let text = std::fs::read_to_string(&path).expect("a document");
        for command in inline_commands(&text) {
            if let Err(why) = check_inline(&command) {
                wrong.push(format!("{}: `{command}`: {why}", path.display()));
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn the_output_matcher_reads_ellipses_as_anything() {
    let actual = "INFO starting\nSent through SMTP (Message-ID <abc@x>).\nqueued 1  sent 2\n";
    assert!(matches_output("Sent through SMTP (Message-ID <…>).", actual).is_ok());
    assert!(matches_output("…\nqueued 1 sent 2", actual).is_ok());
    assert!(matches_output("queued 1 sent 3", actual).is_err());
    assert!(
        matches_output("queued 1  sent 2\nSent through", actual).is_err(),
        "in order"
    );
}
