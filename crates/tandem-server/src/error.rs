//! How errors reach the client. One enum for everything a handler returns: the client gets
//! a status and a short message; the log gets the detail (never message text or personal
//! data). Pages turn "not signed in" into a redirect to `/login`.

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use tandem_care::CareError;
use tandem_engine::EngineError;
use tandem_store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("sign in first")]
    Unauthorized,
    #[error("enter the code from your authenticator app")]
    MfaRequired,
    #[error("{0}")]
    Forbidden(&'static str),
    #[error("not found")]
    NotFound,
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Conflict(String),
    #[error("too many failed sign-ins; try again in {retry_after_secs} seconds")]
    Locked { retry_after_secs: i64 },
    #[error("something went wrong; please try again")]
    Internal(#[from] anyhow::Error),
}

impl ApiError {
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::Unauthorized | ApiError::MfaRequired => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound => StatusCode::NOT_FOUND,
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::Locked { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The response for a page (HTML) request.
    pub fn into_page_response(self) -> Response {
        match self {
            ApiError::Unauthorized => redirect("/login"),
            ApiError::MfaRequired => redirect("/login/totp"),
            other => {
                let status = other.status();
                if let ApiError::Internal(e) = &other {
                    tracing::error!(error = %e, "request failed");
                }
                crate::pages::error_page(status, &other.to_string())
            }
        }
    }
}

pub(crate) fn redirect(to: &str) -> Response {
    (StatusCode::SEE_OTHER, [(header::LOCATION, to.to_string())]).into_response()
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        if let ApiError::Internal(e) = &self {
            tracing::error!(error = %e, "request failed");
        }
        let mut body = serde_json::json!({"error": self.to_string()});
        if matches!(self, ApiError::MfaRequired) {
            body["mfa_required"] = serde_json::json!(true);
        }
        let mut resp = (status, Json(body)).into_response();
        if let ApiError::Locked { retry_after_secs } = self {
            if let Ok(v) = header::HeaderValue::from_str(&retry_after_secs.to_string()) {
                resp.headers_mut().insert(header::RETRY_AFTER, v);
            }
        }
        resp
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound(_) => ApiError::NotFound,
            StoreError::Conflict(m) => ApiError::Conflict(m),
            StoreError::Invalid(m) => ApiError::BadRequest(m),
            other => ApiError::Internal(anyhow::anyhow!("store: {other}")),
        }
    }
}

impl From<EngineError> for ApiError {
    fn from(e: EngineError) -> Self {
        match e {
            EngineError::Store(s) => s.into(),
            other => ApiError::BadRequest(other.to_string()),
        }
    }
}

impl From<CareError> for ApiError {
    fn from(e: CareError) -> Self {
        match e {
            CareError::Store(s) => s.into(),
            other => ApiError::BadRequest(other.to_string()),
        }
    }
}
