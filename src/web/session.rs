//! Who is signed in, and the per-session values pages need (CSRF token, flash messages).
//! The extractors here are the only way a handler learns the current user, so "which account
//! does this request act for" is decided in one place.

use axum::{
    extract::{ConnectInfo, FromRequestParts},
    http::request::Parts,
};
use serde::{Deserialize, Serialize};
use std::net::{IpAddr, SocketAddr};
use tower_sessions::Session;

use super::{
    csrf::AnonymousToken,
    error::{AppError, AppResult},
    render::{Flash, FlashKind, Layout, Nav},
};
use crate::{
    app::AppState,
    crypto,
    db::{
        access,
        accounts::{self, Account, User},
        audit, stores,
        support::{self, SupportStaff},
    },
    domain::{AccountId, SupportStaffId, UserId, scope::OrderScope},
};

const PRINCIPAL_KEY: &str = "principal";
const CSRF_KEY: &str = "csrf";
const FLASH_KEY: &str = "flash";
/// The support access (`support_access` row) a support session is looking at an account through.
const ACCESS_KEY: &str = "support_access";

const SIGNED_IN_KEY: &str = "signed_in_at";
const LAST_SEEN_KEY: &str = "last_seen_at";
/// When a merchant's session was last written back to move its idle expiry on (unix seconds).
const TOUCHED_KEY: &str = "touched_at";

/// Support sessions are shorter-lived than merchants' (the layer's `session_idle_hours`): they
/// end after this long without a request…
pub const SUPPORT_IDLE: chrono::Duration = chrono::Duration::minutes(30);
/// …and this long after signing in, whatever happens.
pub const SUPPORT_ABSOLUTE: chrono::Duration = chrono::Duration::hours(8);

/// Whether a support session signed in at `signed_in_at` (unix seconds), last seen at
/// `last_seen_at`, has ended at `now`.
pub fn support_session_ended(signed_in_at: Option<i64>, last_seen_at: Option<i64>, now: i64) -> bool {
    let Some(signed_in_at) = signed_in_at else { return true };
    let last_seen_at = last_seen_at.unwrap_or(signed_in_at);
    now - signed_in_at > SUPPORT_ABSOLUTE.num_seconds() || now - last_seen_at > SUPPORT_IDLE.num_seconds()
}

/// Checks a support session's lifetimes and marks it seen; false when it has ended.
async fn support_session_alive(session: &Session) -> AppResult<bool> {
    let now = chrono::Utc::now().timestamp();
    let signed_in_at = session.get::<i64>(SIGNED_IN_KEY).await?;
    let last_seen_at = session.get::<i64>(LAST_SEEN_KEY).await?;
    if support_session_ended(signed_in_at, last_seen_at, now) {
        return Ok(false);
    }
    session.insert(LAST_SEEN_KEY, now).await?;
    // The stored session and its cookie expire with the idle limit too.
    session.set_expiry(Some(tower_sessions::Expiry::OnInactivity(tower_sessions::cookie::time::Duration::seconds(
        SUPPORT_IDLE.num_seconds(),
    ))));
    Ok(true)
}

/// Starts a support person's read-only look at an account (the access is recorded already).
pub async fn begin_support_access(session: &Session, access_id: i64) -> AppResult<()> {
    session.insert(ACCESS_KEY, access_id).await?;
    Ok(())
}

pub async fn end_support_access(session: &Session) -> AppResult<()> {
    session.remove::<i64>(ACCESS_KEY).await?;
    Ok(())
}

/// The one place that keeps support staff from changing merchant data: a support session's
/// request that is not a read (GET/HEAD) is refused everywhere outside `/admin`, whatever the
/// route, so a route added later is covered without knowing about support. Sign-in and
/// sign-out stay open.
pub async fn support_read_only(req: axum::extract::Request, next: axum::middleware::Next) -> axum::response::Response {
    use axum::{http::Method, response::IntoResponse};
    let reads = matches!(*req.method(), Method::GET | Method::HEAD);
    let path = req.uri().path();
    let open = path == "/admin" || path.starts_with("/admin/") || matches!(path, "/signin" | "/signout");
    if !reads
        && !open
        && let Some(session) = req.extensions().get::<Session>().cloned()
    {
        match principal(&session).await {
            Ok(Some(Principal::Support { .. })) => return AppError::ReadOnly.into_response(),
            Ok(_) => {}
            Err(e) => return e.into_response(),
        }
    }
    next.run(req).await
}

/// Who a session belongs to, and the login's auth epoch when it signed in: removing the login,
/// changing its role or password bumps the epoch, which ends every session made before.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub enum Principal {
    Merchant {
        account_id: AccountId,
        user_id: UserId,
        #[serde(default)]
        epoch: i64,
    },
    Support {
        staff_id: SupportStaffId,
        #[serde(default)]
        epoch: i64,
    },
}

/// Starts a signed-in session: a new session ID (so a planted ID is worthless) and a new CSRF
/// token.
pub async fn sign_in(session: &Session, principal: Principal) -> AppResult<()> {
    session.cycle_id().await?;
    session.insert(PRINCIPAL_KEY, principal).await?;
    session.insert(CSRF_KEY, crypto::random_token()).await?;
    session.insert(SIGNED_IN_KEY, chrono::Utc::now().timestamp()).await?;
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

/// The flash messages, removed from the session only when there are some: removing marks the
/// session changed, and a changed session is written back to the database at the end of the
/// request (a write per page view otherwise).
async fn take_flashes(session: &Session) -> AppResult<Vec<Flash>> {
    if session.get::<Vec<Flash>>(FLASH_KEY).await?.is_none() {
        return Ok(Vec::new());
    }
    Ok(session.remove(FLASH_KEY).await?.unwrap_or_default())
}

/// How often a merchant's session is written back just to move its idle expiry on.
pub const SESSION_TOUCH_SECS: i64 = 300;

/// Keeps a signed-in merchant's session alive while it is used: the session layer only writes a
/// session (and so moves its expiry) when it changed, so a session that is only read would
/// expire `session_idle_hours` after its last change however busy its person is. Marking it
/// every [`SESSION_TOUCH_SECS`] moves the expiry on with one write per five minutes instead of
/// one per request.
async fn touch(session: &Session) -> AppResult<()> {
    let now = chrono::Utc::now().timestamp();
    let touched = session.get::<i64>(TOUCHED_KEY).await?;
    if touched.is_none_or(|t| now - t >= SESSION_TOUCH_SECS || t > now) {
        session.insert(TOUCHED_KEY, now).await?;
    }
    Ok(())
}

async fn session_from(parts: &mut Parts, state: &AppState) -> AppResult<Session> {
    Session::from_request_parts(parts, state)
        .await
        .map_err(|(_, msg)| AppError::Internal(anyhow::anyhow!("session layer missing: {msg}")))
}

/// Anyone, signed in or not (sign-in and sign-up pages).
pub struct Visitor {
    pub session: Session,
    anonymous: Option<AnonymousToken>,
    path: String,
    /// Support staff are signed in: the page's forms are theirs to see, not to use
    /// ([`support_read_only`] refuses them), so the layout hides them.
    support: bool,
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
    /// A signed-in visitor's page uses the session's token; anyone else's uses the signed
    /// cookie's, so an anonymous page view writes no session.
    pub async fn layout(&self, title: &str) -> AppResult<Layout> {
        let support_name = self.support.then(|| "サポート".to_owned());
        let csrf = match (stored_csrf_token(&self.session).await?, &self.anonymous) {
            (Some(t), _) => t,
            (None, Some(anonymous)) => anonymous.take(),
            (None, None) => {
                return Ok(Layout { support_name, ..session_layout(&self.session, title, &self.path).await? });
            }
        };
        Ok(Layout {
            title: title.to_string(),
            csrf,
            flashes: take_flashes(&self.session).await?,
            nav: None,
            support_name,
            path: self.path.clone(),
        })
    }
}

impl FromRequestParts<AppState> for Visitor {
    type Rejection = AppError;
    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> AppResult<Self> {
        let anonymous = parts.extensions.get::<AnonymousToken>().cloned();
        let path = parts.uri.path().to_string();
        let session = session_from(parts, state).await?;
        let support = matches!(principal(&session).await, Ok(Some(Principal::Support { .. })));
        Ok(Visitor { session, anonymous, path, support })
    }
}

/// A signed-in merchant user (owner or staff) and their account; or support staff looking at
/// the account through a support access (`support`), which only reads: their requests that
/// would change something never reach a handler ([`support_read_only`]).
pub struct Merchant {
    pub session: Session,
    pub user: User,
    pub account: Account,
    /// Set when this is a support person's read-only look at the account.
    pub support: Option<support::Access>,
    db: crate::db::Db,
    path: String,
    /// The scope, read once per request however many times handlers and the header ask.
    scope: tokio::sync::OnceCell<OrderScope>,
}

impl Merchant {
    pub fn account_id(&self) -> AccountId {
        self.account.id
    }

    pub async fn layout(&self, title: &str) -> AppResult<Layout> {
        Ok(Layout {
            nav: Some(merchant_nav(&self.db, &self.account, &self.user, Some(&self.scope().await?)).await?),
            support_name: self.support.as_ref().map(|a| a.staff_name.clone()),
            ..session_layout(&self.session, title, &self.path).await?
        })
    }

    pub async fn flash(&self, kind: FlashKind, message: impl Into<String>) -> AppResult<()> {
        flash(&self.session, kind, message).await
    }

    /// An audit entry for something this user does, to be written in the transaction of the
    /// change (`audit::record_in`).
    pub fn note(&self, action: audit::Action, detail: impl Into<String>, ip: &str) -> audit::Note {
        audit::Note::new(self.account.id, self.actor(), action, detail, Some(ip))
    }

    fn actor(&self) -> audit::Actor<'_> {
        match &self.support {
            Some(access) => audit::Actor::Support(&access.staff_name),
            None => audit::Actor::User(&self.user.email),
        }
    }

    /// One of the account's stores, if this user may work it (staff limited to some stores get
    /// 404 for the others, as for another account's). Every store route a staff member can
    /// reach loads its store through this.
    pub async fn store(&self, store_id: crate::domain::StoreId) -> AppResult<crate::db::stores::Store> {
        if !self.scope().await?.allows(store_id) {
            return Err(AppError::NotFound);
        }
        crate::db::stores::get(&self.db, self.account.id, store_id).await?.ok_or(AppError::NotFound)
    }

    /// Which orders this user may see and change, read from the database at the request's first
    /// ask (one query), so an owner's change applies at the user's next request without signing
    /// in again.
    pub async fn scope(&self) -> AppResult<OrderScope> {
        let scope = self
            .scope
            .get_or_try_init(|| async {
                if let Some(access) = &self.support {
                    // Support sees every store; buyers' data only when the stated reason needs it.
                    return Ok(OrderScope {
                        account: self.account.id,
                        stores: None,
                        mask_personal: !access.needs_personal,
                    });
                }
                access::scope_of_user(&self.db, &self.user).await?.ok_or(AppError::SignInRequired)
            })
            .await?;
        Ok(scope.clone())
    }

    /// Records something this user did that changes nothing else in the database (a queued
    /// import, a re-import applied by the job), on its own.
    pub async fn audit(&self, action: audit::Action, detail: &str, ip: &str) -> AppResult<()> {
        audit::record(&self.db, self.account.id, self.actor(), action, detail, Some(ip)).await?;
        Ok(())
    }

    /// Records `note` (from [`Merchant::note`], about a store say) on its own, like
    /// [`Merchant::audit`].
    pub async fn record(&self, note: &audit::Note) -> AppResult<()> {
        audit::record_note(&self.db, note).await?;
        Ok(())
    }
}

impl FromRequestParts<AppState> for Merchant {
    type Rejection = AppError;
    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> AppResult<Self> {
        let session = session_from(parts, state).await?;
        let (account_id, user_id, epoch) = match principal(&session).await? {
            Some(Principal::Merchant { account_id, user_id, epoch }) => (account_id, user_id, epoch),
            Some(Principal::Support { staff_id, epoch }) => {
                return support_viewer(parts, state, session, staff_id, epoch).await;
            }
            None => return Err(AppError::SignInRequired),
        };
        // A removed user's session, or one from before a password or role change, ends at its
        // next request.
        let (Some(user), Some(account)) = (
            accounts::get_user(&state.db, account_id, user_id).await?.filter(|u| u.auth_epoch == epoch),
            accounts::get_account(&state.db, account_id).await?,
        ) else {
            sign_out(&session).await?;
            return Err(AppError::SignInRequired);
        };
        touch(&session).await?;
        Ok(Merchant {
            session,
            user,
            account,
            support: None,
            db: state.db.clone(),
            path: parts.uri.path().to_string(),
            scope: tokio::sync::OnceCell::new(),
        })
    }
}

/// A support session acting as an account through a live support access (one hour from its
/// start, compared with the database clock's `now`); without one, merchant pages are refused.
async fn support_viewer(
    parts: &Parts,
    state: &AppState,
    session: Session,
    staff_id: SupportStaffId,
    epoch: i64,
) -> AppResult<Merchant> {
    let Some(access_id) = session.get::<i64>(ACCESS_KEY).await? else {
        return Err(AppError::Forbidden);
    };
    let Some(staff) = support::get(&state.db, staff_id).await?.filter(|s| s.auth_epoch == epoch) else {
        sign_out(&session).await?;
        return Err(AppError::SignInRequired);
    };
    if !support_session_alive(&session).await? {
        sign_out(&session).await?;
        return Err(AppError::SignInRequired);
    }
    let now = crate::db::now();
    let Some(access) = support::live_access(&state.db, access_id, staff.id, now).await? else {
        end_support_access(&session).await?;
        return Err(AppError::SupportAccessEnded);
    };
    let Some(account) = accounts::get_account(&state.db, access.account_id).await? else {
        end_support_access(&session).await?;
        return Err(AppError::NotFound);
    };
    let user = User::support_viewer(account.id, &access.staff_name, now);
    Ok(Merchant {
        session,
        user,
        account,
        support: Some(access),
        db: state.db.clone(),
        path: parts.uri.path().to_string(),
        scope: tokio::sync::OnceCell::new(),
    })
}

/// The header; `scope` when the caller has it already (otherwise it is read here).
async fn merchant_nav(
    db: &crate::db::Db,
    account: &Account,
    user: &User,
    scope: Option<&OrderScope>,
) -> AppResult<Nav> {
    // Staff limited to some stores see only those in the header.
    let read;
    let scope = match scope {
        Some(s) => Some(s),
        None => {
            read = crate::db::access::scope(db, account.id, user.id).await?;
            read.as_ref()
        }
    };
    let links = match scope {
        Some(scope) => stores::visible_links(db, scope).await?,
        None => stores::links(db, account.id).await?,
    };
    Ok(Nav {
        account_name: account.name.clone(),
        user_name: user.display_name.clone(),
        user_email: user.email.clone(),
        role_label: user.role().label(),
        is_owner: user.is_owner(),
        stores: links,
    })
}

/// The layout for whoever the session belongs to, signed in or not: error pages, which any
/// route can answer, keep the header the person had on the page before.
pub async fn layout_for(session: &Session, db: &crate::db::Db, title: &str, path: &str) -> AppResult<Layout> {
    let principal = principal(session).await?;
    let layout = if principal.is_some() {
        session_layout(session, title, path).await?
    } else {
        // Nobody signed in: the page has no form, and making a token would write a session for
        // an anonymous visitor (a missing favicon would then replace the token of the form the
        // visitor has open with one the form does not carry).
        Layout {
            title: title.to_string(),
            csrf: stored_csrf_token(session).await?.unwrap_or_default(),
            flashes: take_flashes(session).await?,
            nav: None,
            support_name: None,
            path: path.to_string(),
        }
    };
    Ok(match principal {
        Some(Principal::Merchant { account_id, user_id, epoch }) => {
            let user = accounts::get_user(db, account_id, user_id).await?.filter(|u| u.auth_epoch == epoch);
            match (user, accounts::get_account(db, account_id).await?) {
                (Some(user), Some(account)) => {
                    Layout { nav: Some(merchant_nav(db, &account, &user, None).await?), ..layout }
                }
                _ => layout,
            }
        }
        Some(Principal::Support { staff_id, epoch }) => match support::get(db, staff_id).await? {
            Some(staff) if staff.auth_epoch == epoch => Layout { support_name: Some(staff.display_name), ..layout },
            _ => layout,
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
            Some(Principal::Support { staff_id, epoch }) => match support::get(&state.db, staff_id).await? {
                Some(staff) if staff.auth_epoch == epoch && support_session_alive(&session).await? => {
                    Ok(Support { session, staff, path: parts.uri.path().to_string() })
                }
                _ => {
                    sign_out(&session).await?;
                    Err(AppError::SignInRequired)
                }
            },
            Some(Principal::Merchant { .. }) => Err(AppError::Forbidden),
            None => Err(AppError::SignInRequired),
        }
    }
}

/// The client's address: the socket peer, or, behind `trusted_proxy_hops` reverse proxies of our
/// own, the X-Forwarded-For entry the outermost of them added. Always a parsed IP address (at
/// most 45 characters), never header text.
pub struct ClientIp(pub String);

impl FromRequestParts<AppState> for ClientIp {
    type Rejection = AppError;
    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> AppResult<Self> {
        let peer = parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip());
        let forwarded: Vec<&str> =
            parts.headers.get_all("x-forwarded-for").iter().filter_map(|v| v.to_str().ok()).collect();
        Ok(ClientIp(client_address(peer, &forwarded, state.config.trusted_proxy_hops)))
    }
}

/// The one rule for the client address. Each proxy appends the address it was connected from,
/// so with `hops` proxies of ours the client is the `hops`th entry from the right; everything
/// left of it was sent by the client and could be anything. A chain shorter than `hops`, or an
/// entry that is not an address, falls back to the peer (the proxy), which fails safe: such
/// requests are throttled together.
pub fn client_address(peer: Option<IpAddr>, forwarded: &[&str], hops: usize) -> String {
    let from_header = hops
        .checked_sub(1)
        .and_then(|skip| forwarded.iter().rev().flat_map(|v| v.rsplit(',')).nth(skip))
        .and_then(|entry| {
            let entry = entry.trim();
            entry.parse::<IpAddr>().ok().or_else(|| entry.parse::<SocketAddr>().ok().map(|s| s.ip()))
        });
    match from_header.or(peer) {
        Some(ip) => ip.to_canonical().to_string(),
        None => "unknown".to_string(),
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

#[cfg(test)]
mod tests {
    use super::{SUPPORT_ABSOLUTE, SUPPORT_IDLE, client_address, support_session_ended};

    #[test]
    fn support_sessions_end_when_idle_or_old() {
        let (idle, absolute) = (SUPPORT_IDLE.num_seconds(), SUPPORT_ABSOLUTE.num_seconds());
        assert!(!support_session_ended(Some(0), None, idle));
        assert!(support_session_ended(Some(0), None, idle + 1), "idle since sign-in");
        assert!(!support_session_ended(Some(0), Some(absolute - 60), absolute));
        assert!(support_session_ended(Some(0), Some(absolute), absolute + 1), "past the absolute limit");
        assert!(support_session_ended(None, None, 0), "a session without its sign-in time");
    }

    #[test]
    fn client_address_takes_our_proxys_hop_only() {
        let peer = Some("10.0.0.2".parse().unwrap());
        assert_eq!(client_address(peer, &["1.1.1.1"], 0), "10.0.0.2");
        assert_eq!(client_address(peer, &["spoofed, 203.0.113.9"], 1), "203.0.113.9");
        assert_eq!(client_address(peer, &["1.1.1.1, 203.0.113.9", "10.0.0.1"], 2), "203.0.113.9");
        assert_eq!(client_address(peer, &["203.0.113.9:5555"], 1), "203.0.113.9");
        assert_eq!(client_address(peer, &["[2001:db8::1]:443"], 1), "2001:db8::1");
        assert_eq!(client_address(peer, &["::ffff:203.0.113.9"], 1), "203.0.113.9");
        // Too short a chain, garbage, or no header: the peer.
        assert_eq!(client_address(peer, &["203.0.113.9"], 2), "10.0.0.2");
        assert_eq!(client_address(peer, &[&"x".repeat(6000)], 1), "10.0.0.2");
        assert_eq!(client_address(peer, &[], 1), "10.0.0.2");
        assert_eq!(client_address(None, &[], 0), "unknown");
    }
}
