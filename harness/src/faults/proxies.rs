//! Faults on the hops' proxies, through the Toxiproxy REST API of the embedded server or of
//! a real Toxiproxy. `toxiproxy_rust` (blocking, and it panics on transport errors, so it
//! runs off the async runtime) disables and enables proxies and reads everything back; it
//! cannot name a toxic and does not report a refused one, so toxics are added and removed
//! with plain HTTP on the same API. Every change is read back before it counts as applied.

use crate::proxy::toxic::ToxicBody;
use crate::topology::Hop;
use std::time::Duration;
use toxiproxy_rust::client::Client;
use toxiproxy_rust::toxic::ToxicPack;

#[derive(Debug, thiserror::Error)]
pub enum ProxyFaultError {
    #[error("{method} {url}: {source}")]
    Transport {
        method: &'static str,
        url: String,
        source: reqwest::Error,
    },
    #[error("{method} {url} answered {status}: {body}")]
    Refused {
        method: &'static str,
        url: String,
        status: reqwest::StatusCode,
        body: String,
    },
    #[error("the Toxiproxy client: {0}")]
    Client(String),
    #[error("the Toxiproxy client failed: {0}")]
    Task(#[from] tokio::task::JoinError),
    #[error("toxic {name} on {hop} {problem}")]
    ReadBack {
        hop: &'static str,
        name: String,
        problem: String,
    },
    #[error("proxy {hop} reads back enabled={read} after setting enabled={wanted}")]
    Enabled {
        hop: &'static str,
        read: bool,
        wanted: bool,
    },
}

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
) -> Result<T, ProxyFaultError> {
    let api = api.to_owned();
    tokio::task::spawn_blocking(move || f(Client::new(api.as_str())))
        .await?
        .map_err(ProxyFaultError::Client)
}

fn toxics_of(client: &Client, proxy: &str) -> Result<Vec<ToxicPack>, String> {
    client.find_proxy(proxy)?.toxics()
}

/// Whether a toxic read back with `toxiproxy_rust` is the one that was added.
fn reads_back_as(found: &ToxicPack, added: &ToxicBody) -> bool {
    let same_attributes = added
        .attributes
        .iter()
        .all(|(k, v)| found.attributes.get(k).map(|x| i64::from(*x)) == Some(*v));
    found.r#type == added.kind
        && found.stream == added.stream.as_str()
        && (f64::from(found.toxicity) - added.toxicity).abs() < 1e-6
        && same_attributes
}

impl ProxyControl {
    pub fn new(api: &str, http: reqwest::Client) -> ProxyControl {
        ProxyControl {
            api: api.to_owned(),
            http,
        }
    }

    /// Adds `toxic` to `hop`'s proxy, then reads it back.
    pub async fn add_toxic(&self, hop: Hop, toxic: &ToxicBody) -> Result<(), ProxyFaultError> {
        let url = format!("http://{}/proxies/{}/toxics", self.api, hop.as_str());
        let response = self
            .http
            .post(&url)
            .json(toxic)
            .timeout(Duration::from_secs(10))
            .send()
            .await
            .map_err(|source| ProxyFaultError::Transport {
                method: "POST",
                url: url.clone(),
                source,
            })?;
        let status = response.status();
        if status != reqwest::StatusCode::OK {
            let body = response.text().await.unwrap_or_default();
            return Err(ProxyFaultError::Refused {
                method: "POST",
                url,
                status,
                body: body.trim().to_owned(),
            });
        }
        let (proxy_name, wanted) = (hop.as_str(), toxic.name.clone());
        let found = with_client(&self.api, move |client| {
            let toxics = toxics_of(&client, proxy_name)?;
            Ok(toxics.into_iter().find(|t| t.name == wanted))
        })
        .await?;
        let read_back = |problem: String| ProxyFaultError::ReadBack {
            hop: hop.as_str(),
            name: toxic.name.clone(),
            problem,
        };
        match found {
            None => Err(read_back("is not there when read back".into())),
            Some(found) if !reads_back_as(&found, toxic) => {
                Err(read_back(format!("reads back as {found:?}, not as added")))
            }
            Some(_) => Ok(()),
        }
    }

    /// Removes toxic `name` from `hop`'s proxy and reads back that it is gone.
    pub async fn remove_toxic(&self, hop: Hop, name: &str) -> Result<(), ProxyFaultError> {
        let url = format!("http://{}/proxies/{}/toxics/{name}", self.api, hop.as_str());
        let response = self
            .http
            .delete(&url)
            .timeout(Duration::from_secs(10))
            .send()
            .await
            .map_err(|source| ProxyFaultError::Transport {
                method: "DELETE",
                url: url.clone(),
                source,
            })?;
        let status = response.status();
        if status != reqwest::StatusCode::NO_CONTENT && status != reqwest::StatusCode::NOT_FOUND {
            let body = response.text().await.unwrap_or_default();
            return Err(ProxyFaultError::Refused {
                method: "DELETE",
                url,
                status,
                body: body.trim().to_owned(),
            });
        }
        let (proxy_name, wanted) = (hop.as_str(), name.to_owned());
        let still_there = with_client(&self.api, move |client| {
            Ok(toxics_of(&client, proxy_name)?
                .iter()
                .any(|t| t.name == wanted))
        })
        .await?;
        if still_there {
            return Err(ProxyFaultError::ReadBack {
                hop: hop.as_str(),
                name: name.to_owned(),
                problem: "is still there after removal".into(),
            });
        }
        Ok(())
    }

    /// Disables (`false`) or enables `hop`'s proxy and reads the state back.
    pub async fn set_enabled(&self, hop: Hop, enabled: bool) -> Result<(), ProxyFaultError> {
        let name = hop.as_str();
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
            return Err(ProxyFaultError::Enabled {
                hop: name,
                read,
                wanted: enabled,
            });
        }
        Ok(())
    }
}
