//! The public pages and the probes, through HTTP as a browser or a load balancer sees them.

use chrono::{Datelike, Duration, NaiveDate, Utc, Weekday};
use diesel_migrations::MigrationHarness;
use edl::db::{DbConnection, POSTGRES_MIGRATIONS, SQLITE_MIGRATIONS};

use crate::helpers::{Backend, Browser, TestApp};
use crate::on_both_backends;

on_both_backends!(
    home_page_shows_the_next_patch_tuesday_and_its_early_disclosure,
    probes_report_process_and_database,
    readyz_is_503_while_migrations_are_pending,
    unknown_addresses_get_a_readable_404_page,
    static_answers_do_not_look_up_the_session,
);

/// The next Patch Tuesday at or after today whose 16:00 UTC release is still ahead, found by
/// walking the calendar day by day rather than with the code under test.
fn next_patch_tuesday_by_hand(now: chrono::DateTime<Utc>) -> NaiveDate {
    let mut day = now.date_naive();
    loop {
        let is_second_tuesday = day.weekday() == Weekday::Tue && (8..=14).contains(&day.day());
        let release = day.and_hms_opt(16, 0, 0).expect("time").and_utc();
        if is_second_tuesday && release > now {
            return day;
        }
        day += Duration::days(1);
    }
}

async fn home_page_shows_the_next_patch_tuesday_and_its_early_disclosure(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let response = app.get("/").await;
    assert_eq!(response.status(), 200);
    let headers = response.headers().clone();
    assert_eq!(headers["content-type"], "text/html; charset=utf-8");
    let csp = headers["content-security-policy"].to_str().expect("ascii");
    assert!(
        csp.contains("frame-ancestors 'none'") && !csp.contains("unsafe-inline"),
        "{csp}"
    );
    assert_eq!(headers["x-content-type-options"], "nosniff");
    assert_eq!(headers["referrer-policy"], "no-referrer");

    let body = response.text().await.expect("body");
    // By the list's rule, the coming Patch Tuesday carries a release only if it was
    // pre-announced by its early disclosure; with nothing announced, a passed disclosure means
    // that month has none, and the next one still open is shown with its dates.
    let now = Utc::now();
    let coming = next_patch_tuesday_by_hand(now);
    let disclosure = |pt: NaiveDate| {
        (pt - Duration::days(14))
            .and_hms_opt(16, 0, 0)
            .expect("time")
            .and_utc()
    };
    let open = if disclosure(coming) <= now {
        assert!(
            body.contains("There is no scheduled security release on the coming"),
            "{coming}'s early disclosure has passed without a pre-announcement"
        );
        next_patch_tuesday_by_hand(coming.and_hms_opt(23, 0, 0).expect("time").and_utc())
    } else {
        assert!(!body.contains("There is no scheduled security release"));
        coming
    };
    for expected in [
        format!("{open} 16:00 UTC"),
        format!("{} 16:00 UTC", open - Duration::days(14)),
    ] {
        assert!(body.contains(&expected), "{expected} is missing");
    }
    assert!(body.contains("Next Patch Tuesday that may carry a security release"));
    assert!(body.contains("https://github.com/envoyproxy/envoy/security/policy"));
    // The stylesheet the page links is served from the binary.
    let css = app.get("/assets/style.css").await;
    assert_eq!(css.status(), 200);
    assert_eq!(css.headers()["content-type"], "text/css; charset=utf-8");
    assert!(css.text().await.expect("css").contains(":focus-visible"));
}

async fn probes_report_process_and_database(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let health = app.get("/healthz").await;
    assert_eq!(health.status(), 200);
    let ready = app.get("/readyz").await;
    assert_eq!(ready.status(), 200);
    let body: serde_json::Value = ready.json().await.expect("json");
    let expected = match backend {
        Backend::Sqlite => "sqlite",
        Backend::Postgres => "postgresql",
    };
    assert_eq!(body["database"], expected);
    assert_eq!(body["migrations"], "current");
}

async fn readyz_is_503_while_migrations_are_pending(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    // Take the schema one migration back, as if an older database met a newer binary.
    app.with_db(|conn| {
        let reverted = match conn {
            DbConnection::Postgresql(c) => c
                .revert_last_migration(POSTGRES_MIGRATIONS)
                .map(|v| v.to_string()),
            DbConnection::Sqlite(c) => c
                .revert_last_migration(SQLITE_MIGRATIONS)
                .map(|v| v.to_string()),
        };
        reverted.map_err(|e| edl::db::DbError::Migration(e.to_string()))
    })
    .await;
    let ready = app.get("/readyz").await;
    assert_eq!(ready.status(), 503);
    let body: serde_json::Value = ready.json().await.expect("json");
    assert_eq!(body["reason"], "migrations-pending");
    // The process itself is still alive.
    assert_eq!(app.get("/healthz").await.status(), 200);

    app.with_db(edl::db::migrate).await;
    assert_eq!(app.get("/readyz").await.status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_is_503_when_postgresql_goes_away() {
    let Some(app) = TestApp::spawn(Backend::Postgres).await else {
        return;
    };
    assert_eq!(app.get("/readyz").await.status(), 200);
    // The database disappears under the running service.
    let admin_url = std::env::var("EDL_TEST_DATABASE_URL")
        .unwrap_or_else(|_| crate::helpers::DEFAULT_TEST_DATABASE_URL.to_owned());
    let name = url::Url::parse(&app.db.url)
        .expect("url")
        .path()
        .trim_start_matches('/')
        .to_owned();
    tokio::task::spawn_blocking(move || {
        use diesel::{Connection, RunQueryDsl};
        let mut admin = diesel::PgConnection::establish(&admin_url).expect("admin connection");
        diesel::sql_query(format!("DROP DATABASE {name} WITH (FORCE)"))
            .execute(&mut admin)
            .expect("drop");
    })
    .await
    .expect("drop task");
    let ready = app.get("/readyz").await;
    assert_eq!(ready.status(), 503);
    let body: serde_json::Value = ready.json().await.expect("json");
    assert_eq!(body["reason"], "database-unreachable");
    assert_eq!(app.get("/healthz").await.status(), 200);
}

/// On SQLite, a commit no longer copies the write-ahead log into the database file itself
/// (that stalled every other writer behind it): the running service does it in the background.
/// What a request wrote reaches the database file on its own, well before the log would have
/// grown to the size at which a commit copies it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_writes_reach_the_database_file_from_the_background() {
    let app = TestApp::spawn(Backend::Sqlite)
        .await
        .expect("SQLite needs nothing started");
    app.add_account(
        "checkpointed@example.org",
        "Checkpointed",
        &[edl::accounts::Role::Reviewer],
        "a long enough password",
    )
    .await;
    let file = app.db.folder().join("edl.sqlite3");
    crate::helpers::eventually(
        std::time::Duration::from_secs(10),
        "the new account in the database file itself, without its log",
        || {
            let file = file.clone();
            async move {
                // A copy of the database file alone: SQLite reads only what was checkpointed.
                let copy = tempfile::tempdir().expect("temporary folder");
                let path = copy.path().join("copy.sqlite3");
                std::fs::copy(&file, &path).expect("copy the database file");
                use diesel::{Connection, RunQueryDsl};
                let mut conn =
                    diesel::SqliteConnection::establish(path.to_str().expect("UTF-8 path"))
                        .expect("open the copy");
                #[derive(diesel::QueryableByName)]
                struct Count {
                    #[diesel(sql_type = diesel::sql_types::BigInt)]
                    n: i64,
                }
                // Before any checkpoint the file holds no tables at all yet.
                let found = diesel::sql_query(
                    "SELECT COUNT(*) AS n FROM accounts WHERE email = 'checkpointed@example.org'",
                )
                .get_result::<Count>(&mut conn)
                .ok();
                found.is_some_and(|c| c.n == 1).then_some(())
            }
        },
    )
    .await;
}

async fn unknown_addresses_get_a_readable_404_page(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let response = app.get("/no/such/page").await;
    assert_eq!(response.status(), 404);
    assert_eq!(
        response.headers()["content-type"],
        "text/html; charset=utf-8"
    );
    let body = response.text().await.expect("body");
    assert!(body.contains("There is nothing at this address."), "{body}");
    assert!(body.contains("href=\"/\""));
    assert_eq!(app.get("/assets/../Cargo.toml").await.status(), 404);
    assert_eq!(app.get("/assets/nothing.css").await.status(), 404);
}

/// Assets, probes, the key and the feeds are the same for everyone: a request for them with a
/// session cookie does not touch the session (which a page request does, keeping it alive).
async fn static_answers_do_not_look_up_the_session(backend: Backend) {
    use diesel::prelude::*;
    use edl::db::schema::sessions;
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    app.add_account(
        "ada@wg.example",
        "Ada",
        &[edl::accounts::Role::Admin],
        "tangerine-kettle-orbit-42",
    )
    .await;
    let browser = Browser::open(&app).await;
    browser
        .sign_in("ada@wg.example", "tangerine-kettle-orbit-42")
        .await;
    let last_seen = || async {
        app.with_db(|c| {
            Ok(sessions::table
                .select(sessions::last_seen_at)
                .first::<chrono::NaiveDateTime>(c)?)
        })
        .await
    };
    let signed_in = last_seen().await;
    app.advance(Duration::minutes(10));
    for path in [
        "/assets/style.css",
        "/healthz",
        "/openpgp.asc",
        "/feed.atom",
    ] {
        assert_eq!(browser.get(path).await.status(), 200, "{path}");
    }
    assert_eq!(
        last_seen().await,
        signed_in,
        "a static answer touched the session"
    );
    assert_eq!(browser.get("/account").await.status(), 200);
    assert!(
        last_seen().await > signed_in,
        "a page keeps the session alive"
    );
}
