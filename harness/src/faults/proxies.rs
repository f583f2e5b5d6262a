//! Faults on the hops' proxies, through the Toxiproxy REST API of the embedded server or of
//! a real Toxiproxy. `toxiproxy_rust` (blocking, and it panics on transport errors, so it
//! runs off the async runtime) disables and enables proxies and reads everything back; it
//! cannot name a toxic and does not report a refused one, so toxics are added and removed
//! with plain HTTP on the same API. Every change is read back before it counts as applied.

use crate::profile::fault_plan::Hop;
use serde_json::{Map, Value};
use std::time::Duration;
use toxiproxy_rust::client::Client;
use toxiproxy_rust::toxic::ToxicPack;

#[derive(Debug, Clone)]
pub struct ProxyControl {
    /// `host:port` of the Toxiproxy API.
    api: String,
    http: reqwest::Client,
}

/// Runs `f` with a `toxiproxy_rust` client off the runtime; a panic in it is an error.
async fn with_client<T: Send + 'static>(
    api: &str,
    f: impl FnOnce(Client) -> Result<T, String> + Send + 'static,
) -> Result<T, String> {
    let api = api.to_owned();
    tokio::task::spawn_blocking(move || f(Client::new(api.as_str())))
        .await
        .map_err(|e| format!("the Toxiproxy client failed: {e}"))?
}

fn toxics_of(client: &Client, proxy: &str) -> Result<Vec<ToxicPack>, String> {
    client.find_proxy(proxy)?.toxics()
}

impl ProxyControl {
    pub fn new(api: &str, http: reqwest::Client) -> ProxyControl {
        ProxyControl {
            api: api.to_owned(),
            http,
        }
    }

    /// Adds toxic `name` (the rest of its body in `body`) to `proxy`, then reads it back.
    pub async fn add_toxic(
        &self,
        proxy: Hop,
        name: &str,
        body: &Map<String, Value>,
    ) -> Result<(), String> {
        let mut body = body.clone();
        body.insert("name".into(), Value::from(name));
        let url = format!("http://{}/proxies/{}/toxics", self.api, proxy.as_str());
        let response = self
            .http
            .post(&url)
            .json(&body)
            .timeout(Duration::from_secs(10))
            .send()
            .await
            .map_err(|e| format!("POST {url}: {e}"))?;
        let status = response.status();
        if status != reqwest::StatusCode::OK {
            let text = response.text().await.unwrap_or_default();
            return Err(format!("POST {url}: {status}: {}", text.trim()));
        }
        let (proxy_name, wanted) = (proxy.as_str(), name.to_owned());
        let found = with_client(&self.api, move |client| {
            let toxics = toxics_of(&client, proxy_name)?;
            Ok(toxics.into_iter().find(|t| t.name == wanted))
        })
        .await?;
        let Some(found) = found else {
            return Err(format!(
                "toxic {name} on {} is not there when read back",
                proxy.as_str()
            ));
        };
        let same_attributes = body
            .get("attributes")
            .and_then(Value::as_object)
            .is_none_or(|attrs| {
                attrs
                    .iter()
                    .all(|(k, v)| found.attributes.get(k).map(|x| u64::from(*x)) == v.as_u64())
            });
        let toxicity = body.get("toxicity").and_then(Value::as_f64).unwrap_or(1.0);
        let same = Some(found.r#type.as_str()) == body.get("type").and_then(Value::as_str)
            && Some(found.stream.as_str()) == body.get("stream").and_then(Value::as_str)
            && (f64::from(found.toxicity) - toxicity).abs() < 1e-6
            && same_attributes;
        if !same {
            return Err(format!(
                "toxic {name} on {} reads back as {found:?}, not as added",
                proxy.as_str()
            ));
        }
        Ok(())
    }

    /// Removes toxic `name` from `proxy` and reads back that it is gone.
    pub async fn remove_toxic(&self, proxy: Hop, name: &str) -> Result<(), String> {
        let url = format!(
            "http://{}/proxies/{}/toxics/{name}",
            self.api,
            proxy.as_str()
        );
        let response = self
            .http
            .delete(&url)
            .timeout(Duration::from_secs(10))
            .send()
            .await
            .map_err(|e| format!("DELETE {url}: {e}"))?;
        let status = response.status();
        if status != reqwest::StatusCode::NO_CONTENT && status != reqwest::StatusCode::NOT_FOUND {
            return Err(format!("DELETE {url}: {status}"));
        }
        let (proxy_name, wanted) = (proxy.as_str(), name.to_owned());
        let still_there = with_client(&self.api, move |client| {
            Ok(toxics_of(&client, proxy_name)?
                .iter()
                .any(|t| t.name == wanted))
        })
        .await?;
        if still_there {
            return Err(format!(
                "toxic {name} on {} is still there after removal",
                proxy.as_str()
            ));
        }
        Ok(())
    }

    /// Disables (`false`) or enables `proxy` and reads the state back.
    pub async fn set_enabled(&self, proxy: Hop, enabled: bool) -> Result<(), String> {
        let name = proxy.as_str();
        let read = with_client(&self.api, move |client| {
            let found = client.find_proxy(name)?;
            if enabled {
                found.enable()?;
            } else {
                found.disable()?;
            }
            Ok(client.find_proxy(name)?.proxy_pack.enabled)
        })
        .await?;
        if read != enabled {
            return Err(format!(
                "proxy {name} reads back enabled={read} after setting enabled={enabled}"
            ));
        }
        Ok(())
    }
}
