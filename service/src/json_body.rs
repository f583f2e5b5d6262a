//! `JsonBody<T>`: a JSON request body with a size limit and precise 4xx errors in the
//! project's error format (axum's own `Json` rejections answer in plain text).

use crate::api_error::ApiError;
use crate::contract::ErrorCode;
use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::StatusCode;
use serde::de::DeserializeOwned;

/// The largest request body any service accepts.
pub const MAX_BODY_BYTES: usize = 16 * 1024;

/// Admin bodies (seeding many accounts at once) may be larger.
pub const MAX_ADMIN_BODY_BYTES: usize = 8 * 1024 * 1024;

pub struct JsonBody<T>(pub T);

impl<T, S> FromRequest<S> for JsonBody<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = Bytes::from_request(req, state).await.map_err(|rejection| {
            if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::new(
                    ErrorCode::BodyTooLarge,
                    "request body exceeds the size limit",
                )
            } else {
                ApiError::new(ErrorCode::UnreadableBody, rejection.body_text())
            }
        })?;
        parse_json(&bytes).map(JsonBody)
    }
}

/// Parses a JSON body, naming what is wrong with it.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    if bytes.is_empty() {
        return Err(ApiError::new(
            ErrorCode::MalformedJson,
            "request body is empty; a JSON object is required",
        ));
    }
    serde_json::from_slice(bytes).map_err(|err| {
        let message = err.to_string();
        let code = match err.classify() {
            serde_json::error::Category::Data if message.starts_with("missing field") => {
                ErrorCode::MissingField
            }
            serde_json::error::Category::Data if message.starts_with("unknown field") => {
                ErrorCode::UnknownField
            }
            serde_json::error::Category::Data => ErrorCode::InvalidField,
            _ => ErrorCode::MalformedJson,
        };
        ApiError::new(code, message)
    })
}
