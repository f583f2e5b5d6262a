//! Knob faults: a service's own fault knobs (`/admin/knobs`) and the ledger's policy
//! (`/admin/policy`) changed for a while, then put back as they were. Every change is read
//! back with a GET.

use serde_json::{Map, Value};
use std::time::Duration;

async fn call(
    http: &reqwest::Client,
    method: reqwest::Method,
    url: &str,
    body: Option<&Value>,
) -> Result<Value, String> {
    let mut request = http
        .request(method.clone(), url)
        .timeout(Duration::from_secs(10));
    if let Some(body) = body {
        request = request.json(body);
    }
    let response = request
        .send()
        .await
        .map_err(|e| format!("{method} {url}: {e}"))?;
    let status = response.status();
    if !status.is_success() {
        let text = response.text().await.unwrap_or_default();
        return Err(format!("{method} {url}: {status}: {}", text.trim()));
    }
    response
        .json()
        .await
        .map_err(|e| format!("{method} {url}: {e}"))
}

/// Whether every field of `patch` reads back with its value in `current`.
fn holds(patch: &Map<String, Value>, current: &Value) -> bool {
    patch.iter().all(|(k, v)| {
        let got = current.get(k);
        match (got.and_then(Value::as_f64), v.as_f64()) {
            (Some(a), Some(b)) => (a - b).abs() < 1e-9,
            _ => got == Some(v),
        }
    })
}

/// `PUT`s `patch` to `{base}{path}` and reads it back; returns the values it replaced.
pub async fn set(
    http: &reqwest::Client,
    base: &str,
    path: &str,
    patch: &Map<String, Value>,
) -> Result<Value, String> {
    let url = format!("{base}{path}");
    let before = call(http, reqwest::Method::GET, &url, None).await?;
    call(
        http,
        reqwest::Method::PUT,
        &url,
        Some(&Value::Object(patch.clone())),
    )
    .await?;
    let after = call(http, reqwest::Method::GET, &url, None).await?;
    if !holds(patch, &after) {
        return Err(format!(
            "{url} reads back {after} after setting {}",
            Value::Object(patch.clone())
        ));
    }
    Ok(before)
}

/// Puts back the values `set` replaced and reads them back.
pub async fn restore(
    http: &reqwest::Client,
    base: &str,
    path: &str,
    before: &Value,
) -> Result<(), String> {
    let Some(before) = before.as_object() else {
        return Err(format!("{base}{path}: no earlier values to put back"));
    };
    set(http, base, path, before).await.map(|_| ())
}
