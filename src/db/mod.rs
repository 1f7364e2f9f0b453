//! Storage: one diesel code path over PostgreSQL and SQLite, an r2d2 pool, the
//! embedded migrations, and the one helper that runs blocking work off the
//! async workers.

pub mod notify;
pub mod schema;
mod url;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::r2d2::{ConnectionManager, CustomizeConnection, Pool, PooledConnection};
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};

pub use url::DatabaseUrl;

/// A connection to either backend. SQLite goes last (see STYLE.md).
#[derive(diesel::MultiConnection)]
pub enum DbConnection {
    Postgres(diesel::PgConnection),
    Sqlite(diesel::SqliteConnection),
}

/// The pool type used everywhere.
pub type DbPool = Pool<ConnectionManager<DbConnection>>;
/// A connection checked out of the pool.
pub type PooledConn = PooledConnection<ConnectionManager<DbConnection>>;

const PG_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/postgres");
const SQLITE_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/sqlite");

/// Storage failures as the rest of the program sees them.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// The database cannot be reached (pool timeout, lost connection).
    #[error("database unavailable")]
    Unavailable,
    /// A unique constraint was violated.
    #[error("unique violation")]
    Conflict,
    /// Any other failure; the cause is for the logs only.
    #[error("database error: {0}")]
    Other(String),
}

impl From<DieselError> for DbError {
    fn from(e: DieselError) -> Self {
        match e {
            DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, _) => Self::Conflict,
            DieselError::DatabaseError(DatabaseErrorKind::ClosedConnection, _)
            | DieselError::DatabaseError(DatabaseErrorKind::UnableToSendCommand, _)
            | DieselError::BrokenTransactionManager => Self::Unavailable,
            DieselError::DatabaseError(_, info)
                if info.message().contains("database is locked") =>
            {
                Self::Unavailable
            }
            other => Self::Other(other.to_string()),
        }
    }
}

/// Tunes each new SQLite connection: WAL so readers never wait for the
/// writer, and a busy timeout so writers queue instead of failing.
#[derive(Debug)]
struct SqlitePragmas;

impl CustomizeConnection<DbConnection, diesel::r2d2::Error> for SqlitePragmas {
    fn on_acquire(&self, conn: &mut DbConnection) -> Result<(), diesel::r2d2::Error> {
        if let DbConnection::Sqlite(c) = conn {
            c.batch_execute(
                "PRAGMA journal_mode = WAL; PRAGMA busy_timeout = 5000; \
                 PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON; \
                 PRAGMA cache_size = -1024;",
            )
            .map_err(diesel::r2d2::Error::QueryError)?;
        }
        Ok(())
    }
}

/// Initialises the OpenSSL that libpq speaks TLS with, before libpq does,
/// so that it registers no `atexit` clean-up: otherwise `exit` frees
/// OpenSSL's global state while a pool thread may still be in a TLS
/// handshake (`min_idle` refills in the background), and the process
/// segfaults on its way out. `openssl_sys::init` asks for
/// `OPENSSL_INIT_NO_ATEXIT`; the first initialisation decides. Idempotent.
fn init_openssl() {
    openssl_sys::init();
}

/// The shared handle to the database.
#[derive(Clone)]
pub struct Db {
    pool: DbPool,
    /// When a connection was last checked out (ms after `.0`): how long the
    /// database has been out of reach, for serving stale records.
    reached: Arc<(Instant, AtomicU64)>,
}

/// How long a caller waits for a Postgres connection before the database
/// counts as unavailable: requests that need it answer 503 within 1 s.
const PG_CHECKOUT: Duration = Duration::from_millis(800);
/// SQLite is a local file: waiting longer only ever means a busy writer.
const SQLITE_CHECKOUT: Duration = Duration::from_secs(2);

impl Db {
    /// Builds the pool without connecting yet, so a server can start (and
    /// report not-ready) while the database is down.
    pub fn connect(url: &DatabaseUrl) -> anyhow::Result<Self> {
        let (conn_str, max, checkout) = match url {
            DatabaseUrl::Postgres(u) => {
                init_openssl();
                (with_connect_timeout(u), 16, PG_CHECKOUT)
            }
            DatabaseUrl::Sqlite(path) => {
                if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
                    crate::files::create_private_dir(parent)?;
                }
                (path.to_string_lossy().into_owned(), 4, SQLITE_CHECKOUT)
            }
        };
        let pool = Pool::builder()
            .max_size(max)
            .min_idle(Some(1))
            .connection_timeout(checkout)
            .test_on_check_out(true)
            .connection_customizer(Box::new(SqlitePragmas))
            .build_unchecked(ConnectionManager::new(conn_str));
        Ok(Self {
            pool,
            reached: Arc::new((Instant::now(), AtomicU64::new(0))),
        })
    }

    /// How long ago this process last got a connection.
    pub fn since_reached(&self) -> Duration {
        let (epoch, at) = &*self.reached;
        epoch
            .elapsed()
            .saturating_sub(Duration::from_millis(at.load(Ordering::Relaxed)))
    }

    /// The pool, for gauges.
    pub fn pool(&self) -> &DbPool {
        &self.pool
    }

    /// Checks out a connection on the calling (blocking) thread.
    pub fn get(&self) -> Result<PooledConn, DbError> {
        let conn = self.pool.get().map_err(|_| DbError::Unavailable)?;
        let (epoch, at) = &*self.reached;
        at.store(epoch.elapsed().as_millis() as u64, Ordering::Relaxed);
        Ok(conn)
    }

    /// Runs `f` with a pooled connection on the blocking thread pool. The
    /// connection never crosses an `.await`. A task that panicked or was
    /// cancelled counts as the database being unavailable.
    pub async fn run<T, E, F>(&self, f: F) -> Result<T, E>
    where
        F: FnOnce(&mut DbConnection) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<DbError> + Send + 'static,
    {
        let db = self.clone();
        tokio::task::spawn_blocking(move || {
            let mut conn = db.get()?;
            f(&mut conn)
        })
        .await
        .map_err(|_| E::from(DbError::Unavailable))?
    }

    /// Runs the embedded migrations of this backend.
    pub fn migrate(&self) -> anyhow::Result<()> {
        // At start-up a busy database may take longer than a request's
        // wait to hand out a first connection.
        let mut conn = self
            .pool
            .get_timeout(Duration::from_secs(30))
            .map_err(|_| DbError::Unavailable)?;
        run_migrations(&mut conn)
    }
}

/// `url` with libpq's `connect_timeout` (2 s) unless it sets one: a
/// database that drops packets instead of refusing them must not hold a
/// connection attempt for the kernel's minutes-long TCP timeout.
pub fn with_connect_timeout(url: &str) -> String {
    if url.contains("connect_timeout=") {
        url.to_owned()
    } else if url.contains('?') {
        format!("{url}&connect_timeout=2")
    } else {
        format!("{url}?connect_timeout=2")
    }
}

/// Applies pending migrations on one connection.
pub fn run_migrations(conn: &mut DbConnection) -> anyhow::Result<()> {
    let result = match conn {
        DbConnection::Postgres(c) => c.run_pending_migrations(PG_MIGRATIONS).map(|_| ()),
        DbConnection::Sqlite(c) => c.run_pending_migrations(SQLITE_MIGRATIONS).map(|_| ()),
    };
    result.map_err(|e| anyhow::anyhow!("migration failed: {e}"))
}

/// Runs `f` in a write transaction. On SQLite it takes the write lock up
/// front (`BEGIN IMMEDIATE`) so two writers queue on the busy timeout instead
/// of one failing when it upgrades a read lock.
pub fn write_transaction<T, E>(
    conn: &mut DbConnection,
    f: impl FnOnce(&mut DbConnection) -> Result<T, E>,
) -> Result<T, E>
where
    E: From<DbError>,
{
    if matches!(conn, DbConnection::Sqlite(_)) {
        conn.batch_execute("BEGIN IMMEDIATE")
            .map_err(|e| E::from(e.into()))?;
        return match f(conn) {
            Ok(value) => match conn.batch_execute("COMMIT") {
                Ok(()) => Ok(value),
                Err(e) => {
                    let _ = conn.batch_execute("ROLLBACK");
                    Err(E::from(e.into()))
                }
            },
            Err(e) => {
                let _ = conn.batch_execute("ROLLBACK");
                Err(e)
            }
        };
    }
    let mut outcome = None;
    let result = conn.transaction::<(), DieselError, _>(|c| match f(c) {
        Ok(v) => {
            outcome = Some(Ok(v));
            Ok(())
        }
        Err(e) => {
            outcome = Some(Err(e));
            Err(DieselError::RollbackTransaction)
        }
    });
    match (result, outcome) {
        (Ok(()), Some(r)) | (Err(DieselError::RollbackTransaction), Some(r)) => r,
        (Err(e), _) => Err(E::from(e.into())),
        (Ok(()), None) => Err(E::from(DbError::Other(
            "transaction closure did not run".into(),
        ))),
    }
}

/// Answers whether the database responds (for `/readyz`).
pub fn ping(conn: &mut DbConnection) -> Result<(), DbError> {
    conn.batch_execute("SELECT 1").map_err(DbError::from)
}
