//! Knob faults: a service's own fault knobs (`/admin/knobs`) and the ledger's policy
//! (`/admin/policy`) changed for a while, then put back as they were. Both are settings
//! defined once in the service (`service::settings`): the harness sends a patch of the
//! service's own type, and every change is read back with a GET and compared with what the
//! patch must have made of the values before.

use serde::de::DeserializeOwned;
use service::settings::{Patch, SettingError, Settings};
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum KnobsError {
    #[error("{method} {url}: {source}")]
    Transport {
        method: reqwest::Method,
        url: String,
        source: reqwest::Error,
    },
    #[error("{method} {url} answered {status}: {body}")]
    Refused {
        method: reqwest::Method,
        url: String,
        status: reqwest::StatusCode,
        body: String,
    },
    #[error("{url}: the patch does not apply to the values read: {source}")]
    Patch { url: String, source: SettingError },
    #[error("{url} reads back {read} after the change; expected {expected}")]
    ReadBack {
        url: String,
        read: String,
        expected: String,
    },
}

async fn call<T: DeserializeOwned>(
    http: &reqwest::Client,
    method: reqwest::Method,
    url: &str,
    body: Option<&impl serde::Serialize>,
) -> Result<T, KnobsError> {
    let transport = |source| KnobsError::Transport {
        method: method.clone(),
        url: url.to_owned(),
        source,
    };
    let mut request = http
        .request(method.clone(), url)
        .timeout(Duration::from_secs(10));
    if let Some(body) = body {
        request = request.json(body);
    }
    let response = request.send().await.map_err(transport)?;
    let status = response.status();
    if !status.is_success() {
        let text = response.text().await.unwrap_or_default();
        return Err(KnobsError::Refused {
            method,
            url: url.to_owned(),
            status,
            body: text.trim().to_owned(),
        });
    }
    response.json().await.map_err(transport)
}

/// `PUT`s `patch` to `{base}{path}` and reads it back; returns the values it replaced.
pub async fn set<T: Settings + std::fmt::Debug>(
    http: &reqwest::Client,
    base: &str,
    path: &str,
    patch: &Patch<T>,
) -> Result<T, KnobsError> {
    let url = format!("{base}{path}");
    let before: T = call(http, reqwest::Method::GET, &url, None::<&()>).await?;
    let expected = patch.apply(&before).map_err(|source| KnobsError::Patch {
        url: url.clone(),
        source,
    })?;
    let _: T = call(http, reqwest::Method::PUT, &url, Some(patch)).await?;
    let read: T = call(http, reqwest::Method::GET, &url, None::<&()>).await?;
    if read != expected {
        return Err(KnobsError::ReadBack {
            url,
            read: format!("{read:?}"),
            expected: format!("{expected:?}"),
        });
    }
    Ok(before)
}

/// Puts back the values `set` replaced and reads them back.
pub async fn restore<T: Settings + std::fmt::Debug>(
    http: &reqwest::Client,
    base: &str,
    path: &str,
    before: &T,
) -> Result<(), KnobsError> {
    set(http, base, path, &Patch::of_value(before))
        .await
        .map(|_| ())
}
