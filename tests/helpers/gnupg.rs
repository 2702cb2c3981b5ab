//! Real GnuPG, as a member or an operator would run it: a throwaway home per test, keys made by
//! gpg itself, and the status lines that say who signed what. A test that needs gpg fails with
//! what to install when it is absent.

use std::path::Path;
use std::process::{Command, Output, Stdio};

/// A throwaway GNUPGHOME; its gpg-agent is stopped when it is dropped.
pub struct GnupgHome(tempfile::TempDir);

impl GnupgHome {
    pub fn path(&self) -> &Path {
        self.0.path()
    }
}

impl Drop for GnupgHome {
    fn drop(&mut self) {
        let _ = Command::new("gpgconf")
            .arg("--homedir")
            .arg(self.0.path())
            .args(["--kill", "all"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

pub fn gnupg_home() -> GnupgHome {
    let home = tempfile::tempdir().expect("GNUPGHOME");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(home.path(), std::fs::Permissions::from_mode(0o700))
            .expect("private home");
    }
    GnupgHome(home)
}

/// Runs gpg in `home` without a terminal or a passphrase prompt, feeding `stdin`.
pub fn gpg(home: &Path, args: &[&str], stdin: &[u8]) -> Output {
    use std::io::Write;
    let mut child = Command::new("gpg")
        .arg("--homedir")
        .arg(home)
        .args([
            "--batch",
            "--no-tty",
            "--pinentry-mode",
            "loopback",
            "--passphrase",
            "",
        ])
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("GnuPG (gpg) is needed for this test: install Debian's gnupg package");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(stdin)
        .expect("write to gpg");
    child.wait_with_output().expect("gpg runs")
}

/// A key pair made by gpg in `home` for `alias`: Ed25519 signing and a Curve25519 encryption
/// subkey, both expiring after `expiry` (gpg's form: `1y`, `20d`). Returns the armored public
/// key.
pub fn gnupg_key(home: &Path, alias: &str, expiry: &str) -> String {
    let uid = format!("Security team <{alias}>");
    let made = gpg(
        home,
        &["--quick-gen-key", &uid, "ed25519", "sign", expiry],
        b"",
    );
    assert!(made.status.success(), "{made:?}");
    let listed = gpg(home, &["--with-colons", "--list-keys", alias], b"");
    let fingerprint = String::from_utf8_lossy(&listed.stdout)
        .lines()
        .find_map(|l| {
            l.strip_prefix("fpr:")
                .map(|r| r.trim_matches(':').to_owned())
        })
        .expect("a fingerprint");
    let sub = gpg(
        home,
        &["--quick-add-key", &fingerprint, "cv25519", "encr", expiry],
        b"",
    );
    assert!(sub.status.success(), "{sub:?}");
    let exported = gpg(home, &["--armor", "--export", alias], b"");
    assert!(exported.status.success(), "{exported:?}");
    String::from_utf8(exported.stdout).expect("armored text")
}

/// The fingerprint GnuPG reports in a `[GNUPG:] VALIDSIG` status line.
pub fn valid_signer(status: &[u8]) -> Option<String> {
    String::from_utf8_lossy(status).lines().find_map(|l| {
        l.strip_prefix("[GNUPG:] VALIDSIG ")
            .and_then(|rest| rest.split_whitespace().next())
            .map(str::to_owned)
    })
}
