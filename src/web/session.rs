//! Who is signed in, and the per-session values pages need (CSRF token, flash messages).
//! The extractors here are the only way a handler learns the current user, so "which account
//! does this request act for" is decided in one place.

use axum::{
    extract::{ConnectInfo, FromRequestParts},
    http::request::Parts,
};
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use tower_sessions::Session;

use super::{
    error::{AppError, AppResult},
    render::{Flash, FlashKind, Layout, Nav},
};
use crate::{
    app::AppState,
    crypto,
    db::{
        accounts::{self, Account, User},
        audit, stores,
        support::{self, SupportStaff},
    },
    domain::{AccountId, SupportStaffId, UserId},
};

const PRINCIPAL_KEY: &str = "principal";
const CSRF_KEY: &str = "csrf";
const FLASH_KEY: &str = "flash";

/// Who a session belongs to.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub enum Principal {
    Merchant { account_id: AccountId, user_id: UserId },
    Support { staff_id: SupportStaffId },
}

/// Starts a signed-in session: a new session ID (so a planted ID is worthless) and a new CSRF
/// token.
pub async fn sign_in(session: &Session, principal: Principal) -> AppResult<()> {
    session.cycle_id().await?;
    session.insert(PRINCIPAL_KEY, principal).await?;
    session.insert(CSRF_KEY, crypto::random_token()).await?;
    Ok(())
}

pub async fn sign_out(session: &Session) -> AppResult<()> {
    session.flush().await?;
    Ok(())
}

pub async fn principal(session: &Session) -> AppResult<Option<Principal>> {
    Ok(session.get(PRINCIPAL_KEY).await?)
}

/// The session's CSRF token, created on first use.
pub async fn csrf_token(session: &Session) -> AppResult<String> {
    if let Some(t) = session.get::<String>(CSRF_KEY).await? {
        return Ok(t);
    }
    let t = crypto::random_token();
    session.insert(CSRF_KEY, &t).await?;
    Ok(t)
}

/// The token stored in the session, without creating one (for checking).
pub async fn stored_csrf_token(session: &Session) -> AppResult<Option<String>> {
    Ok(session.get::<String>(CSRF_KEY).await?)
}

pub async fn flash(session: &Session, kind: FlashKind, message: impl Into<String>) -> AppResult<()> {
    let mut list: Vec<Flash> = session.get(FLASH_KEY).await?.unwrap_or_default();
    list.push(Flash { kind, message: message.into() });
    session.insert(FLASH_KEY, list).await?;
    Ok(())
}

async fn take_flashes(session: &Session) -> AppResult<Vec<Flash>> {
    Ok(session.remove(FLASH_KEY).await?.unwrap_or_default())
}

async fn session_from(parts: &mut Parts, state: &AppState) -> AppResult<Session> {
    Session::from_request_parts(parts, state)
        .await
        .map_err(|(_, msg)| AppError::Internal(anyhow::anyhow!("session layer missing: {msg}")))
}

/// Anyone, signed in or not (sign-in and sign-up pages).
pub struct Visitor {
    pub session: Session,
    path: String,
}

/// The parts of every page's layout that come from the session and the request.
async fn session_layout(session: &Session, title: &str, path: &str) -> AppResult<Layout> {
    Ok(Layout {
        title: title.to_string(),
        csrf: csrf_token(session).await?,
        flashes: take_flashes(session).await?,
        nav: None,
        support_name: None,
        path: path.to_string(),
    })
}

impl Visitor {
    pub async fn layout(&self, title: &str) -> AppResult<Layout> {
        session_layout(&self.session, title, &self.path).await
    }
}

impl FromRequestParts<AppState> for Visitor {
    type Rejection = AppError;
    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> AppResult<Self> {
        Ok(Visitor { session: session_from(parts, state).await?, path: parts.uri.path().to_string() })
    }
}

/// A signed-in merchant user (owner or staff) and their account.
pub struct Merchant {
    pub session: Session,
    pub user: User,
    pub account: Account,
    db: crate::db::Db,
    path: String,
}

impl Merchant {
    pub fn account_id(&self) -> AccountId {
        self.account.id
    }

    pub async fn layout(&self, title: &str) -> AppResult<Layout> {
        Ok(Layout {
            nav: Some(merchant_nav(&self.db, &self.account, &self.user).await?),
            ..session_layout(&self.session, title, &self.path).await?
        })
    }

    pub async fn flash(&self, kind: FlashKind, message: impl Into<String>) -> AppResult<()> {
        flash(&self.session, kind, message).await
    }

    /// Records something this user did in their account's audit log.
    pub async fn audit(&self, action: audit::Action, detail: &str, ip: &str) -> AppResult<()> {
        audit::record(&self.db, self.account.id, audit::Actor::User(&self.user.email), action, detail, Some(ip))
            .await?;
        Ok(())
    }
}

impl FromRequestParts<AppState> for Merchant {
    type Rejection = AppError;
    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> AppResult<Self> {
        let session = session_from(parts, state).await?;
        let (account_id, user_id) = match principal(&session).await? {
            Some(Principal::Merchant { account_id, user_id }) => (account_id, user_id),
            Some(Principal::Support { .. }) => return Err(AppError::Forbidden),
            None => return Err(AppError::SignInRequired),
        };
        // A removed user's session ends at their next request.
        let (Some(user), Some(account)) = (
            accounts::get_user(&state.db, account_id, user_id).await?,
            accounts::get_account(&state.db, account_id).await?,
        ) else {
            sign_out(&session).await?;
            return Err(AppError::SignInRequired);
        };
        Ok(Merchant { session, user, account, db: state.db.clone(), path: parts.uri.path().to_string() })
    }
}

async fn merchant_nav(db: &crate::db::Db, account: &Account, user: &User) -> AppResult<Nav> {
    Ok(Nav {
        account_name: account.name.clone(),
        user_name: user.display_name.clone(),
        user_email: user.email.clone(),
        role_label: user.role().label(),
        is_owner: user.is_owner(),
        stores: stores::links(db, account.id).await?,
    })
}

/// The layout for whoever the session belongs to, signed in or not: error pages, which any
/// route can answer, keep the header the person had on the page before.
pub async fn layout_for(session: &Session, db: &crate::db::Db, title: &str, path: &str) -> AppResult<Layout> {
    let layout = session_layout(session, title, path).await?;
    Ok(match principal(session).await? {
        Some(Principal::Merchant { account_id, user_id }) => {
            match (accounts::get_user(db, account_id, user_id).await?, accounts::get_account(db, account_id).await?) {
                (Some(user), Some(account)) => Layout { nav: Some(merchant_nav(db, &account, &user).await?), ..layout },
                _ => layout,
            }
        }
        Some(Principal::Support { staff_id }) => match support::get(db, staff_id).await? {
            Some(staff) => Layout { support_name: Some(staff.display_name), ..layout },
            None => layout,
        },
        None => layout,
    })
}

/// A signed-in owner: user and store management, settings, the audit log.
pub struct Owner(pub Merchant);

impl FromRequestParts<AppState> for Owner {
    type Rejection = AppError;
    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> AppResult<Self> {
        let merchant = Merchant::from_request_parts(parts, state).await?;
        if merchant.user.is_owner() { Ok(Owner(merchant)) } else { Err(AppError::Forbidden) }
    }
}

impl std::ops::Deref for Owner {
    type Target = Merchant;
    fn deref(&self) -> &Merchant {
        &self.0
    }
}

/// Signed-in support staff. Merchants are refused.
pub struct Support {
    pub session: Session,
    pub staff: SupportStaff,
    path: String,
}

impl Support {
    pub async fn layout(&self, title: &str) -> AppResult<Layout> {
        Ok(Layout {
            support_name: Some(self.staff.display_name.clone()),
            ..session_layout(&self.session, title, &self.path).await?
        })
    }
}

impl FromRequestParts<AppState> for Support {
    type Rejection = AppError;
    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> AppResult<Self> {
        let session = session_from(parts, state).await?;
        match principal(&session).await? {
            Some(Principal::Support { staff_id }) => match support::get(&state.db, staff_id).await? {
                Some(staff) => Ok(Support { session, staff, path: parts.uri.path().to_string() }),
                None => {
                    sign_out(&session).await?;
                    Err(AppError::SignInRequired)
                }
            },
            Some(Principal::Merchant { .. }) => Err(AppError::Forbidden),
            None => Err(AppError::SignInRequired),
        }
    }
}

/// The client's address: the socket peer, or the first X-Forwarded-For hop when configured to
/// trust a reverse proxy.
pub struct ClientIp(pub String);

impl FromRequestParts<AppState> for ClientIp {
    type Rejection = AppError;
    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> AppResult<Self> {
        if state.config.trust_forwarded_for
            && let Some(first) = parts
                .headers
                .get("x-forwarded-for")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.split(',').next())
                .map(str::trim)
                .filter(|v| !v.is_empty())
        {
            return Ok(ClientIp(first.to_string()));
        }
        let peer = parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip().to_string());
        Ok(ClientIp(peer.unwrap_or_else(|| "unknown".to_string())))
    }
}

impl axum::extract::OptionalFromRequestParts<AppState> for Merchant {
    type Rejection = AppError;
    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> AppResult<Option<Self>> {
        match <Merchant as FromRequestParts<AppState>>::from_request_parts(parts, state).await {
            Ok(m) => Ok(Some(m)),
            Err(AppError::SignInRequired | AppError::Forbidden) => Ok(None),
            Err(e) => Err(e),
        }
    }
}
