//! The one error type at the HTTP edge. Internal errors are logged once, with their cause chain,
//! inside the request span; people see a Japanese message that says what to do, never internals.

use std::time::Duration;

use axum::{
    extract::{Request, State},
    http::{HeaderMap, StatusCode, header},
    middleware::Next,
    response::{IntoResponse, Redirect, Response},
};
use tower_sessions::Session;

use super::{
    render::{ErrorPage, Layout, render},
    session::layout_for,
};
use crate::{app::AppState, db::WriteError};

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// Also the answer for another account's IDs, so their existence does not leak.
    #[error("not found")]
    NotFound,
    #[error("forbidden")]
    Forbidden,
    #[error("sign-in required")]
    SignInRequired,
    /// A support session asked to change merchant data (support access only reads).
    #[error("support access is read-only")]
    ReadOnly,
    /// A support access past its hour (or none open).
    #[error("support access ended")]
    SupportAccessEnded,
    #[error("cross-site request refused")]
    Csrf,
    #[error("request body too large")]
    PayloadTooLarge,
    #[error("bad request: {0}")]
    BadRequest(&'static str),
    /// A typed value held NUL or another control character (`input::has_control_character`).
    #[error("control character in the input")]
    ControlCharacter,
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl From<sqlx::Error> for AppError {
    fn from(e: sqlx::Error) -> Self {
        AppError::Internal(e.into())
    }
}

impl From<WriteError> for AppError {
    fn from(e: WriteError) -> Self {
        AppError::Internal(e.into())
    }
}

impl From<tower_sessions::session::Error> for AppError {
    fn from(e: tower_sessions::session::Error) -> Self {
        AppError::Internal(e.into())
    }
}

/// What an error page says. Attached to every error response the app makes, so that
/// [`error_pages`] can draw it inside the frame of whoever is signed in.
#[derive(Clone, Copy, Debug)]
pub struct ErrorInfo {
    pub title: &'static str,
    pub message: &'static str,
}

impl ErrorInfo {
    /// The page for a status that came without one: the router's own 404 and 405, axum's
    /// extractor rejections (malformed path IDs, queries and form bodies), the body limit, the
    /// timeout and a caught panic.
    pub fn for_status(status: StatusCode) -> ErrorInfo {
        let (title, message) = match status {
            StatusCode::NOT_FOUND => (NOT_FOUND_TITLE, NOT_FOUND_MESSAGE),
            StatusCode::METHOD_NOT_ALLOWED => (
                "このページは直接開けません",
                "このアドレスは画面のボタンから使う操作です。元のページを開き直してから、もう一度操作してください。",
            ),
            StatusCode::UNAUTHORIZED => ("ログインが必要です", "ログインしてからもう一度お試しください。"),
            StatusCode::FORBIDDEN => (FORBIDDEN_TITLE, FORBIDDEN_MESSAGE),
            StatusCode::REQUEST_TIMEOUT | StatusCode::GATEWAY_TIMEOUT => (
                "時間内に処理が終わりませんでした",
                "処理に時間がかかりすぎたため中断しました。少し待ってから、もう一度お試しください。",
            ),
            StatusCode::PAYLOAD_TOO_LARGE => (TOO_LARGE_TITLE, TOO_LARGE_MESSAGE),
            StatusCode::TOO_MANY_REQUESTS => ("アクセスが集中しています", "少し待ってから、もう一度お試しください。"),
            s if s.is_server_error() => (INTERNAL_TITLE, INTERNAL_MESSAGE),
            _ => (BAD_REQUEST_TITLE, BAD_REQUEST_MESSAGE),
        };
        ErrorInfo { title, message }
    }
}

const NOT_FOUND_TITLE: &str = "ページが見つかりません";
const NOT_FOUND_MESSAGE: &str = "お探しのページは存在しないか、表示する権限がありません。";
const FORBIDDEN_TITLE: &str = "権限がありません";
const FORBIDDEN_MESSAGE: &str = "このページを表示する権限がありません。アカウントのオーナーにお問い合わせください。";
const TOO_LARGE_TITLE: &str = "送信内容が大きすぎます";
const TOO_LARGE_MESSAGE: &str = "入力内容を短くしてからもう一度お試しください。";
const BAD_REQUEST_TITLE: &str = "リクエストが正しくありません";
const BAD_REQUEST_MESSAGE: &str =
    "アドレスまたは送信内容の形式が正しくありません。リンクを開き直すか、入力内容を確認してもう一度お試しください。";
const INTERNAL_TITLE: &str = "エラーが発生しました";
const INTERNAL_MESSAGE: &str = "サーバーでエラーが発生しました。しばらくしてからもう一度お試しください。解決しない場合はサポートへご連絡ください。";

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let (status, title, message) = match &self {
            AppError::SignInRequired => return Redirect::to("/signin").into_response(),
            AppError::NotFound => (StatusCode::NOT_FOUND, NOT_FOUND_TITLE, NOT_FOUND_MESSAGE),
            AppError::Forbidden => (StatusCode::FORBIDDEN, FORBIDDEN_TITLE, FORBIDDEN_MESSAGE),
            AppError::ReadOnly => (
                StatusCode::FORBIDDEN,
                "サポートの閲覧は読み取り専用です",
                "サポートスタッフはアカウントのデータを閲覧できますが、変更はできません。変更が必要な場合は、アカウントのオーナーに依頼してください。",
            ),
            AppError::SupportAccessEnded => (
                StatusCode::FORBIDDEN,
                "サポート閲覧の期限が切れました",
                "サポート閲覧は開始から1時間で終了します。続けるには、サポート管理画面から理由を入力してもう一度開始してください。",
            ),
            AppError::Csrf => (
                StatusCode::FORBIDDEN,
                "リクエストを受け付けられません",
                "フォームの有効期限が切れたか、別のサイトから送信されました。ページを再読み込みしてからもう一度お試しください。",
            ),
            AppError::PayloadTooLarge => (StatusCode::PAYLOAD_TOO_LARGE, TOO_LARGE_TITLE, TOO_LARGE_MESSAGE),
            AppError::BadRequest(_) => (StatusCode::BAD_REQUEST, BAD_REQUEST_TITLE, BAD_REQUEST_MESSAGE),
            AppError::ControlCharacter => (
                StatusCode::BAD_REQUEST,
                "使えない文字が含まれています",
                "入力に制御文字（NUL など、画面に表示されない特殊な文字）が含まれています。取り除いてからもう一度お試しください。何も変更していません。",
            ),
            AppError::Internal(e) => {
                tracing::error!(error = format!("{e:#}"), "request failed");
                (StatusCode::INTERNAL_SERVER_ERROR, INTERNAL_TITLE, INTERNAL_MESSAGE)
            }
        };
        if let AppError::BadRequest(why) = &self {
            tracing::info!(why, "bad request");
        }
        let info = ErrorInfo { title, message };
        let page = ErrorPage { layout: Layout::bare(title), message, status: status.as_u16(), request_id: None };
        let mut response = render(status, &page);
        response.extensions_mut().insert(info);
        response
    }
}

/// Answers any address the router does not know.
pub async fn not_found() -> AppError {
    AppError::NotFound
}

/// Paths whose answers are for machines, not people: left as they are.
fn for_machines(path: &str) -> bool {
    matches!(path, "/healthz" | "/metrics")
}

/// The one place error responses become the Japanese error page inside the app's frame.
///
/// Runs inside the session layer, so the page keeps the navigation of whoever is signed in.
/// It redraws the app's own error pages (which carry an [`ErrorInfo`]) and replaces every bare
/// error answer from below it: the router's 404/405, axum's extractor rejections, the body
/// limit, the timeout and caught panics. Pages that answer an error status with their own HTML
/// (a form shown again with its messages) pass through untouched.
pub async fn error_pages(State(state): State<AppState>, req: Request, next: Next) -> Response {
    if for_machines(req.uri().path()) {
        return next.run(req).await;
    }
    let session = req.extensions().get::<Session>().cloned();
    let path = req.uri().path().to_string();
    let id = req.extensions().get::<super::RequestId>().map(|r| r.0.clone());
    let response = next.run(req).await;
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    let info = match response.extensions().get::<ErrorInfo>() {
        Some(info) => *info,
        None if is_html(&response) => return response,
        None => {
            let (parts, body) = response.into_parts();
            let text = axum::body::to_bytes(body, 4096).await.unwrap_or_default();
            let text = String::from_utf8_lossy(&text);
            if status.is_server_error() {
                tracing::error!(status = status.as_u16(), body = %text, "bare error answer replaced by the error page");
            } else {
                tracing::info!(status = status.as_u16(), body = %text, "bare error answer replaced by the error page");
            }
            // axum answers an undecodable form body 422 and a wrong content type 415; for a
            // person both are a malformed request.
            let status = match status {
                StatusCode::UNPROCESSABLE_ENTITY | StatusCode::UNSUPPORTED_MEDIA_TYPE => StatusCode::BAD_REQUEST,
                other => other,
            };
            return page(&state, session, &path, status, ErrorInfo::for_status(status), Some(parts.headers), id).await;
        }
    };
    let headers = response.headers().clone();
    page(&state, session, &path, status, info, Some(headers), id).await
}

async fn page(
    state: &AppState,
    session: Option<Session>,
    path: &str,
    status: StatusCode,
    info: ErrorInfo,
    headers: Option<HeaderMap>,
    request_id: Option<String>,
) -> Response {
    // A slow database must not hold the error page (it may be why the request timed out).
    let layout = match session {
        Some(session) => {
            match tokio::time::timeout(Duration::from_secs(2), layout_for(&session, &state.db, info.title, path)).await
            {
                Ok(Ok(layout)) => layout,
                Ok(Err(e)) => {
                    tracing::warn!(error = %e, "error page drawn without the session's header");
                    Layout::bare(info.title)
                }
                Err(_) => Layout::bare(info.title),
            }
        }
        None => Layout::bare(info.title),
    };
    let mut response =
        render(status, &ErrorPage { layout, message: info.message, status: status.as_u16(), request_id });
    // Keep what the status needs (Allow on 405, Retry-After) but not the old body's headers.
    if let Some(headers) = headers {
        for (name, value) in &headers {
            if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH && name != header::CACHE_CONTROL {
                response.headers_mut().entry(name).or_insert(value.clone());
            }
        }
    }
    response
}

/// The outermost answer to a bare server error from the layers outside [`error_pages`]: the
/// session layer answers a bare 500 when it cannot save the session (a full or read-only
/// disk, a database outage), and a person should still read a Japanese page, not a blank one.
pub async fn last_resort(State(state): State<AppState>, req: Request, next: Next) -> Response {
    if for_machines(req.uri().path()) {
        return next.run(req).await;
    }
    let path = req.uri().path().to_string();
    let id = req.extensions().get::<super::RequestId>().map(|r| r.0.clone());
    let response = next.run(req).await;
    let status = response.status();
    if !status.is_server_error() || is_html(&response) {
        return response;
    }
    tracing::error!(
        status = status.as_u16(),
        "the session layer answered an error (the database cannot take a write?)"
    );
    page(&state, None, &path, status, ErrorInfo::for_status(status), None, id).await
}

fn is_html(response: &Response) -> bool {
    response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/html"))
}

pub type AppResult<T> = Result<T, AppError>;
