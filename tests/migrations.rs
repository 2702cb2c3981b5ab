//! Upgrading a database that already holds data: what the older schema kept in strings (the
//! held-back prefix, attachment lists, revisions inside dedupe keys and audit JSON, joined
//! lists) arrives in the columns made for it.

use diesel::backend::Backend as DieselBackend;
use diesel::connection::SimpleConnection;
use diesel::migration::MigrationSource;
use diesel_migrations::{EmbeddedMigrations, MigrationHarness};
use edl::config::{DatabaseUrl, Settings};
use edl::db::{self, DbConnection};
use edl::domain::OutboxStatus;
use edl::mail::outbox;
use edl::membership::application;
use edl::releases::release;

use crate::helpers::{Backend, TestDb};
use crate::on_both_backends;

on_both_backends!(existing_rows_move_into_the_columns_made_for_them);

/// The migration that moved state out of strings.
const STATE_IN_COLUMNS: &str = "20261201000005";

/// Rows as the schema before it kept them.
const OLD_ROWS: &str = r#"
INSERT INTO accounts (email, name, password_hash, disabled, created_at, updated_at)
VALUES ('rm1@example.org', 'R One', 'x', FALSE, '2026-11-01 00:00:00', '2026-11-01 00:00:00'),
       ('rm2@example.org', 'R Two', 'x', FALSE, '2026-11-01 00:00:00', '2026-11-01 00:00:00');
INSERT INTO releases (kind, title, status, revision, release_at, release_lines, created_by,
    approved_by, approved_at, approved_revision, created_at, updated_at)
VALUES ('patch-tuesday', 'Security release 1.9.5', 'approved', 2, '2027-01-12 16:00:00',
    '1.9.5, 1.8.6', 1, 2, '2026-11-03 00:00:00', 1, '2026-11-01 00:00:00', '2026-11-04 00:00:00');
INSERT INTO applications (status, org_name, org_domains, website, security_alias, category,
    product_name, product_url, redistribution, user_base, user_base_size, track_record,
    community_links, contributor_handles, rep_name, rep_email, rep_chat, days_to_fix,
    policy_version, attests_stage_privately, attests_contribute_back, status_token_hash,
    created_at, updated_at, primary_domain)
VALUES ('in-review', 'Acme', 'acme.example
acme.test', 'https://acme.example', 'security@acme.example', 'distributor', 'P',
    'https://acme.example/p', 'r', 'u', '10', 'https://acme.example/a
https://acme.example/b', '', '', 'Rep', 'rep@acme.example', '', 7, 1, TRUE, TRUE, 'tok',
    '2026-11-01 00:00:00', '2026-11-01 00:00:00', 'acme.example');
INSERT INTO members (org_name, org_domain, security_alias, policy_version, status, joined_at,
    last_reviewed_at, next_review_due, created_at, updated_at)
VALUES ('Acme', 'acme.example', 'security@acme.example', 1, 'active', '2026-11-01 00:00:00',
    '2026-11-01 00:00:00', '2027-11-01 00:00:00', '2026-11-01 00:00:00', '2026-11-01 00:00:00');
INSERT INTO audit_log (seq, occurred_at, actor, action, subject, details, prev_hash, hash)
VALUES (1, '2026-11-02 00:00:00', 'rm1@example.org', 'release.patch-added', 'release:1',
        '{"patch":1,"revision":1}', 'x', 'h1'),
       (2, '2026-11-03 00:00:00', 'rm2@example.org', 'release.approved', 'release:1',
        '{"revision":1}', 'x', 'h2'),
       (3, '2026-11-04 00:00:00', 'rm2@example.org', 'release.advisory-added', 'release:1',
        '{"cve":"CVE-2026-1111","revision":2}', 'x', 'h3');
INSERT INTO outbox (template, recipient, subject, body_text, body_html, dedupe_key, status,
    attempts, next_attempt_at, last_error, message_id, created_at, updated_at, release_id,
    member_id, attachments)
VALUES ('embargoed_release', 'security@acme.example', 's', 't', 'h', 'release:1:rev:1:member:1',
        'sent', 1, '2026-11-03 00:00:00', NULL, '<m1@x>', '2026-11-03 00:00:00',
        '2026-11-03 00:00:00', 1, 1, '1,2'),
       ('embargoed_release', 'security@acme.example', 's', 't', 'h', 'release:1:rev:2:member:1',
        'failed', 1, '2026-11-03 00:00:00', 'not sent: the release was cancelled', '<m2@x>',
        '2026-11-03 00:00:00', '2026-11-03 00:00:00', 1, 1, '2'),
       ('release_postponed', 'security@acme.example', 's', 't', 'h',
        'release:1:postponed:2:member:1', 'failed', 3, '2026-11-03 00:00:00', '550 no', '<m3@x>',
        '2026-11-03 00:00:00', '2026-11-03 00:00:00', 1, 1, '');
"#;

/// A patch as an earlier version stored it: readable, the project's own.
const READABLE: &str = "diff --git a/pkg/ca/ttl.go b/pkg/ca/ttl.go
--- a/pkg/ca/ttl.go
+++ b/pkg/ca/ttl.go
@@ -1,2 +1,3 @@
 package ca
+const maxTTL = 90 * 24 * time.Hour // cap certificate lifetimes
 var x = 1
";

fn patches(backend: Backend) -> String {
    let readable = hex::encode(READABLE);
    match backend {
        Backend::Sqlite => format!(
            "INSERT INTO patches (release_id, filename, content, sha256, release_line, \
             is_security_fix, uploaded_by, created_at, upstream_signals) VALUES \
             (1, 'a.patch', X'00', 'abc', '1.9.5', TRUE, 1, '2026-11-02 00:00:00', 'one sign\ntwo sign'), \
             (1, 'b.patch', X'00', 'abd', '1.9.5', TRUE, 1, '2026-11-02 00:00:00', ''), \
             (1, 'c.patch', X'{readable}', 'abe', '1.9.5', TRUE, 1, '2026-11-02 00:00:00', '');"
        ),
        Backend::Postgres => format!(
            "INSERT INTO patches (release_id, filename, content, sha256, release_line, \
             is_security_fix, uploaded_by, created_at, upstream_signals) VALUES \
             (1, 'a.patch', '\\x00', 'abc', '1.9.5', TRUE, 1, '2026-11-02 00:00:00', E'one sign\\ntwo sign'), \
             (1, 'b.patch', '\\x00', 'abd', '1.9.5', TRUE, 1, '2026-11-02 00:00:00', ''), \
             (1, 'c.patch', '\\x{readable}', 'abe', '1.9.5', TRUE, 1, '2026-11-02 00:00:00', '');"
        ),
    }
}

/// Runs the migrations that came before [`STATE_IN_COLUMNS`]; returns how many.
fn run_earlier<DB, C>(conn: &mut C, source: &EmbeddedMigrations) -> usize
where
    DB: DieselBackend,
    C: MigrationHarness<DB>,
    EmbeddedMigrations: MigrationSource<DB>,
{
    let earlier: Vec<_> = MigrationSource::<DB>::migrations(source)
        .expect("embedded migrations")
        .into_iter()
        .filter(|m| m.name().version().to_string().as_str() < STATE_IN_COLUMNS)
        .collect();
    // Creates diesel's own bookkeeping table, as a full run would.
    conn.applied_migrations().expect("the migrations table");
    for migration in &earlier {
        conn.run_migration(migration.as_ref())
            .expect("an earlier migration");
    }
    earlier.len()
}

async fn existing_rows_move_into_the_columns_made_for_them(backend: Backend) {
    let Some(test_db) = TestDb::create(backend) else {
        return;
    };
    let settings =
        Settings::from_vars([("EDL_DATABASE_URL", test_db.url.as_str())]).expect("settings");
    assert!(matches!(
        (&settings.database_url, backend),
        (DatabaseUrl::Sqlite(_), Backend::Sqlite) | (DatabaseUrl::Postgres(_), Backend::Postgres)
    ));
    let pool = db::connect(&settings).expect("connect");
    db::run(&pool, move |conn: &mut DbConnection| {
        // The schema as it was before, with rows in it.
        let earlier = match conn {
            DbConnection::Sqlite(c) => run_earlier(c, &db::SQLITE_MIGRATIONS),
            DbConnection::Postgresql(c) => run_earlier(c, &db::POSTGRES_MIGRATIONS),
        };
        assert_eq!(earlier, 4);
        conn.batch_execute(OLD_ROWS)?;
        conn.batch_execute(&patches(backend))?;
        assert!(db::migrate(conn)? >= 1, "the rest of the migrations ran");
        assert!(db::migrations_current(conn)?);
        Ok::<_, db::DbError>(())
    })
    .await
    .expect("migrate with data");

    let (r, revisions, rows, attachments, app) = db::run(&pool, |conn| {
        let r = release::find(conn, 1)?.expect("the release");
        let revisions = release::revisions_of(conn, 1)?;
        let rows = outbox::recent(conn, 10)?;
        let attachments = [
            outbox::attachment_ids(conn, 1)?,
            outbox::attachment_ids(conn, 2)?,
            outbox::attachment_ids(conn, 3)?,
        ];
        let app = application::find(conn, 1)?.expect("the application");
        Ok::<_, db::DbError>((r, revisions, rows, attachments, app))
    })
    .await
    .expect("read back");

    // The release: its lines, its current revision waiting, revision 1 approved by rm2, and
    // who changed what in which revision, from the audit entries that recorded it.
    assert_eq!(r.lines(), ["1.9.5", "1.8.6"]);
    assert_eq!(r.revision, 2);
    assert!(!r.approved_current());
    let summary: Vec<(i32, Option<String>, Vec<String>)> = revisions
        .iter()
        .map(|v| {
            (
                v.revision,
                v.approved_by.clone(),
                v.changes
                    .iter()
                    .map(|c| format!("{} by {}", c.change, c.changed_by))
                    .collect(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            (
                2,
                None,
                vec!["advisory-added by rm2@example.org".to_owned()]
            ),
            (
                1,
                Some("rm2@example.org".to_owned()),
                vec![
                    "planned by rm1@example.org".to_owned(),
                    "patch-added by rm1@example.org".to_owned()
                ]
            ),
        ]
    );

    // The outbox: held back is a status with its reason, a failure stays a failure, the
    // revision is a column, and attachments are rows.
    let by_key = |key: &str| {
        rows.iter()
            .find(|r| r.dedupe_key.as_deref() == Some(key))
            .expect("a row")
            .clone()
    };
    let sent = by_key("release:1:rev:1:member:1");
    assert_eq!((sent.status, sent.revision), (OutboxStatus::Sent, Some(1)));
    let held = by_key("release:1:rev:2:member:1");
    assert_eq!(held.status, OutboxStatus::Held);
    assert_eq!(
        held.held_reason.as_deref(),
        Some("the release was cancelled")
    );
    assert_eq!(held.last_error, None);
    assert_eq!(held.revision, Some(2));
    let failed = by_key("release:1:postponed:2:member:1");
    assert_eq!(failed.status, OutboxStatus::Failed);
    assert_eq!(failed.last_error.as_deref(), Some("550 no"));
    assert_eq!(failed.revision, Some(2));
    assert_eq!(attachments, [vec![1, 2], vec![2], vec![]]);

    // The application's lists.
    let domains: Vec<&str> = app.domains().iter().map(|d| d.as_str()).collect();
    assert_eq!(domains, ["acme.example", "acme.test"]);
    assert_eq!(
        app.track_record.0,
        ["https://acme.example/a", "https://acme.example/b"]
    );
    assert!(app.community_links.is_empty());
    let signals = db::run(&pool, |conn| release::patches_of(conn, 1))
        .await
        .expect("patches");
    assert_eq!(signals[0].upstream_signals.0, ["one sign", "two sign"]);
    assert!(signals[1].upstream_signals.is_empty());

    // Started on the upgraded database, the service checks the stored patches again: these
    // two hold a NUL byte, which no upload may today, so they block their open release.
    drop(pool);
    let pool = edl::startup::prepare_database(&settings)
        .await
        .expect("prepare");
    edl::startup::bring_derived_facts_up_to_date(&pool)
        .await
        .expect("derived facts");
    let patches = db::run(&pool, |conn| release::patches_of(conn, 1))
        .await
        .expect("patches");
    assert!(patches[0].blocks() && patches[1].blocks());
    assert!(
        patches[1].upstream_signals.0[0]
            .starts_with("This upload would be refused today: the file contains NUL bytes"),
        "{:?}",
        patches[1].upstream_signals
    );
    // The readable one is not flagged, and the approver sees its files.
    assert!(!patches[2].blocks());
    let evidence = db::run(&pool, |conn| release::evidence_of(conn, 1))
        .await
        .expect("evidence");
    let files: Vec<(String, u32, u32)> = evidence[2]
        .files
        .iter()
        .map(|f| (f.path.clone(), f.added, f.removed))
        .collect();
    assert_eq!(files, [("pkg/ca/ttl.go".to_owned(), 1, 0)]);
    assert!(
        evidence[0].files.is_empty(),
        "an unreadable patch has no files"
    );
}
