//! Session storage for tower-sessions on whichever backend the app runs on.

use async_trait::async_trait;
use tower_sessions::{
    ExpiredDeletion, SessionStore,
    session::{Id, Record},
    session_store,
};
use tower_sessions_sqlx_store::{PostgresStore, SqliteStore};

use super::Db;

/// The sqlx store for the backend in use.
#[derive(Clone, Debug)]
pub enum SessionBackend {
    Sqlite(SqliteStore),
    Postgres(PostgresStore),
}

impl SessionBackend {
    pub fn new(db: &Db) -> SessionBackend {
        match db {
            Db::Sqlite(p) => SessionBackend::Sqlite(SqliteStore::new(p.clone())),
            Db::Postgres(p) => SessionBackend::Postgres(PostgresStore::new(p.clone())),
        }
    }

    pub async fn migrate(&self) -> anyhow::Result<()> {
        match self {
            SessionBackend::Sqlite(s) => s.migrate().await?,
            SessionBackend::Postgres(s) => s.migrate().await?,
        }
        Ok(())
    }

    /// Deletes expired sessions every `period` until the task is dropped. A failed round (the
    /// database away for a moment) is logged and the next one tried: the task never ends by
    /// itself.
    pub async fn delete_expired_continuously(self, period: std::time::Duration) {
        let mut tick = tokio::time::interval(period);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await;
        loop {
            tick.tick().await;
            let result = match &self {
                SessionBackend::Sqlite(s) => s.delete_expired().await,
                SessionBackend::Postgres(s) => s.delete_expired().await,
            };
            if let Err(e) = result {
                tracing::warn!(error = %e, "deleting expired sessions failed; trying again next round");
            }
        }
    }
}

#[async_trait]
impl SessionStore for SessionBackend {
    async fn create(&self, record: &mut Record) -> session_store::Result<()> {
        match self {
            SessionBackend::Sqlite(s) => s.create(record).await,
            SessionBackend::Postgres(s) => s.create(record).await,
        }
    }

    async fn save(&self, record: &Record) -> session_store::Result<()> {
        match self {
            SessionBackend::Sqlite(s) => s.save(record).await,
            SessionBackend::Postgres(s) => s.save(record).await,
        }
    }

    async fn load(&self, id: &Id) -> session_store::Result<Option<Record>> {
        match self {
            SessionBackend::Sqlite(s) => s.load(id).await,
            SessionBackend::Postgres(s) => s.load(id).await,
        }
    }

    async fn delete(&self, id: &Id) -> session_store::Result<()> {
        match self {
            SessionBackend::Sqlite(s) => s.delete(id).await,
            SessionBackend::Postgres(s) => s.delete(id).await,
        }
    }
}
