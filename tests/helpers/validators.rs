//! The independent validators' virtualenv (tests/validators/requirements.txt): where it is,
//! and a clear failure, with the commands that install it, when it is not there.

use std::path::{Path, PathBuf};
use std::process::Command;

const DEFAULT_VENV: &str = "/opt/edl-validators";
/// Names another virtualenv.
pub const VENV_VAR: &str = "EDL_TEST_VALIDATORS_VENV";
/// Set to run the suite without the validators: their tests are then skipped with a note.
pub const SKIP_VALIDATORS: &str = "EDL_TEST_SKIP_VALIDATORS";

/// The virtualenv's folder.
pub fn venv() -> PathBuf {
    PathBuf::from(std::env::var(VENV_VAR).unwrap_or_else(|_| DEFAULT_VENV.to_owned()))
}

/// `tests/validators`, where the validators' scripts are.
pub fn scripts() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/validators")
}

/// The command that installs the virtualenv, for failure messages.
pub fn install_command() -> String {
    let venv = venv();
    let venv = venv.display();
    format!("python3 -m venv {venv} && {venv}/bin/pip install -r tests/validators/requirements.txt")
}

/// The virtualenv's Python once `script env` says its validators are in place; `None` when
/// [`SKIP_VALIDATORS`] is set. Otherwise the test fails, naming what is missing and how to
/// install it (`extra`: further commands after the virtualenv's).
pub fn python_for(script: &str, what: &str, extra: &str) -> Option<PathBuf> {
    let python = venv().join("bin/python");
    let check = Command::new(&python)
        .arg(scripts().join(script))
        .arg("env")
        .output();
    let problem = match check {
        Ok(out) if out.status.success() => return Some(python),
        Ok(out) => String::from_utf8_lossy(&out.stderr).trim().to_owned(),
        Err(error) => format!("{} cannot be run: {error}", python.display()),
    };
    if std::env::var_os(SKIP_VALIDATORS).is_some() {
        eprintln!("skipping the {what} ({SKIP_VALIDATORS} is set): {problem}");
        return None;
    }
    panic!(
        "the {what} are not installed: {problem}. Install them with `{}{extra}` (from the \
         repository root; {VENV_VAR} chooses another virtualenv), or set {SKIP_VALIDATORS}=1 to \
         skip this test.",
        install_command()
    );
}
