//! `TestApp` spawns the real server on port 0 with a database of its own: a temporary SQLite
//! file, or a fresh PostgreSQL database created from `EDL_TEST_DATABASE_URL` and dropped after.
//! Its clock is the app's own: tests move time forward with [`TestApp::advance`] instead of
//! sleeping. A test that leaves queued mail undone fails when its `TestApp` is dropped.

pub mod gnupg;
pub mod keys;
pub mod smtp;
pub mod validators;

use std::future::Future;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use actix_web::dev::ServerHandle;
use diesel::{Connection, RunQueryDsl};
use edl::clock::Clock;
use edl::config::Settings;
use edl::db::{self, DbError, DbPool};
use edl::mail::outbox::{self, OutboxRow};
use edl::mail::transport::Transport;
use edl::startup::{Application, Options};
use edl::web::AppState;

pub const DEFAULT_TEST_DATABASE_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

/// Runs an `async fn(Backend)` once on SQLite and once on PostgreSQL, as `NAME::sqlite` and
/// `NAME::postgres`.
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                super::$name($crate::helpers::Backend::Sqlite).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                super::$name($crate::helpers::Backend::Postgres).await
            }
        }
    )*};
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A database that exists for one test and is removed after it.
pub struct TestDb {
    pub url: String,
    dir: tempfile::TempDir,
    postgres: Option<(String, String)>,
}

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// Set to run the suite without PostgreSQL: its variants are then skipped with a note instead
/// of failing.
pub const SKIP_POSTGRES: &str = "EDL_TEST_SKIP_POSTGRES";

impl TestDb {
    /// A database of its own for one test. PostgreSQL that cannot be reached fails the test
    /// with what to start, unless `EDL_TEST_SKIP_POSTGRES` is set, which skips it (`None`).
    pub fn create(backend: Backend) -> Option<Self> {
        let dir = tempfile::tempdir().expect("temporary folder");
        match backend {
            Backend::Sqlite => {
                let url = format!("sqlite://{}", dir.path().join("edl.sqlite3").display());
                Some(Self {
                    url,
                    dir,
                    postgres: None,
                })
            }
            Backend::Postgres => {
                let admin_url = std::env::var("EDL_TEST_DATABASE_URL")
                    .unwrap_or_else(|_| DEFAULT_TEST_DATABASE_URL.to_owned());
                let mut admin = match diesel::PgConnection::establish(&admin_url) {
                    Ok(conn) => conn,
                    Err(error) if std::env::var_os(SKIP_POSTGRES).is_some() => {
                        eprintln!("skipping the PostgreSQL variant ({SKIP_POSTGRES} is set): {admin_url} is not reachable ({error})");
                        return None;
                    }
                    Err(error) => panic!(
                        "PostgreSQL at {admin_url} is not reachable: {error}. Start it \
                         (pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start), \
                         point EDL_TEST_DATABASE_URL at one, or set {SKIP_POSTGRES}=1 to skip \
                         the PostgreSQL variants."
                    ),
                };
                let name = format!(
                    "edl_test_{}_{}_{}",
                    std::process::id(),
                    COUNTER.fetch_add(1, Ordering::SeqCst),
                    rand_suffix()
                );
                diesel::sql_query(format!("CREATE DATABASE {name}"))
                    .execute(&mut admin)
                    .expect("create the test database");
                let mut url = url::Url::parse(&admin_url).expect("EDL_TEST_DATABASE_URL is a URL");
                url.set_path(&name);
                Some(Self {
                    url: url.to_string(),
                    dir,
                    postgres: Some((admin_url, name)),
                })
            }
        }
    }

    pub fn folder(&self) -> PathBuf {
        self.dir.path().to_path_buf()
    }
}

fn rand_suffix() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!("{nanos:x}")
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Some((admin_url, name)) = &self.postgres {
            if let Ok(mut admin) = diesel::PgConnection::establish(admin_url) {
                let _ = diesel::sql_query(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                    .execute(&mut admin);
            }
        }
    }
}

pub struct TestApp {
    pub address: String,
    pub pool: DbPool,
    pub state: actix_web::web::Data<AppState>,
    pub settings: Settings,
    pub mail_dir: PathBuf,
    pub client: reqwest::Client,
    /// The app's clock; [`TestApp::advance`] moves it.
    pub clock: Clock,
    handle: ServerHandle,
    pub db: TestDb,
    /// Why this test may end with mail still queued (it stopped the workers on purpose).
    undone_mail_expected: std::sync::Mutex<Option<&'static str>>,
    /// The SMTP server the app sends through, when the test asked for one; it stays up until
    /// the check for undone mail has run.
    smtp: Option<smtp::SmtpServer>,
}

impl TestApp {
    pub async fn spawn(backend: Backend) -> Option<Self> {
        Self::spawn_with(backend, &[], None).await
    }

    /// Spawns with its own loopback SMTP server, which [`TestApp::smtp`] returns.
    pub async fn spawn_with_smtp(backend: Backend, vars: &[(&str, &str)]) -> Option<Self> {
        let server = smtp::SmtpServer::start().await;
        let url = server.url();
        let mut all = vec![("EDL_SMTP_URL", url.as_str())];
        all.extend_from_slice(vars);
        let mut app = Self::spawn_with(backend, &all, None).await?;
        app.smtp = Some(server);
        Some(app)
    }

    /// The app's SMTP server.
    pub fn smtp(&self) -> &smtp::SmtpServer {
        self.smtp
            .as_ref()
            .expect("the app was spawned with spawn_with_smtp")
    }

    /// Spawns with extra `EDL_*` settings and optionally a transport of the test's choosing.
    pub async fn spawn_with(
        backend: Backend,
        vars: &[(&str, &str)],
        transport: Option<Transport>,
    ) -> Option<Self> {
        // The service's warnings and errors go to the test's output, shown when it fails.
        let _ = tracing_subscriber::fmt()
            .with_env_filter(
                std::env::var("RUST_LOG").unwrap_or_else(|_| "warn,edl=info".to_owned()),
            )
            .with_test_writer()
            .try_init();
        let db = TestDb::create(backend)?;
        let mail_dir = db.folder().join("mail-out");
        let mail_dir_text = mail_dir.display().to_string();
        // Generated state (the development cookie key) stays in the test's own folder.
        let data_dir_text = db.folder().display().to_string();
        let mut all: Vec<(&str, &str)> = vec![
            ("EDL_DATABASE_URL", db.url.as_str()),
            ("EDL_BIND", "127.0.0.1:0"),
            ("EDL_MAIL_DIR", mail_dir_text.as_str()),
            ("EDL_DATA_DIR", data_dir_text.as_str()),
            ("EDL_DATABASE_POOL_SIZE", "6"),
            ("EDL_OUTBOX_POLL_INTERVAL", "50ms"),
            ("EDL_OUTBOX_RETRY_BASE", "100ms"),
            ("EDL_OUTBOX_RETRY_MAX", "400ms"),
            ("EDL_SMTP_TIMEOUT", "5s"),
        ];
        all.extend_from_slice(vars);
        let settings = Settings::from_vars(all).expect("test settings are valid");
        let clock = Clock::system();
        let app = Application::build(
            settings.clone(),
            Options {
                transport,
                handle_signals: false,
                clock: clock.clone(),
            },
        )
        .await
        .expect("the application starts");
        let port = app.port();
        let handle = app.handle();
        let state = app.state.clone();
        tokio::spawn(app.run_until_stopped());
        Some(Self {
            address: format!("http://127.0.0.1:{port}"),
            pool: state.pool.clone(),
            state,
            settings,
            mail_dir,
            client: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .expect("http client"),
            clock,
            handle,
            db,
            undone_mail_expected: std::sync::Mutex::new(None),
            smtp: None,
        })
    }

    /// Moves the app's clock forward: sessions age, lockouts lift, leases expire, releases
    /// come due, without the test waiting.
    pub fn advance(&self, by: chrono::Duration) {
        self.clock.advance(by);
    }

    /// Moves the app's clock forward to `at` (a test cannot move it back).
    pub fn move_to(&self, at: chrono::DateTime<chrono::Utc>) {
        let now = self.state.ctx.clock.now();
        assert!(
            at >= now,
            "the clock only moves forward: {at} is before {now}"
        );
        self.clock.advance(at - now);
    }

    /// An outbox worker of this app's, as a second process would run it.
    pub fn worker(&self, name: &str, transport: Transport) -> edl::mail::worker::Worker {
        let delivery = edl::startup::delivery(&self.state.ctx, &self.pool, &transport);
        edl::mail::worker::Worker::new(name.to_owned(), delivery)
    }

    /// Says this test ends with mail still queued on purpose, and why.
    pub fn expect_undone_mail(&self, why: &'static str) {
        if let Ok(mut expected) = self.undone_mail_expected.lock() {
            *expected = Some(why);
        }
    }

    /// Waits until no message is waiting to be sent now or being sent: after this, a test can
    /// assert what did not happen without sleeping for an arbitrary time.
    pub async fn outbox_idle(&self) {
        self.state.mailer.wake_workers();
        let clock = self.clock.clone();
        eventually(
            Duration::from_secs(20),
            "the outbox to finish what is due",
            || async {
                let now = clock.now_naive();
                let busy = self.with_db(outbox::unfinished).await.into_iter().any(|r| {
                    r.next_attempt_at <= now || r.status == edl::domain::OutboxStatus::Sending
                });
                (!busy).then_some(())
            },
        )
        .await;
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client
            .get(format!("{}{path}", self.address))
            .send()
            .await
            .expect("the server answers")
    }

    /// Runs blocking database work on the app's pool.
    pub async fn with_db<T, F>(&self, work: F) -> T
    where
        T: Send + 'static,
        F: FnOnce(&mut db::DbConnection) -> Result<T, DbError> + Send + 'static,
    {
        db::run(&self.pool, work)
            .await
            .expect("database work succeeds")
    }

    /// Enqueues the test message to each recipient in one transaction, as a feature would.
    pub async fn enqueue_test_mail(&self, recipients: &[&str]) -> Vec<i64> {
        let mailer = self.state.mailer.clone();
        let recipients: Vec<String> = recipients.iter().map(|r| (*r).to_owned()).collect();
        let ids = db::run(&self.pool, move |conn| {
            conn.transaction(|conn| {
                let mut ids = Vec::new();
                for to in &recipients {
                    let id = mailer.enqueue(
                        conn,
                        "test_message",
                        to,
                        serde_json::json!({ "requested_by": "the test suite" }),
                        None,
                    )?;
                    ids.push(id.expect("a new row"));
                }
                Ok::<_, edl::mail::MailError>(ids)
            })
        })
        .await
        .expect("enqueue");
        self.state.mailer.wake_workers();
        ids
    }

    pub async fn outbox_rows(&self) -> Vec<OutboxRow> {
        let mut rows = self.with_db(|conn| outbox::recent(conn, 10_000)).await;
        rows.reverse();
        rows
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        let expected = self
            .undone_mail_expected
            .lock()
            .map(|e| e.is_some())
            .unwrap_or(true);
        if !expected && !std::thread::panicking() {
            // Queued work must be done by the end of a test: give the workers a moment to
            // finish what is due, then fail on anything left.
            let pool = self.pool.clone();
            let undone = tokio::task::block_in_place(|| {
                let deadline = std::time::Instant::now() + Duration::from_secs(20);
                loop {
                    // A test that took the database away has nothing left to check.
                    let Ok(rows) = pool
                        .get_timeout(Duration::from_secs(1))
                        .map_err(DbError::from)
                        .and_then(|mut conn| outbox::unfinished(&mut conn))
                    else {
                        return Vec::new();
                    };
                    if rows.is_empty() || std::time::Instant::now() > deadline {
                        return rows;
                    }
                    std::thread::sleep(Duration::from_millis(25));
                }
            });
            if !undone.is_empty() {
                drop(self.handle.stop(false));
                let list: Vec<String> = undone
                    .iter()
                    .map(|r| format!("#{} {} to {} ({})", r.id, r.template, r.recipient, r.status))
                    .collect();
                panic!(
                    "the test left queued mail undone: {}. Assert its outcome, or call \
                     expect_undone_mail with the reason.",
                    list.join("; ")
                );
            }
        }
        // Sends the stop command now; the server winds down on its own threads.
        drop(self.handle.stop(false));
    }
}

/// Polls `check` until it returns `Some`, or fails the test after `limit` with `what`.
pub async fn eventually<T, F, Fut>(limit: Duration, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for: {what}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// A browser: keeps its cookies, reads the CSRF token from the pages it loads, and sends it
/// with every form, as the pages' own forms do.
pub struct Browser {
    pub client: reqwest::Client,
    pub base: String,
    pub csrf: String,
}

impl Browser {
    pub async fn open(app: &TestApp) -> Self {
        let client = reqwest::Client::builder()
            .cookie_store(true)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("http client");
        let mut browser = Self {
            client,
            base: app.address.clone(),
            csrf: String::new(),
        };
        let page = browser.get("/login").await;
        browser.csrf =
            csrf_token_in(&page.text().await.expect("login page")).expect("a CSRF token on /login");
        browser
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .expect("the server answers")
    }

    pub async fn head(&self, path: &str) -> reqwest::Response {
        self.client
            .head(format!("{}{path}", self.base))
            .send()
            .await
            .expect("the server answers")
    }

    /// Posts a form with this browser's CSRF token added.
    pub async fn post(&self, path: &str, fields: &[(&str, &str)]) -> reqwest::Response {
        let mut all: Vec<(&str, &str)> = vec![("csrf_token", self.csrf.as_str())];
        all.extend_from_slice(fields);
        self.post_raw(path, &all).await
    }

    /// Posts exactly the given fields, CSRF token or not.
    pub async fn post_raw(&self, path: &str, fields: &[(&str, &str)]) -> reqwest::Response {
        self.client
            .post(format!("{}{path}", self.base))
            .form(fields)
            .send()
            .await
            .expect("the server answers")
    }

    /// Signs in and checks that it worked.
    pub async fn sign_in(&self, email: &str, password: &str) {
        let response = self
            .post("/login", &[("email", email), ("password", password)])
            .await;
        assert_eq!(response.status(), 303, "sign-in as {email} failed");
    }
}

pub fn csrf_token_in(html: &str) -> Option<String> {
    let marker = "name=\"csrf_token\" value=\"";
    let start = html.find(marker)? + marker.len();
    let end = html[start..].find('"')? + start;
    Some(html[start..end].to_owned())
}

impl TestApp {
    /// Creates an account directly, as `edl user add` does.
    pub async fn add_account(
        &self,
        email: &str,
        name: &str,
        roles: &[edl::accounts::Role],
        password: &str,
    ) -> i64 {
        let hash = edl::accounts::password::hash(password).expect("hash");
        let email = edl::accounts::AccountEmail::parse(email).expect("email");
        let (name, roles) = (name.to_owned(), roles.to_vec());
        db::run(&self.pool, move |conn| {
            edl::accounts::create(conn, "test", &email, &name, &hash, &roles, false)
        })
        .await
        .expect("account created")
    }
}

impl Browser {
    /// Posts a multipart form with one file, as a browser's upload form does.
    pub async fn post_file(
        &self,
        path: &str,
        fields: &[(&str, &str)],
        file: (&str, &[u8]),
    ) -> reqwest::Response {
        let mut form = reqwest::multipart::Form::new().text("csrf_token", self.csrf.clone());
        for (name, value) in fields {
            form = form.text((*name).to_owned(), (*value).to_owned());
        }
        let part = reqwest::multipart::Part::bytes(file.1.to_vec()).file_name(file.0.to_owned());
        form = form.part("file", part);
        self.client
            .post(format!("{}{path}", self.base))
            .multipart(form)
            .send()
            .await
            .expect("the server answers")
    }
}

/// Runs the `edl` binary in `dir` with only `PATH` and the given variables, feeding `stdin`.
pub fn run_edl(
    dir: &std::path::Path,
    vars: &[(&str, &str)],
    args: &[&str],
    stdin: &str,
) -> std::process::Output {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let mut child = Command::new(env!("CARGO_BIN_EXE_edl"))
        .current_dir(dir)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .envs(vars.iter().copied())
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("edl runs");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(stdin.as_bytes())
        .expect("write stdin");
    child.wait_with_output().expect("edl exits")
}

impl TestApp {
    /// Runs `edl` against this app's database, in its folder.
    pub fn edl(&self, args: &[&str], stdin: &str) -> std::process::Output {
        self.edl_with(&[], args, stdin)
    }

    /// `edl` on this app's database with more settings, e.g. the list's time zone.
    pub fn edl_with(
        &self,
        vars: &[(&str, &str)],
        args: &[&str],
        stdin: &str,
    ) -> std::process::Output {
        let mut all = vec![("EDL_DATABASE_URL", self.db.url.as_str())];
        all.extend_from_slice(vars);
        run_edl(&self.db.folder(), &all, args, stdin)
    }

    /// Inserts a member as an approved application would have made it, a year ago, with its
    /// yearly review now due.
    pub async fn add_member(
        &self,
        org: &str,
        domain: &str,
        status: &str,
        policy_version: i32,
    ) -> i64 {
        use diesel::ExpressionMethods;
        use edl::db::schema::members;
        let org = org.to_owned();
        let domain_text = domain.to_ascii_lowercase();
        let domain = edl::domain::OrgDomain::parse(domain).expect("a domain");
        let status: edl::domain::MemberStatus = status.parse().expect("a member status");
        let alias =
            edl::domain::SecurityAlias::parse(&format!("security@{domain}")).expect("alias");
        let id = self
            .with_db(move |c| {
                let now = db::now();
                Ok(diesel::insert_into(members::table)
                    .values((
                        members::org_name.eq(&org),
                        members::org_domain.eq(&domain),
                        members::security_alias.eq(&alias),
                        members::policy_version.eq(policy_version),
                        members::status.eq(status),
                        members::joined_at.eq(now - chrono::Duration::days(400)),
                        members::last_reviewed_at.eq(now - chrono::Duration::days(400)),
                        members::next_review_due.eq(now - chrono::Duration::days(35)),
                        members::created_at.eq(now),
                        members::updated_at.eq(now),
                    ))
                    .returning(members::id)
                    .get_result(c)?)
            })
            .await;
        // Every member has a usable key unless a test takes it away.
        self.set_member_key(id, Some(&keys::public(&format!("security@{domain_text}"))))
            .await;
        id
    }

    /// Stores `armored` as the member's key (`None`: the member has none), as the service
    /// stores one handed in.
    pub async fn set_member_key(&self, member_id: i64, armored: Option<&str>) {
        let armored = armored.map(str::to_owned);
        self.with_db(move |c| edl::membership::members::set_key(c, member_id, armored.as_deref()))
            .await;
    }
}

/// The first part of a PGP/MIME signed message byte for byte, as its signature covers it, and
/// the armored signature.
pub fn signed_content(raw: &[u8]) -> (Vec<u8>, String) {
    let parsed = mailparse::parse_mail(raw).expect("a message");
    assert_eq!(
        parsed.ctype.mimetype, "multipart/signed",
        "a signed message"
    );
    assert_eq!(parsed.ctype.params["protocol"], "application/pgp-signature");
    let boundary = &parsed.ctype.params["boundary"];
    let first = format!("--{boundary}\r\n");
    let next = format!("\r\n--{boundary}\r\n");
    let text = String::from_utf8_lossy(raw);
    let start = text.find(&first).expect("the first part") + first.len();
    let end = start + text[start..].find(&next).expect("the second part");
    let signature = parsed.subparts[1].get_body().expect("the signature");
    (raw[start..end].to_vec(), signature)
}

/// A small patch of the project's own, as a release manager uploads it.
pub const PATCH: &str = "From 1111111111111111111111111111111111111111 Mon Sep 17 00:00:00 2001
From: Pat Maintainer <pat@project.example>
Date: Tue, 10 Nov 2026 10:00:00 +0000
Subject: [PATCH] Normalize paths before authorization

Signed-off-by: Pat Maintainer <pat@project.example>
---
 pilot/pkg/security/authz/path.go | 2 +-
 1 file changed, 1 insertion(+), 1 deletion(-)

diff --git a/pilot/pkg/security/authz/path.go b/pilot/pkg/security/authz/path.go
index 1111111..2222222 100644
--- a/pilot/pkg/security/authz/path.go
+++ b/pilot/pkg/security/authz/path.go
@@ -1,3 +1,3 @@
 package authz
-func normalize(p string) string { return p }
+func normalize(p string) string { return path.Clean(p) }
";

/// A workflow's error as the error `TestApp::with_db` work returns.
pub fn err(e: impl std::fmt::Display) -> DbError {
    DbError::Task(e.to_string())
}

/// A stored UTC time as an instant.
pub fn utc(t: chrono::NaiveDateTime) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::from_naive_utc_and_offset(t, chrono::Utc)
}
