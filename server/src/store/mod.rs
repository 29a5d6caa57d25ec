//! The database: desired state of tenants, users, functions and versions, and the call record.
//! One set of queries serves SQLite and PostgreSQL through sqlx's `Any` driver; both dialects
//! accept `$n` placeholders and `RETURNING`.

use sqlx::any::AnyPoolOptions;
use sqlx::any::AnyRow;
use sqlx::{AnyPool, Row};
use std::str::FromStr;
use std::time::{SystemTime, UNIX_EPOCH};

pub mod audit;
mod call_records;
mod error;
mod functions;
mod invocations;
mod locks;
mod nodes;
mod processes;
mod schedules;
mod tenants;
mod test_events;
mod users;
pub use call_records::{CallEnd, CallStart};
pub use error::{StoreError, Unique};
pub use functions::{build_claimable, FunctionRow, NewVersion, Settings, Target, VersionRow};
pub use locks::HeldLock;
pub use invocations::{CallFigure, Claimed, InvocationFilter, InvocationRow, Recovered, StatusFilter};
pub use nodes::{Admission, NodeBeat, NodeRow};
pub use processes::ProcessRow;
pub use schedules::Scheduled;
pub use tenants::TenantRow;
pub use users::{TokenGrant, TokenRow, UserRow};

pub type DbResult<T> = Result<T, StoreError>;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dialect {
    Sqlite,
    Postgres,
}

#[derive(Clone)]
pub struct Store {
    pub pool: AnyPool,
    pub dialect: Dialect,
    /// The same database through its own driver, for migrations and the session store.
    pub native: NativePool,
}

#[derive(Clone)]
pub enum NativePool {
    Sqlite(sqlx::SqlitePool),
    Postgres(sqlx::PgPool),
}

pub fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

/// Now in µs since the epoch (the clock of a share of a function's limit across nodes).
pub fn now_us() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_micros() as i64).unwrap_or(0)
}

/// A text column read as one of the domain's string enums.
pub(super) fn typed<T: TryFrom<String, Error = String>>(row: &AnyRow, column: &str) -> Result<T, sqlx::Error> {
    T::try_from(row.try_get::<String, _>(column)?).map_err(|e| sqlx::Error::ColumnDecode { index: column.into(), source: e.into() })
}

impl Store {
    /// Connects, creating the SQLite file when needed, and applies the migrations.
    pub async fn connect(url: &str) -> DbResult<Store> {
        sqlx::any::install_default_drivers();
        let (dialect, native) = if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            let pool = sqlx::postgres::PgPoolOptions::new().max_connections(4).connect(url).await?;
            sqlx::migrate!("../migrations/postgres").run(&pool).await?;
            (Dialect::Postgres, NativePool::Postgres(pool))
        } else if url.starts_with("sqlite:") {
            let options = sqlx::sqlite::SqliteConnectOptions::from_str(url)?
                .create_if_missing(true)
                .journal_mode(sqlx::sqlite::SqliteJournalMode::Wal)
                .busy_timeout(std::time::Duration::from_secs(10));
            let pool = sqlx::sqlite::SqlitePoolOptions::new().max_connections(2).connect_with(options).await?;
            sqlx::migrate!("../migrations/sqlite").run(&pool).await?;
            (Dialect::Sqlite, NativePool::Sqlite(pool))
        } else {
            return Err(StoreError::Database(sqlx::Error::Configuration(
                format!("DATABASE_URL must start with sqlite: or postgres: (got {url:?})").into(),
            )));
        };
        let max = if dialect == Dialect::Sqlite { 4 } else { 16 };
        let sqlite = dialect == Dialect::Sqlite;
        let pool = AnyPoolOptions::new()
            .max_connections(max)
            .after_connect(move |conn, _| {
                Box::pin(async move {
                    // With the write-ahead log, NORMAL stays consistent through any crash and
                    // skips a disk flush per commit; only a power loss may undo the last commits.
                    if sqlite {
                        sqlx::query("PRAGMA synchronous = NORMAL").execute(conn).await?;
                    }
                    Ok(())
                })
            })
            .connect(url)
            .await?;
        Ok(Store { pool, dialect, native })
    }

    /// Whether the database answers a query.
    pub async fn ping(&self) -> DbResult<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    /// The id of this installation, made at first start; labels on Docker objects carry it so
    /// two installations sharing an engine never touch each other's containers.
    pub async fn installation_id(&self) -> DbResult<String> {
        let fresh = uuid::Uuid::new_v4().simple().to_string()[..12].to_string();
        sqlx::query("INSERT INTO settings (key, value) VALUES ('installation_id', $1) ON CONFLICT (key) DO NOTHING")
            .bind(&fresh)
            .execute(&self.pool)
            .await?;
        sqlx::query_scalar("SELECT value FROM settings WHERE key = 'installation_id'").fetch_one(&self.pool).await.map_err(StoreError::from)
    }

    /// The sealed value that proves which key seals this database's secrets (see `secrets.rs`).
    pub async fn secret_key_check(&self) -> DbResult<Option<String>> {
        sqlx::query_scalar("SELECT value FROM settings WHERE key = 'secret_key_check'").fetch_optional(&self.pool).await.map_err(StoreError::from)
    }

    pub async fn set_secret_key_check(&self, check: &str) -> DbResult<()> {
        sqlx::query("INSERT INTO settings (key, value) VALUES ('secret_key_check', $1) ON CONFLICT (key) DO NOTHING")
            .bind(check)
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}
