//! The database layer: one set of typed functions over two backends.
//!
//! SQLite (the embedded default: a file in the data folder, WAL) or PostgreSQL (several servers
//! sharing work), chosen by the URL's scheme. Queries are runtime `query_as` with `$N`
//! placeholders, written once in SQL both backends accept; [`with_pool!`] type-checks each body
//! against both drivers. Each backend has its own migrations folder.

use std::{path::Path, str::FromStr, time::Duration};

use anyhow::Context;
use sqlx::{
    PgPool, SqlitePool,
    postgres::{PgConnectOptions, PgPoolOptions},
    sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous},
};

pub mod access;
pub mod accounts;
pub mod audit;
pub mod buyer_mail;
pub mod changes;
pub mod dashboard;
pub mod documents;
pub mod imports;
pub mod key_check;
pub mod lease;
pub mod mail;
pub mod notify;
pub mod order_list;
pub mod orders;
pub mod outbox;
pub mod pacing;
pub mod password_reset;
pub mod reseal;
pub mod rules;
pub mod sessions;
pub mod shipping;
pub mod signin;
pub mod stock;
pub mod stores;
pub mod support;
pub mod tags;

static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("migrations/sqlite");
static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("migrations/postgres");

/// A connection pool on one of the two backends. Cheap to clone.
/// How long a SQLite statement waits for the write lock.
const SQLITE_BUSY_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Clone, Debug)]
pub enum Db {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// Runs `$body` with `$pool` bound to the concrete pool, so one query text serves both backends.
#[macro_export]
macro_rules! with_pool {
    ($db:expr, |$pool:ident| $body:expr) => {
        match $db {
            $crate::db::Db::Sqlite($pool) => $body,
            $crate::db::Db::Postgres($pool) => $body,
        }
    };
}
pub use with_pool;

/// A transaction that reads and then writes. On SQLite it takes the write lock at `BEGIN
/// IMMEDIATE`: a deferred transaction whose first write comes after another connection's
/// commit fails at once with `SQLITE_BUSY_SNAPSHOT` (code 517), which no busy timeout waits out
/// (seen: a user added while a job wrote). PostgreSQL's plain `BEGIN` needs nothing more.
pub(crate) trait BeginWrite {
    type Database: sqlx::Database;
    async fn begin_write(&self) -> sqlx::Result<sqlx::Transaction<'static, Self::Database>>;
}

impl BeginWrite for sqlx::SqlitePool {
    type Database = sqlx::Sqlite;
    async fn begin_write(&self) -> sqlx::Result<sqlx::Transaction<'static, sqlx::Sqlite>> {
        self.begin_with("BEGIN IMMEDIATE").await
    }
}

impl BeginWrite for sqlx::PgPool {
    type Database = sqlx::Postgres;
    async fn begin_write(&self) -> sqlx::Result<sqlx::Transaction<'static, sqlx::Postgres>> {
        self.begin().await
    }
}

impl Db {
    /// Connects to `url`, or to `<data dir>/orderdesk.db` when no URL is given.
    pub async fn connect(url: Option<&str>, data_dir: &Path) -> anyhow::Result<Db> {
        match url {
            Some(u) if u.starts_with("postgres://") || u.starts_with("postgresql://") => {
                // A transaction left open by a cancelled caller would hold its row locks for
                // ever; the server ends such a session instead (ours last milliseconds).
                let options = PgConnectOptions::from_str(u)
                    .context("parsing the PostgreSQL URL")?
                    .options([("idle_in_transaction_session_timeout", "30s")]);
                let pool = PgPoolOptions::new()
                    .max_connections(16)
                    .acquire_timeout(Duration::from_secs(10))
                    .connect_with(options)
                    .await
                    .context("connecting to PostgreSQL")?;
                Ok(Db::Postgres(pool))
            }
            Some(u) if u.starts_with("sqlite:") => {
                let options = SqliteConnectOptions::from_str(u).context("parsing the SQLite URL")?;
                Db::open_sqlite(options).await
            }
            Some(_) => anyhow::bail!("DATABASE_URL must start with postgres://, postgresql:// or sqlite:"),
            None => {
                std::fs::create_dir_all(data_dir)
                    .with_context(|| format!("creating data folder {}", data_dir.display()))?;
                Db::open_sqlite(SqliteConnectOptions::new().filename(data_dir.join("orderdesk.db"))).await
            }
        }
    }

    async fn open_sqlite(options: SqliteConnectOptions) -> anyhow::Result<Db> {
        let options = options
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(SQLITE_BUSY_TIMEOUT)
            // Rows travel from the connection's thread in a bounded channel; with the default
            // of 50 a list page (51 rows: one more tells whether there is a next page) makes the
            // thread wait for the page's task to take rows, and wakes it again, on every page.
            .row_buffer_size(256);
        let pool = SqlitePoolOptions::new()
            .max_connections(8)
            // A connection to a file in this process cannot drop away under us; the pool's
            // ping before lending one out was a round trip to its thread for every query.
            .test_before_acquire(false)
            .after_release(|conn, _| Box::pin(release_clean(conn)))
            .after_connect({
                let file = options.get_filename().to_path_buf();
                move |_, _| {
                    let file = file.clone();
                    Box::pin(async move { refuse_read_only(&file) })
                }
            })
            .connect_with(options)
            .await
            .context("opening the SQLite database")?;
        Ok(Db::Sqlite(pool))
    }

    /// Applies this backend's migrations (the app's tables and the session table).
    pub async fn migrate(&self) -> anyhow::Result<()> {
        match self {
            Db::Sqlite(pool) => migrate_sqlite(pool).await?,
            Db::Postgres(pool) => POSTGRES_MIGRATIONS.run(pool).await.context("migrating PostgreSQL")?,
        }
        sessions::SessionBackend::new(self).migrate().await
    }

    /// How many rows of `params_per_row` bound values one statement should carry. SQLite finds
    /// each `$N` by a linear scan of the statement's parameters, so a statement's cost grows with
    /// the square of their number: keep them small there (the database is in-process, so more
    /// statements cost little). PostgreSQL gains from fewer round trips.
    pub fn rows_per_statement(&self, params_per_row: usize) -> usize {
        let budget = match self {
            Db::Sqlite(_) => 100,
            Db::Postgres(_) => 6000,
        };
        (budget / params_per_row.max(1)).clamp(1, 500)
    }

    pub fn is_postgres(&self) -> bool {
        matches!(self, Db::Postgres(_))
    }

    pub fn backend_name(&self) -> &'static str {
        match self {
            Db::Sqlite(_) => "sqlite",
            Db::Postgres(_) => "postgres",
        }
    }

    /// Whether the database takes a write now: one committed write of one row, which must get
    /// the write lock within two seconds (SQLite: `BEGIN IMMEDIATE` under a short busy
    /// timeout; PostgreSQL: a lock and statement timeout). For `/healthz`, which used to read
    /// only and said ok while a full disk refused every write.
    pub async fn write_probe(&self) -> sqlx::Result<()> {
        let now = now();
        match self {
            Db::Sqlite(pool) => {
                use sqlx::{ConnectOptions, Connection};
                // A connection of its own, closed after: the pool's keep their longer timeout,
                // and nothing of the probe can be left on one of them.
                let options = (*pool.connect_options()).clone().busy_timeout(Duration::from_secs(2));
                let mut conn = options.connect().await?;
                let wrote = async {
                    let mut tx = conn.begin_with("BEGIN IMMEDIATE").await?;
                    sqlx::query("update health_probe set probed_at = $1 where id = 1")
                        .bind(now)
                        .execute(&mut *tx)
                        .await?;
                    tx.commit().await
                }
                .await;
                let _ = conn.close().await;
                wrote
            }
            Db::Postgres(pool) => {
                let mut tx = pool.begin().await?;
                sqlx::query("set local lock_timeout = '2s'").execute(&mut *tx).await?;
                sqlx::query("set local statement_timeout = '3s'").execute(&mut *tx).await?;
                sqlx::query("update health_probe set probed_at = $1 where id = 1")
                    .bind(now.to_rfc3339())
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await
            }
        }
    }

    /// The SQLite file's folder, whose free space `/healthz` reports (`None` on PostgreSQL).
    pub fn sqlite_folder(&self) -> Option<std::path::PathBuf> {
        match self {
            Db::Sqlite(pool) => {
                let folder = pool.connect_options().get_filename().parent().map(std::path::Path::to_path_buf);
                Some(folder.filter(|f| !f.as_os_str().is_empty()).unwrap_or_else(|| ".".into()))
            }
            Db::Postgres(_) => None,
        }
    }

    pub async fn close(&self) {
        with_pool!(self, |p| p.close().await)
    }
}

/// Whether a SQLite connection going back to the pool is out of every transaction; one that is
/// not is closed (SQLite then rolls back and lets go of its locks).
///
/// A write that fails with SQLITE_FULL or SQLITE_IOERR can make SQLite roll the transaction
/// back by itself: sqlx then still counts it open, its own ROLLBACK fails, and the count stays
/// one too high on that connection. Its next transaction begins with a SAVEPOINT (which opens
/// a real transaction) and, if that one fails too, is rolled back only to the savepoint: the
/// transaction stays open with SQLite's WAL write lock, and every later write of every
/// connection answers `database is locked` until a restart (issue 27, seen after a full disk).
/// A committed transaction leaves the count at zero, so the common path costs nothing; after
/// a failure (a rollback queued by the dropped transaction) one ROLLBACK makes sure.
async fn release_clean(conn: &mut sqlx::SqliteConnection) -> sqlx::Result<bool> {
    use sqlx::{TransactionManager, sqlite::SqliteTransactionManager};
    if SqliteTransactionManager::get_transaction_depth(conn) == 0 {
        return Ok(true);
    }
    // Runs after the rollback the dropped transaction queued; fails harmlessly when there is
    // nothing left to roll back.
    let _ = sqlx::query("rollback").execute(&mut *conn).await;
    let clean = SqliteTransactionManager::get_transaction_depth(conn) == 0;
    if !clean {
        tracing::warn!("a database connection was out of step with its transactions after a failed write; closed");
    }
    Ok(clean)
}

/// Refuses a new SQLite connection while the database file cannot be written. SQLite opens a
/// file it cannot open for writing read-only instead, and such a connection stays read-only
/// for as long as the pool keeps it: opened during a moment the folder was read-only (a
/// remount, an immutable flag), it would fail every write long after the folder is writable
/// again (seen under load in the reliability suite). Refused, the request of that moment fails
/// as it would anyway, and the next connection is opened once the file can be written.
fn refuse_read_only(file: &Path) -> sqlx::Result<()> {
    if !file.exists() {
        // An in-memory database, or a name SQLite resolves itself.
        return Ok(());
    }
    std::fs::OpenOptions::new().append(true).open(file).map(drop).map_err(sqlx::Error::Io)
}

/// Runs SQLite's migrations with foreign keys off, as SQLite's table-rebuild procedure needs (a
/// `drop table` of a parent would otherwise cascade into its children). The pragma is a no-op
/// inside a transaction and sqlx runs each migration in one, so it is set on the connection
/// around the migrator; the foreign keys are checked before they are turned back on, when a
/// migration ran (the check reads every row: over a second at a million orders, on every start).
async fn migrate_sqlite(pool: &SqlitePool) -> anyhow::Result<()> {
    let mut conn = pool.acquire().await.context("migrating SQLite")?;
    let before = applied_migrations(&mut conn).await?;
    sqlx::query("pragma foreign_keys = off").execute(&mut *conn).await?;
    let migrated = SQLITE_MIGRATIONS.run(&mut *conn).await.context("migrating SQLite");
    let broken: anyhow::Result<Vec<(String,)>> = async {
        if migrated.is_ok() && applied_migrations(&mut conn).await? == before {
            return Ok(Vec::new());
        }
        Ok(sqlx::query_as("select \"table\" from pragma_foreign_key_check").fetch_all(&mut *conn).await?)
    }
    .await;
    sqlx::query("pragma foreign_keys = on").execute(&mut *conn).await?;
    migrated?;
    let broken = broken?;
    anyhow::ensure!(broken.is_empty(), "migrating SQLite left rows without their parent in {broken:?}");
    Ok(())
}

/// Migrations recorded as applied (0 before the first).
async fn applied_migrations(conn: &mut sqlx::SqliteConnection) -> sqlx::Result<i64> {
    let (table,): (i64,) =
        sqlx::query_as("select count(*) from sqlite_master where type = 'table' and name = '_sqlx_migrations'")
            .fetch_one(&mut *conn)
            .await?;
    if table == 0 {
        return Ok(0);
    }
    let (n,): (i64,) = sqlx::query_as("select count(*) from _sqlx_migrations").fetch_one(&mut *conn).await?;
    Ok(n)
}

/// True when the error is a unique-constraint violation (turned into a form error by callers).
/// The database could not be reached (down, refusing connections, the pool gave up waiting)
/// rather than refusing a statement.
pub fn is_unreachable(err: &sqlx::Error) -> bool {
    matches!(err, sqlx::Error::Io(_) | sqlx::Error::Tls(_) | sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed)
}

pub fn is_unique_violation(err: &sqlx::Error) -> bool {
    matches!(err, sqlx::Error::Database(e) if e.is_unique_violation())
}

/// The current time, truncated to microseconds so that it round-trips through both backends.
pub fn now() -> chrono::DateTime<chrono::Utc> {
    use chrono::{SubsecRound, Utc};
    Utc::now().trunc_subsecs(6)
}

/// A write that can collide with a unique constraint.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    /// A row with the same unique key exists already.
    #[error("duplicate")]
    Duplicate,
    #[error(transparent)]
    Db(#[from] sqlx::Error),
}

impl WriteError {
    pub fn classify(err: sqlx::Error) -> WriteError {
        if is_unique_violation(&err) { WriteError::Duplicate } else { WriteError::Db(err) }
    }
}

/// A list of IDs bound as one text value: any number of them in one statement, with no
/// statement growing with the list (see [`in_ids`] and [`ids_rows`]). PostgreSQL reads it as an
/// array literal, SQLite as a JSON array.
pub fn ids_value(postgres: bool, ids: impl IntoIterator<Item = i64>) -> String {
    let mut out = String::from(if postgres { "{" } else { "[" });
    for (i, id) in ids.into_iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(&id.to_string());
    }
    out.push(if postgres { '}' } else { ']' });
    out
}

/// `<column>` is one of the IDs bound at `$n` as [`ids_value`].
pub fn in_ids(postgres: bool, column: &str, n: usize) -> String {
    if postgres {
        // Not `= any(…)`: a plan that scans the table tests each row against the whole array.
        format!("{column} in (select unnest(${n}::bigint[]))")
    } else {
        format!("{column} in (select value from json_each(${n}))")
    }
}

/// The IDs bound at `$n` as [`ids_value`], as rows of one column (`select {ids_rows}` … ).
pub fn ids_rows(postgres: bool, n: usize) -> String {
    if postgres { format!("unnest(${n}::bigint[])") } else { format!("value from json_each(${n})") }
}

/// `$first, $first+1, …` for `n` bound values (an `in (…)` list).
pub fn placeholders(first: usize, n: usize) -> String {
    (first..first + n).map(|i| format!("${i}")).collect::<Vec<_>>().join(", ")
}

/// The `and <column> in (…)` condition that limits a query to an
/// [`OrderScope`](crate::domain::scope::OrderScope)'s stores, with its placeholders numbered from
/// `first`; empty for the whole account. Bind the scope's stores after the query's other values.
/// A scope of no stores matches nothing.
pub fn scope_condition(scope: &crate::domain::scope::OrderScope, column: &str, first: usize) -> String {
    match &scope.stores {
        None => String::new(),
        Some(stores) if stores.is_empty() => " and 1 = 0".to_string(),
        Some(stores) => format!(" and {column} in ({})", placeholders(first, stores.len())),
    }
}

/// Rows bound as one JSON text value (an array of arrays, [`json_rows_value`]), read as a table
/// `v` with these columns (name, SQL type): one statement for any number of rows, whose text
/// never changes with their number, so PostgreSQL parses and plans it once per connection.
pub fn json_rows(postgres: bool, n: usize, columns: &[(&str, &str)]) -> String {
    let cols: Vec<String> = columns
        .iter()
        .enumerate()
        .map(|(i, (name, ty))| {
            if postgres {
                format!("(r ->> {i})::{ty} as {name}")
            } else {
                format!("json_extract(value, '$[{i}]') as {name}")
            }
        })
        .collect();
    if postgres {
        format!("(select {} from json_array_elements(${n}::json) as r) as v", cols.join(", "))
    } else {
        format!("(select {} from json_each(${n})) as v", cols.join(", "))
    }
}

/// The rows of [`json_rows`], as its bound value.
pub fn json_rows_value(rows: impl IntoIterator<Item = serde_json::Value>) -> String {
    serde_json::Value::Array(rows.into_iter().collect()).to_string()
}
