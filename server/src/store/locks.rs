//! A lock that one process of an installation holds for as long as it keeps one database
//! connection open: for work only one front may do at a time (the consumer of vCD's MQTT API
//! requests, which every subscriber would otherwise answer). The connection is taken out of
//! the pool, so the lock ends with it: when the holder stops or loses the database, another
//! front can take over.

use super::{DbResult, Dialect, Store};
use sqlx::{AnyConnection, Connection};

pub enum HeldLock {
    /// SQLite: one process per database file; nothing to share.
    Local,
    /// A PostgreSQL session advisory lock, held by this connection.
    Session(AnyConnection),
}

impl Store {
    /// Takes lock `key` if no other process holds it.
    pub async fn try_lock(&self, key: i64) -> DbResult<Option<HeldLock>> {
        match self.dialect {
            Dialect::Sqlite => Ok(Some(HeldLock::Local)),
            Dialect::Postgres => {
                let mut connection = self.pool.acquire().await?.detach();
                let taken: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1)").bind(key).fetch_one(&mut connection).await?;
                if taken {
                    Ok(Some(HeldLock::Session(connection)))
                } else {
                    let _ = connection.close().await;
                    Ok(None)
                }
            }
        }
    }
}

impl HeldLock {
    /// Whether the lock is still held: its connection still answers.
    pub async fn alive(&mut self) -> bool {
        match self {
            HeldLock::Local => true,
            HeldLock::Session(connection) => connection.ping().await.is_ok(),
        }
    }
}
