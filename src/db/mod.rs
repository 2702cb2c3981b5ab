//! Storage: one diesel code path over PostgreSQL (production) and SQLite (the embedded default).
//! The backend comes from the URL scheme; the pool sets SQLite's pragmas on every connection;
//! migrations for both trees are embedded in the binary and run at start and by `edl migrate`.

pub mod schema;
pub mod search;

use std::time::Duration;

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::r2d2::{self, ManageConnection, Pool, PooledConnection};
use diesel_migrations::{embed_migrations, EmbeddedMigrations, MigrationHarness};

use crate::config::{DatabaseUrl, Settings};

pub const POSTGRES_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/postgres");
pub const SQLITE_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/sqlite");

/// A connection to either backend; queries written once run on both.
#[derive(diesel::MultiConnection)]
pub enum DbConnection {
    Postgresql(diesel::PgConnection),
    Sqlite(diesel::SqliteConnection),
}

/// A statement kept prepared on its connection, keyed by its exact SQL text and bind types.
///
/// diesel keeps none of its inserts or raw queries prepared: an insert may render `DEFAULT`
/// for a missing value, so one Rust type can stand for several texts. A hot insert was
/// therefore parsed and planned on every call. Keyed by its text, each shape of a statement is
/// a prepared statement of its own, which is always correct; what it costs is one prepared
/// statement per shape per connection. So keep only statements with few shapes (not an
/// insert of any number of rows), and not a query whose best plan depends on its values (see
/// `membership::open_on_domains`).
///
/// On a concrete connection, read the statement's result (`load`, `get_result`, with
/// `RETURNING` for an insert) rather than `execute` it: diesel executes by reference, and a
/// reference does not pass on that the statement may be kept. Through [`DbConnection`] both
/// work.
pub struct KeptPrepared<Q> {
    query: Q,
    keep: bool,
}

/// Keeps `query` prepared ([`KeptPrepared`]).
pub fn kept_prepared<Q>(query: Q) -> KeptPrepared<Q> {
    KeptPrepared { query, keep: true }
}

/// Keeps `query` prepared ([`KeptPrepared`]) if `keep`, else leaves it to diesel: for a
/// multi-row insert, kept only at the few row counts that recur.
pub fn kept_prepared_if<Q>(keep: bool, query: Q) -> KeptPrepared<Q> {
    KeptPrepared { query, keep }
}

impl<Q, DB> diesel::query_builder::QueryFragment<DB> for KeptPrepared<Q>
where
    DB: diesel::backend::Backend,
    Q: diesel::query_builder::QueryFragment<DB>,
{
    fn walk_ast<'b>(&'b self, pass: diesel::query_builder::AstPass<'_, 'b, DB>) -> QueryResult<()> {
        self.query.walk_ast(pass)
    }

    fn is_safe_to_cache_prepared(&self, backend: &DB) -> QueryResult<bool> {
        if self.keep {
            Ok(true)
        } else {
            self.query.is_safe_to_cache_prepared(backend)
        }
    }
}

impl<Q> diesel::query_builder::QueryId for KeptPrepared<Q> {
    type QueryId = ();
    // No id of its type: the cache then keys the statement by its SQL text.
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl<Q: diesel::query_builder::Query> diesel::query_builder::Query for KeptPrepared<Q> {
    type SqlType = Q::SqlType;
}

impl<Q, Conn> RunQueryDsl<Conn> for KeptPrepared<Q> {}

/// The connection pool, with turns to take a connection handed out in the order they are
/// asked for. r2d2's own wait lets a newcomer take a connection that has just been returned
/// ahead of those already waiting, so under load a few requests waited many times longer
/// than the rest; the turns are a first-come first-served semaphore of as many permits as
/// connections, waited for without holding a thread. Cheap to clone.
#[derive(Clone)]
pub struct DbPool {
    connections: Pool<ConnectionManager>,
    turns: std::sync::Arc<tokio::sync::Semaphore>,
}

pub type PooledDb = PooledConnection<ConnectionManager>;

impl DbPool {
    /// A connection within `timeout`, outside the turns: for a probe, which must answer
    /// quickly and may say the pool is exhausted. Everything else goes through [`run`].
    pub fn get_timeout(&self, timeout: Duration) -> Result<PooledDb, r2d2::PoolError> {
        self.connections.get_timeout(timeout)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("cannot connect to the {backend} database at {url}: {reason}")]
    Connect {
        backend: &'static str,
        url: String,
        reason: String,
    },
    #[error("database migrations failed: {0}")]
    Migration(String),
    #[error("no database connection available: {0}")]
    Pool(#[from] r2d2::PoolError),
    #[error(transparent)]
    Query(#[from] diesel::result::Error),
    #[error("the database task stopped unexpectedly: {0}")]
    Task(String),
}

/// Opens connections of the backend the URL names: no guessing between backends.
#[derive(Debug, Clone)]
pub struct ConnectionManager {
    url: DatabaseUrl,
}

/// Pragmas every SQLite connection needs: concurrent readers with one writer (WAL), waiting
/// for the writer lock instead of failing at once, and enforced foreign keys.
/// The busy timeout comes first, so that switching to WAL waits for another connection instead
/// of failing. A commit copies the write-ahead log back into the database (a checkpoint, with
/// its flush to disk) only once the log has grown past 16,000 pages (64 MiB): the long-lived
/// processes checkpoint in the background ([`checkpoint`]) long before, so a checkpoint never
/// runs inside a request's transaction while every other writer waits for it; short commands
/// checkpoint when they close the database.
const SQLITE_PRAGMAS: &str = "PRAGMA busy_timeout = 5000; PRAGMA journal_mode = WAL; \
     PRAGMA foreign_keys = ON; PRAGMA synchronous = NORMAL; PRAGMA wal_autocheckpoint = 16000;";

/// How often the long-lived processes checkpoint SQLite's write-ahead log.
pub const CHECKPOINT_INTERVAL: Duration = Duration::from_millis(250);

/// Copies what SQLite's write-ahead log holds back into the database, without waiting for
/// readers or taking the writers' turn (a passive checkpoint): writes go on meanwhile. Nothing
/// to do on PostgreSQL.
pub fn checkpoint(conn: &mut DbConnection) -> Result<(), DbError> {
    if let DbConnection::Sqlite(sq) = conn {
        sq.batch_execute("PRAGMA wal_checkpoint(PASSIVE)")?;
    }
    Ok(())
}

impl ConnectionManager {
    pub fn new(url: DatabaseUrl) -> Self {
        Self { url }
    }

    fn establish(&self) -> Result<DbConnection, DbError> {
        let connect_error = |reason: String| DbError::Connect {
            backend: self.url.backend_name(),
            url: self.url.masked(),
            reason: reason.split_whitespace().collect::<Vec<_>>().join(" "),
        };
        match &self.url {
            DatabaseUrl::Postgres(url) => diesel::PgConnection::establish(url.expose())
                .map(DbConnection::Postgresql)
                .map_err(|e| connect_error(e.to_string())),
            DatabaseUrl::Sqlite(path) => {
                if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
                    std::fs::create_dir_all(parent).map_err(|e| connect_error(e.to_string()))?;
                }
                let path = path
                    .to_str()
                    .ok_or_else(|| connect_error("the path is not UTF-8".into()))?;
                let mut conn = diesel::SqliteConnection::establish(path)
                    .map_err(|e| connect_error(e.to_string()))?;
                conn.batch_execute(SQLITE_PRAGMAS)
                    .map_err(|e| connect_error(e.to_string()))?;
                Ok(DbConnection::Sqlite(conn))
            }
        }
    }
}

impl ManageConnection for ConnectionManager {
    type Connection = DbConnection;
    type Error = DbError;

    fn connect(&self) -> Result<DbConnection, DbError> {
        self.establish()
    }

    fn is_valid(&self, conn: &mut DbConnection) -> Result<(), DbError> {
        conn.batch_execute("SELECT 1").map_err(DbError::from)
    }

    fn has_broken(&self, _conn: &mut DbConnection) -> bool {
        false
    }
}

/// Builds the pool and checks that the database answers, so a bad URL stops start-up with one
/// clear line rather than failing on the first request.
pub fn connect(settings: &Settings) -> Result<DbPool, DbError> {
    let manager = ConnectionManager::new(settings.database_url.clone());
    // One connection first: its error says what is wrong, where the pool's would only time out.
    let first = manager.establish()?;
    drop(first);
    let connections = Pool::builder()
        .max_size(settings.database_pool_size)
        .connection_timeout(Duration::from_secs(10))
        .build(manager)?;
    Ok(DbPool {
        turns: std::sync::Arc::new(tokio::sync::Semaphore::new(
            settings.database_pool_size as usize,
        )),
        connections,
    })
}

/// Applies every pending migration of the connection's backend; returns how many ran.
pub fn migrate(conn: &mut DbConnection) -> Result<usize, DbError> {
    let result = match conn {
        DbConnection::Postgresql(c) => c
            .run_pending_migrations(POSTGRES_MIGRATIONS)
            .map(|v| v.len()),
        DbConnection::Sqlite(c) => c.run_pending_migrations(SQLITE_MIGRATIONS).map(|v| v.len()),
    };
    result.map_err(|e| DbError::Migration(e.to_string()))
}

/// Whether the database schema is at the version this binary expects.
pub fn migrations_current(conn: &mut DbConnection) -> Result<bool, DbError> {
    let pending = match conn {
        DbConnection::Postgresql(c) => c.has_pending_migration(POSTGRES_MIGRATIONS),
        DbConnection::Sqlite(c) => c.has_pending_migration(SQLITE_MIGRATIONS),
    };
    pending
        .map(|p| !p)
        .map_err(|e| DbError::Migration(e.to_string()))
}

/// Runs blocking diesel work on the blocking thread pool, so async workers never wait on I/O.
pub async fn run<T, E, F>(pool: &DbPool, work: F) -> Result<T, E>
where
    T: Send + 'static,
    E: From<DbError> + Send + 'static,
    F: FnOnce(&mut DbConnection) -> Result<T, E> + Send + 'static,
{
    // The semaphore is never closed; its error cannot happen.
    let turn = pool
        .turns
        .clone()
        .acquire_owned()
        .await
        .map_err(|e| DbError::Task(e.to_string()))?;
    let connections = pool.connections.clone();
    tokio::task::spawn_blocking(move || {
        let _turn = turn;
        let mut conn = connections.get().map_err(DbError::from)?;
        work(&mut conn)
    })
    .await
    .map_err(|e| DbError::Task(e.to_string()))?
}

/// The current time as stored: UTC without a zone, to the microsecond both backends keep.
pub fn now() -> chrono::NaiveDateTime {
    use chrono::Timelike;
    let now = chrono::Utc::now().naive_utc();
    now.with_nanosecond(now.nanosecond() / 1_000 * 1_000)
        .unwrap_or(now)
}

/// [`migrate`], serialised across processes on PostgreSQL with an advisory lock.
pub fn migrate_locked(conn: &mut DbConnection) -> Result<usize, DbError> {
    // An arbitrary constant that names "edl schema migrations" for pg_advisory_lock.
    const LOCK_KEY: i64 = 0x0ed1_0001;
    match conn {
        DbConnection::Postgresql(pg) => {
            diesel::sql_query(format!("SELECT pg_advisory_lock({LOCK_KEY})")).execute(pg)?;
            let result = migrate(conn);
            if let DbConnection::Postgresql(pg) = conn {
                diesel::sql_query(format!("SELECT pg_advisory_unlock({LOCK_KEY})")).execute(pg)?;
            }
            result
        }
        DbConnection::Sqlite(_) => migrate(conn),
    }
}

/// SQLite lets one connection write at a time, and a connection that finds the write lock
/// taken sleeps and tries again in steps of up to 100 ms until the busy timeout. Under load that
/// made a write wait many times longer than the one before it took, and give up after the
/// timeout with an error. Write transactions of this process take their turn here instead;
/// SQLite's own wait is left to settle with other processes.
///
/// The lock is fair: it goes to the writers in the order they asked. With an ordinary mutex, a
/// writer that had just finished could take it again ahead of those waiting, and a few waited
/// many turns.
static SQLITE_WRITERS: parking_lot::FairMutex<()> = parking_lot::const_fair_mutex(());

/// This process's turn to open a write transaction on SQLite (see [`SQLITE_WRITERS`]), held
/// until the transaction ends. Not re-entrant: never ask for it while holding it.
pub fn sqlite_write_turn() -> parking_lot::FairMutexGuard<'static, ()> {
    SQLITE_WRITERS.lock()
}

/// A transaction for work that writes. On SQLite it waits for this process's turn to write
/// ([`sqlite_write_turn`]) and takes the write lock at `BEGIN IMMEDIATE`, so a transaction that
/// reads and then writes cannot fail half-way on a lock upgrade; on PostgreSQL it is an
/// ordinary transaction. Nested `transaction` calls inside become savepoints on both.
pub fn write_transaction<T, E, F>(conn: &mut DbConnection, work: F) -> Result<T, E>
where
    F: FnOnce(&mut DbConnection) -> Result<T, E>,
    E: From<diesel::result::Error>,
{
    use diesel::connection::{AnsiTransactionManager, TransactionManager};
    if let DbConnection::Postgresql(_) = conn {
        return conn.transaction(work);
    }
    let _turn = sqlite_write_turn();
    if let DbConnection::Sqlite(sq) = conn {
        AnsiTransactionManager::begin_transaction_sql(sq, "BEGIN IMMEDIATE")?;
    }
    // The work runs on the enum: queries are written once, against DbConnection.
    let result = work(conn);
    let DbConnection::Sqlite(sq) = conn else {
        return Err(diesel::result::Error::BrokenTransactionManager.into());
    };
    match result {
        Ok(value) => {
            AnsiTransactionManager::commit_transaction(sq)?;
            Ok(value)
        }
        Err(error) => {
            if let Err(rollback) = AnsiTransactionManager::rollback_transaction(sq) {
                tracing::error!(%rollback, "Rolling back an SQLite transaction failed.");
            }
            Err(error)
        }
    }
}

/// Serialises transactions that read then write the same thing (a counter, "is this the last
/// admin?") on PostgreSQL, whose default isolation would let two of them interleave. SQLite
/// needs nothing: a write transaction there already holds the only write lock.
pub fn lock_for_transaction(conn: &mut DbConnection, name: &str) -> Result<(), DbError> {
    if let DbConnection::Postgresql(pg) = conn {
        use diesel::sql_types::Text;
        diesel::sql_query("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))")
            .bind::<Text, _>(name)
            .execute(pg)?;
    }
    Ok(())
}
