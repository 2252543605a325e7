//! Support staff: operators of the service, outside every account.

use super::{Db, WriteError, now, with_pool};
use crate::domain::SupportStaffId;

#[derive(Clone, Debug, sqlx::FromRow)]
pub struct SupportStaff {
    pub id: SupportStaffId,
    pub email: String,
    pub display_name: String,
    pub auth_epoch: i64,
}

#[derive(Clone, sqlx::FromRow)]
pub struct SupportCredentials {
    pub id: SupportStaffId,
    pub password_hash: String,
    pub auth_epoch: i64,
}

pub async fn create(
    db: &Db,
    email: &str,
    display_name: &str,
    password_hash: &str,
) -> Result<SupportStaffId, WriteError> {
    let t = now();
    with_pool!(db, |p| {
        sqlx::query_scalar(
            "insert into support_staff (email, display_name, password_hash, created_at, updated_at)
             values ($1, $2, $3, $4, $4) returning id",
        )
        .bind(email)
        .bind(display_name)
        .bind(password_hash)
        .bind(t)
        .fetch_one(p)
        .await
        .map_err(WriteError::classify)
    })
}

pub async fn find_credentials(db: &Db, email: &str) -> sqlx::Result<Option<SupportCredentials>> {
    with_pool!(db, |p| {
        sqlx::query_as("select id, password_hash, auth_epoch from support_staff where email = $1")
            .bind(email)
            .fetch_optional(p)
            .await
    })
}

pub async fn get(db: &Db, id: SupportStaffId) -> sqlx::Result<Option<SupportStaff>> {
    with_pool!(db, |p| {
        sqlx::query_as("select id, email, display_name, auth_epoch from support_staff where id = $1")
            .bind(id)
            .fetch_optional(p)
            .await
    })
}

/// Accounts with their owner's email and store count, for the support view.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct AccountSummary {
    pub id: crate::domain::AccountId,
    pub name: String,
    pub owner_email: Option<String>,
    pub store_count: i64,
    pub created_at: chrono::DateTime<chrono::Utc>,
}

pub async fn list_accounts(db: &Db) -> sqlx::Result<Vec<AccountSummary>> {
    with_pool!(db, |p| {
        sqlx::query_as(
            "select a.id, a.name,
                    (select min(u.email) from app_user u where u.account_id = a.id and u.role = 'owner') as owner_email,
                    (select count(*) from store s where s.account_id = a.id) as store_count,
                    a.created_at
             from account a order by a.id",
        )
        .fetch_all(p)
        .await
    })
}
