//! The one error type at the HTTP edge. Internal errors are logged once, with their cause chain,
//! inside the request span; people see a Japanese message that says what to do, never internals.

use axum::{
    http::StatusCode,
    response::{IntoResponse, Redirect, Response},
};

use super::render::{ErrorPage, Layout, render};
use crate::db::WriteError;

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// Also the answer for another account's IDs, so their existence does not leak.
    #[error("not found")]
    NotFound,
    #[error("forbidden")]
    Forbidden,
    #[error("sign-in required")]
    SignInRequired,
    #[error("cross-site request refused")]
    Csrf,
    #[error("request body too large")]
    PayloadTooLarge,
    #[error("bad request: {0}")]
    BadRequest(&'static str),
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

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let (status, title, message) = match &self {
            AppError::SignInRequired => return Redirect::to("/signin").into_response(),
            AppError::NotFound => (
                StatusCode::NOT_FOUND,
                "ページが見つかりません",
                "お探しのページは存在しないか、表示する権限がありません。",
            ),
            AppError::Forbidden => (
                StatusCode::FORBIDDEN,
                "権限がありません",
                "このページを表示する権限がありません。アカウントのオーナーにお問い合わせください。",
            ),
            AppError::Csrf => (
                StatusCode::FORBIDDEN,
                "リクエストを受け付けられません",
                "フォームの有効期限が切れたか、別のサイトから送信されました。ページを再読み込みしてからもう一度お試しください。",
            ),
            AppError::PayloadTooLarge => (
                StatusCode::PAYLOAD_TOO_LARGE,
                "送信内容が大きすぎます",
                "入力内容を短くしてからもう一度お試しください。",
            ),
            AppError::BadRequest(_) => {
                (StatusCode::BAD_REQUEST, "リクエストが正しくありません", "入力内容を確認してもう一度お試しください。")
            }
            AppError::Internal(e) => {
                tracing::error!(error = format!("{e:#}"), "request failed");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "エラーが発生しました",
                    "サーバーでエラーが発生しました。しばらくしてからもう一度お試しください。解決しない場合はサポートへご連絡ください。",
                )
            }
        };
        if let AppError::BadRequest(why) = &self {
            tracing::info!(why, "bad request");
        }
        render(status, &ErrorPage { layout: Layout::bare(title), message })
    }
}

pub type AppResult<T> = Result<T, AppError>;
