//! Portal sessions, stored in the platform's own database (SQLite or PostgreSQL).

use crate::store::NativePool;
use async_trait::async_trait;
use tower_sessions::session::{Id, Record};
use tower_sessions::session_store::{self, ExpiredDeletion, SessionStore};
use tower_sessions_sqlx_store::{PostgresStore, SqliteStore};

#[derive(Clone, Debug)]
pub enum Sessions {
    Sqlite(SqliteStore),
    Postgres(PostgresStore),
}

impl Sessions {
    pub async fn open(pool: &NativePool) -> sqlx::Result<Sessions> {
        Ok(match pool {
            NativePool::Sqlite(p) => {
                let store = SqliteStore::new(p.clone());
                store.migrate().await?;
                Sessions::Sqlite(store)
            }
            NativePool::Postgres(p) => {
                let store = PostgresStore::new(p.clone());
                store.migrate().await?;
                Sessions::Postgres(store)
            }
        })
    }

    /// Deletes expired sessions every hour.
    pub fn spawn_cleanup(&self) {
        let store = self.clone();
        tokio::spawn(async move {
            loop {
                let result = match &store {
                    Sessions::Sqlite(s) => s.delete_expired().await,
                    Sessions::Postgres(s) => s.delete_expired().await,
                };
                if let Err(e) = result {
                    tracing::warn!(error = %e, "cannot delete expired sessions");
                }
                tokio::time::sleep(std::time::Duration::from_secs(3600)).await;
            }
        });
    }
}

#[async_trait]
impl SessionStore for Sessions {
    async fn create(&self, record: &mut Record) -> session_store::Result<()> {
        match self {
            Sessions::Sqlite(s) => s.create(record).await,
            Sessions::Postgres(s) => s.create(record).await,
        }
    }
    async fn save(&self, record: &Record) -> session_store::Result<()> {
        match self {
            Sessions::Sqlite(s) => s.save(record).await,
            Sessions::Postgres(s) => s.save(record).await,
        }
    }
    async fn load(&self, id: &Id) -> session_store::Result<Option<Record>> {
        match self {
            Sessions::Sqlite(s) => s.load(id).await,
            Sessions::Postgres(s) => s.load(id).await,
        }
    }
    async fn delete(&self, id: &Id) -> session_store::Result<()> {
        match self {
            Sessions::Sqlite(s) => s.delete(id).await,
            Sessions::Postgres(s) => s.delete(id).await,
        }
    }
}
