//! Passwords: the policy a new password must meet, and argon2id hashing. Hashing runs on its
//! own low-priority threads, so sign-in floods cannot take every core from the pages;
//! unknown accounts are checked against a dummy hash so timing does not reveal who exists.

use std::sync::{Arc, OnceLock};

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};

/// OWASP's minimum for argon2id: 19 MiB of memory, 2 passes, 1 lane.
pub const MEMORY_KIB: u32 = 19_456;
pub const ITERATIONS: u32 = 2;
pub const PARALLELISM: u32 = 1;

pub const MIN_LENGTH: usize = 12;
pub const MAX_LENGTH: usize = 256;

/// One password per line, lower case; a data file, not code.
static COMMON_PASSWORDS: &str = include_str!("../../data/common-passwords.txt");

fn hasher() -> Argon2<'static> {
    // The constants are valid parameters; `Params::DEFAULT` is the fallback that cannot fail.
    let params = Params::new(MEMORY_KIB, ITERATIONS, PARALLELISM, None).unwrap_or(Params::DEFAULT);
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    #[error("The password must be at least {MIN_LENGTH} characters long.")]
    TooShort,
    #[error("The password must be at most {MAX_LENGTH} characters long.")]
    TooLong,
    #[error("This password is on a list of commonly used passwords. Choose another.")]
    Common,
    #[error("The password must not contain your email address or name.")]
    Personal,
}

/// Checks a new password against the policy: length, the common-password list (also with
/// digits and punctuation stripped from its ends, so "Password2024!" counts), and the
/// account's own email and name.
pub fn check_policy(password: &str, email: &str, name: &str) -> Result<(), PolicyError> {
    let length = password.chars().count();
    if length < MIN_LENGTH {
        return Err(PolicyError::TooShort);
    }
    if length > MAX_LENGTH {
        return Err(PolicyError::TooLong);
    }
    let lower = password.to_lowercase();
    let core = lower.trim_matches(|c: char| !c.is_alphabetic());
    let common = COMMON_PASSWORDS
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'));
    for entry in common {
        if lower == entry || core == entry {
            return Err(PolicyError::Common);
        }
    }
    if lower
        .chars()
        .collect::<std::collections::HashSet<_>>()
        .len()
        < 4
    {
        return Err(PolicyError::Common);
    }
    let local = email.split('@').next().unwrap_or_default().to_lowercase();
    let personal = [local.as_str(), &name.to_lowercase()]
        .into_iter()
        .filter(|p| p.chars().count() >= 4)
        .any(|p| lower.contains(p));
    if personal {
        return Err(PolicyError::Personal);
    }
    Ok(())
}

/// A PHC string: `$argon2id$v=19$m=19456,t=2,p=1$salt$hash`.
pub fn hash(password: &str) -> Result<String, argon2::password_hash::Error> {
    let salt = SaltString::generate(&mut OsRng);
    Ok(hasher()
        .hash_password(password.as_bytes(), &salt)?
        .to_string())
}

/// The result of checking a password.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verified {
    No,
    /// Correct; `rehash` when the stored hash is weaker than today's parameters.
    Yes {
        rehash: bool,
    },
}

/// Checks a password against a PHC string. An unparseable stored hash never matches.
pub fn verify(password: &str, phc: &str) -> Verified {
    let Ok(parsed) = PasswordHash::new(phc) else {
        return Verified::No;
    };
    // Verification follows the parameters in the string, whatever they are.
    if Argon2::default()
        .verify_password(password.as_bytes(), &parsed)
        .is_err()
    {
        return Verified::No;
    }
    Verified::Yes {
        rehash: is_weaker_than_current(&parsed),
    }
}

fn is_weaker_than_current(parsed: &PasswordHash<'_>) -> bool {
    if parsed.algorithm.as_str() != "argon2id" {
        return true;
    }
    match Params::try_from(parsed) {
        Ok(p) => p.m_cost() < MEMORY_KIB || p.t_cost() < ITERATIONS || p.p_cost() < PARALLELISM,
        Err(_) => true,
    }
}

/// A hash of a random password, computed once: unknown accounts are verified against it so
/// that a wrong email costs as much time as a wrong password.
pub fn dummy_hash() -> &'static str {
    static DUMMY: OnceLock<String> = OnceLock::new();
    DUMMY.get_or_init(|| {
        let random: [u8; 32] = rand::random();
        hash(&hex::encode(random)).unwrap_or_default()
    })
}

type Job = Box<dyn FnOnce() + Send>;

/// Runs hashing on a small pool of its own threads at the lowest scheduling priority, so a
/// flood of sign-in attempts takes only the CPU time pages do not need, and never an async
/// worker. One thread fewer than there are cores, and at least one.
#[derive(Clone)]
pub struct Hasher {
    jobs: std::sync::mpsc::Sender<Job>,
}

impl Default for Hasher {
    fn default() -> Self {
        let cores = std::thread::available_parallelism().map_or(2, usize::from);
        let (jobs, queue) = std::sync::mpsc::channel::<Job>();
        let queue = Arc::new(std::sync::Mutex::new(queue));
        for n in 0..cores.saturating_sub(1).max(1) {
            let queue = queue.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("edl-hash-{n}"))
                .spawn(move || {
                    if let Err(error) = thread_priority::set_current_thread_priority(
                        thread_priority::ThreadPriority::Min,
                    ) {
                        tracing::warn!(
                            ?error,
                            "Could not lower the priority of a password-hashing thread."
                        );
                    }
                    loop {
                        // The lock is held only while waiting for the next job.
                        let job = match queue.lock() {
                            Ok(queue) => queue.recv(),
                            Err(_) => return,
                        };
                        match job {
                            Ok(job) => job(),
                            Err(_) => return, // every Hasher is gone
                        }
                    }
                });
            if let Err(error) = spawned {
                tracing::error!(%error, "Could not start a password-hashing thread.");
            }
        }
        Self { jobs }
    }
}

impl Hasher {
    async fn run<T: Send + 'static>(&self, work: impl FnOnce() -> T + Send + 'static) -> Option<T> {
        let (done, result) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move || {
            let _ = done.send(work());
        });
        self.jobs.send(job).ok()?;
        result.await.ok()
    }

    pub async fn verify(&self, password: String, phc: Option<String>) -> Verified {
        self.run(move || match phc {
            Some(phc) => verify(&password, &phc),
            None => {
                let _ = verify(&password, dummy_hash());
                Verified::No
            }
        })
        .await
        .unwrap_or(Verified::No)
    }

    pub async fn hash(&self, password: String) -> Result<String, String> {
        self.run(move || hash(&password).map_err(|e| e.to_string()))
            .await
            .unwrap_or_else(|| Err("the password-hashing threads are not running".to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_are_argon2id_at_the_owasp_parameters() {
        let phc = hash("correct horse battery staple").expect("hash");
        assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{phc}");
        assert_eq!(
            verify("correct horse battery staple", &phc),
            Verified::Yes { rehash: false }
        );
        assert_eq!(verify("correct horse battery stapler", &phc), Verified::No);
        assert_eq!(verify("anything", "not a phc string"), Verified::No);
    }

    /// Made with the reference implementation (the `argon2` command-line tool):
    /// `printf 'independent vector pw' | argon2 edlsaltedlsalt -id -t 2 -k 19456 -p 1 -l 32 -e`
    #[test]
    fn a_hash_from_the_reference_implementation_verifies() {
        let reference = include_str!("../../data/argon2-reference-vector.txt").trim();
        assert!(
            reference.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{reference}"
        );
        assert_eq!(
            verify("independent vector pw", reference),
            Verified::Yes { rehash: false }
        );
        assert_eq!(verify("independent vector pw!", reference), Verified::No);
    }

    #[test]
    fn weaker_hashes_ask_for_a_rehash() {
        let weak_params = Params::new(8 * 1024, 1, 1, None).expect("params");
        let weak = Argon2::new(Algorithm::Argon2id, Version::V0x13, weak_params);
        let salt = SaltString::generate(&mut OsRng);
        let phc = weak
            .hash_password(b"an old password hash", &salt)
            .expect("hash")
            .to_string();
        assert_eq!(
            verify("an old password hash", &phc),
            Verified::Yes { rehash: true }
        );
    }

    #[test]
    fn the_policy_refuses_short_common_and_personal_passwords() {
        let check = |p: &str| check_policy(p, "maria.lopez@vendor.example", "Maria Lopez");
        assert_eq!(check("short"), Err(PolicyError::TooShort));
        assert_eq!(check(&"x".repeat(300)), Err(PolicyError::TooLong));
        assert_eq!(check("password1234"), Err(PolicyError::Common));
        assert_eq!(check("Password2024!"), Err(PolicyError::Common));
        assert_eq!(check("aaaaaaaaaaaaaaaa"), Err(PolicyError::Common));
        assert_eq!(check("maria.lopez-2026"), Err(PolicyError::Personal));
        assert_eq!(check("my maria lopez secret"), Err(PolicyError::Personal));
        assert_eq!(check("tangerine-kettle-orbit-42"), Ok(()));
    }
}
