//! The one error type every HTTP handler returns: an [`ErrorCode`] (which fixes the HTTP
//! status) and a message. 4xx answers tell the caller what was wrong; 5xx answers carry a
//! generic message and the cause goes to the log. The body is the contract's [`ErrorBody`].

use crate::contract::{ErrorBody, ErrorCode, ErrorDetail};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub code: ErrorCode,
    pub message: String,
}

impl ApiError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        ApiError {
            code,
            message: message.into(),
        }
    }

    pub fn status(&self) -> StatusCode {
        StatusCode::from_u16(self.code.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }

    /// A server-side failure: the cause is logged, the caller sees a generic message.
    pub fn internal(cause: impl std::fmt::Display) -> Self {
        tracing::error!(%cause, "internal error");
        Self::new(
            ErrorCode::Internal,
            "internal error; the operation may or may not have been applied",
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code,
                message: self.message,
            },
        };
        let retry_after = self.code.retry_after_seconds();
        let mut response = (status, Json(body)).into_response();
        if let Some(seconds) = retry_after {
            response.headers_mut().insert(
                axum::http::header::RETRY_AFTER,
                axum::http::HeaderValue::from(seconds),
            );
        }
        if status == StatusCode::PAYLOAD_TOO_LARGE {
            // The rest of the body is not read: the connection cannot carry another request,
            // and a client must not put one on it.
            response.headers_mut().insert(
                axum::http::header::CONNECTION,
                axum::http::HeaderValue::from_static("close"),
            );
        }
        response
    }
}

impl From<crate::ids::IdError> for ApiError {
    fn from(err: crate::ids::IdError) -> Self {
        ApiError::new(ErrorCode::InvalidId, err.to_string())
    }
}

impl From<crate::money::AmountError> for ApiError {
    fn from(err: crate::money::AmountError) -> Self {
        ApiError::new(ErrorCode::InvalidAmount, err.to_string())
    }
}

impl From<crate::store::StoreError> for ApiError {
    fn from(err: crate::store::StoreError) -> Self {
        match err {
            crate::store::StoreError::Unavailable(why) => {
                tracing::warn!(%why, "write refused by the disk");
                ApiError::new(
                    ErrorCode::StorageUnavailable,
                    format!("the store cannot write ({why}); nothing was written, retry later"),
                )
            }
            other => ApiError::internal(other),
        }
    }
}

impl ApiError {
    /// A refused settings patch at an admin route: an unknown field or a wrong type is the
    /// body's fault (`unknown_field`, `invalid_field`); a value out of range answers
    /// `out_of_range` (`invalid_knob`, `invalid_policy`).
    pub fn from_setting(err: crate::settings::SettingError, out_of_range: ErrorCode) -> Self {
        use crate::settings::SettingError;
        let code = match &err {
            SettingError::Unknown { .. } => ErrorCode::UnknownField,
            SettingError::Invalid { .. } => ErrorCode::InvalidField,
            SettingError::OutOfRange { .. } => out_of_range,
        };
        ApiError::new(code, err.to_string())
    }
}
