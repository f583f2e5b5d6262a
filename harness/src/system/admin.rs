//! The admin client: what the harness asks of a system outside the load, all through
//! `docs/contract.md` and never through the hops' proxies (faults never touch the
//! evidence): health, seeding, both institutions' dumps, the saga log, and `/metrics`.

use super::{books, sql, Endpoints};
use crate::mapping::template::{Rendered, RequestTemplate, Vars};
use crate::mapping::users::{user_vars, UserSource};
use crate::mapping::CompiledApi;
use crate::population::{self, Names};
use crate::profile::plan::RunPlan;
use crate::topology::ServiceRole;
use futures_util::stream::StreamExt;
use serde::de::DeserializeOwned;
use serde::Serialize;
use service::contract::{
    routes, Dump, DumpCursor, DumpPage, InFlight, SagaDump, SagaPage, Totals, TransferView,
};
use std::path::Path;
use std::time::{Duration, Instant};

#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error("{what} at {url}: {source}")]
    Transport {
        what: &'static str,
        url: String,
        source: reqwest::Error,
    },
    #[error("{what} at {url} answered {status}: {body}")]
    Refused {
        what: &'static str,
        url: String,
        status: reqwest::StatusCode,
        body: String,
    },
    #[error("{url} did not answer 200 within {waited:?}")]
    NotHealthy { url: String, waited: Duration },
    #[error("reading the {role} books: {message}")]
    Books { role: &'static str, message: String },
    #[error("creating user {user}: {message}")]
    CreateUser { user: String, message: String },
}

/// How long an admin call may take: a dump of a long run is large.
const ADMIN_TIMEOUT: Duration = Duration::from_secs(60);

/// Users created at once through a mapped API.
const USER_CREATIONS_AT_ONCE: usize = 16;

/// How long a sampling read may take before the sample is skipped.
const SAMPLE_TIMEOUT: Duration = Duration::from_secs(1);
/// How long a service's `/metrics` may take before its CPU is left out of the figures.
pub const METRICS_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Clone)]
pub struct AdminClient {
    http: reqwest::Client,
}

impl AdminClient {
    pub fn new(http: reqwest::Client) -> AdminClient {
        AdminClient { http }
    }

    /// Sends `request` to `url` and answers its response when it is a success.
    async fn send(
        &self,
        what: &'static str,
        url: &str,
        request: reqwest::RequestBuilder,
    ) -> Result<reqwest::Response, AdminError> {
        let response = request
            .send()
            .await
            .map_err(|source| AdminError::Transport {
                what,
                url: url.to_owned(),
                source,
            })?;
        let status = response.status();
        if !status.is_success() {
            let body = response.text().await.unwrap_or_default();
            return Err(AdminError::Refused {
                what,
                url: url.to_owned(),
                status,
                body,
            });
        }
        Ok(response)
    }

    async fn post<B: Serialize>(
        &self,
        what: &'static str,
        url: String,
        body: &B,
    ) -> Result<(), AdminError> {
        let request = self.http.post(&url).json(body).timeout(ADMIN_TIMEOUT);
        self.send(what, &url, request).await.map(|_| ())
    }

    async fn get<T: DeserializeOwned>(
        &self,
        what: &'static str,
        url: String,
    ) -> Result<T, AdminError> {
        let request = self.http.get(&url).timeout(ADMIN_TIMEOUT);
        let response = self.send(what, &url, request).await?;
        response
            .json()
            .await
            .map_err(|source| AdminError::Transport { what, url, source })
    }

    /// Sends a request of the mapped API to the service at `base`: its status and body.
    pub async fn exchange(
        &self,
        base: &str,
        rendered: Rendered,
    ) -> Result<(u16, bytes::Bytes), reqwest::Error> {
        let url = format!("{base}{}", rendered.path);
        let mut request = self
            .http
            .request(rendered.method, &url)
            .timeout(ADMIN_TIMEOUT);
        for (name, value) in rendered.headers {
            request = request.header(name, value);
        }
        if let Some(body) = rendered.body {
            request = request
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(body);
        }
        let response = request.send().await?;
        let status = response.status().as_u16();
        Ok((status, response.bytes().await?))
    }

    /// Polls `{base}/healthz` until it answers 200, for at most `limit`.
    pub async fn wait_healthy(&self, base: &str, limit: Duration) -> Result<(), AdminError> {
        let url = format!("{base}{}", routes::HEALTHZ);
        let started = Instant::now();
        loop {
            let ok = self
                .http
                .get(&url)
                .timeout(Duration::from_secs(1))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success());
            if ok {
                return Ok(());
            }
            if started.elapsed() > limit {
                return Err(AdminError::NotHealthy {
                    url,
                    waited: started.elapsed(),
                });
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Creates the plan's users (`population`): their external accounts with the opening
    /// balance, their ledger accounts at zero, and the links at the coordinator. An
    /// institution without an address is skipped. With `existing` (the books read just
    /// before), an account they already hold is taken as it is, whatever its balance, and
    /// only the missing ones are created (a replay on a system an earlier run seeded).
    pub async fn seed(
        &self,
        endpoints: &Endpoints,
        plan: &RunPlan,
        names: &Names,
        existing: Option<&(Dump, Dump)>,
    ) -> Result<(), AdminError> {
        let missing = |accounts, held: Option<&Dump>| match held {
            Some(dump) => population::not_in(accounts, dump),
            None => accounts,
        };
        let native = |role| endpoints.books.of(role).is_none();
        if let Some(external) = endpoints
            .external
            .as_ref()
            .filter(|_| native(ServiceRole::External))
        {
            let accounts = missing(
                population::external_accounts(plan),
                existing.map(|(external, _)| external),
            );
            if !accounts.accounts.is_empty() {
                let url = format!("{external}{}", routes::ADMIN_ACCOUNTS);
                self.post("seeding external accounts", url, &accounts)
                    .await?;
            }
        }
        if let Some(ledger) = endpoints
            .ledger
            .as_ref()
            .filter(|_| native(ServiceRole::Ledger))
        {
            let accounts = missing(
                population::ledger_accounts(plan),
                existing.map(|(_, ledger)| ledger),
            );
            if !accounts.accounts.is_empty() {
                let url = format!("{ledger}{}", routes::ADMIN_ACCOUNTS);
                self.post("seeding ledger accounts", url, &accounts).await?;
            }
        }
        match &endpoints.api {
            None => {
                let url = format!("{}{}", endpoints.coordinator, routes::ADMIN_USERS);
                self.post("linking users", url, &population::links(plan))
                    .await
            }
            Some(api) => {
                self.create_users(&endpoints.coordinator, api, plan, names)
                    .await
            }
        }
    }

    /// The plan's users created as the mapped API's `users` says: over HTTP (a 2xx creates,
    /// a 409 finds the user there already), or by SQL statements (a unique violation finds
    /// it there). A list of existing users, or nothing said, creates none.
    async fn create_users(
        &self,
        coordinator: &str,
        api: &CompiledApi,
        plan: &RunPlan,
        names: &Names,
    ) -> Result<(), AdminError> {
        let cents = plan.opening_balance.get();
        let users = population::users_of(plan).map(|n| (names.user_id(n), names.account_id(n)));
        match &api.users {
            Some(UserSource::Http(template)) => {
                let requests = users.map(|(user, account)| async move {
                    let vars = user_vars(api, &user, &account, cents);
                    self.create_user(coordinator, template, &vars)
                        .await
                        .map_err(|message| AdminError::CreateUser { user, message })
                });
                let results: Vec<Result<(), AdminError>> = futures_util::stream::iter(requests)
                    .buffer_unordered(USER_CREATIONS_AT_ONCE)
                    .collect()
                    .await;
                results.into_iter().collect()
            }
            Some(UserSource::Sql(databases)) => {
                let users: Vec<(String, String)> = users.collect();
                for statements in databases {
                    let each = users.iter().map(|(user, account)| {
                        (user.clone(), user_vars(api, user, account, cents))
                    });
                    sql::create_users(statements, each)
                        .await
                        .map_err(|(user, message)| AdminError::CreateUser { user, message })?;
                }
                Ok(())
            }
            Some(UserSource::Reuse(_)) | None => Ok(()),
        }
    }

    /// One user created by `template` with its variables `vars`: a 2xx creates, a 409 finds
    /// the user there already; anything else is the answer shown.
    pub async fn create_user(
        &self,
        coordinator: &str,
        template: &RequestTemplate,
        vars: &Vars<'_>,
    ) -> Result<(), String> {
        let rendered = template.render(vars)?;
        let path = rendered.path.clone();
        let (status, body) = self
            .exchange(coordinator, rendered)
            .await
            .map_err(|e| e.to_string())?;
        if (200..300).contains(&status) || status == 409 {
            return Ok(());
        }
        let body = String::from_utf8_lossy(&body);
        Err(format!("{path} answered {status}: {body}"))
    }

    pub async fn dump(&self, base: &str) -> Result<Dump, AdminError> {
        self.get("reading the dump", format!("{base}{}", routes::ADMIN_DUMP))
            .await
    }

    pub async fn sagas(&self, coordinator: &str) -> Result<SagaDump, AdminError> {
        self.get(
            "reading the saga log",
            format!("{coordinator}{}", routes::ADMIN_SAGAS),
        )
        .await
    }

    /// A page of the saga log: the sagas written after change `after_change`
    /// (`GET /admin/sagas?after_change=…`). None when the coordinator keeps no log (404) or
    /// does not page it (it refuses the query, or answers something else, like the whole
    /// log): the caller then reads it whole.
    pub async fn saga_page(
        &self,
        coordinator: &str,
        after_change: i64,
    ) -> Result<Option<SagaPage>, AdminError> {
        let url = format!(
            "{coordinator}{}?after_change={after_change}",
            routes::ADMIN_SAGAS
        );
        self.page("reading the saga log by pages", url).await
    }

    /// A page of an institution's books: the entries and transfer records written after
    /// `cursor` (`GET /admin/dump?after_seq=…&after_change=…`). None when the institution
    /// does not page its books (it refuses the query, or answers something else, like the
    /// whole dump): the caller then reads them whole at the end.
    pub async fn dump_page(
        &self,
        base: &str,
        cursor: DumpCursor,
    ) -> Result<Option<DumpPage>, AdminError> {
        let url = format!(
            "{base}{}?after_seq={}&after_change={}",
            routes::ADMIN_DUMP,
            cursor.after_seq,
            cursor.after_change
        );
        self.page("reading the books by pages", url).await
    }

    /// `GET url` read as a page `T`; None when the service has no such route (404), refuses
    /// the query (400) or answers something that is not a page.
    async fn page<T: DeserializeOwned>(
        &self,
        what: &'static str,
        url: String,
    ) -> Result<Option<T>, AdminError> {
        let request = self.http.get(&url).timeout(ADMIN_TIMEOUT);
        match self.send(what, &url, request).await {
            Ok(response) => {
                let body = response
                    .bytes()
                    .await
                    .map_err(|source| AdminError::Transport { what, url, source })?;
                Ok(serde_json::from_slice(&body).ok())
            }
            Err(AdminError::Refused { status, .. })
                if status == reqwest::StatusCode::NOT_FOUND
                    || status == reqwest::StatusCode::BAD_REQUEST =>
            {
                Ok(None)
            }
            Err(err) => Err(err),
        }
    }

    /// The saga log, or None when the coordinator keeps none (`GET /admin/sagas` answers
    /// 404): another system may not.
    pub async fn sagas_if_kept(&self, coordinator: &str) -> Result<Option<SagaDump>, AdminError> {
        let url = format!("{coordinator}{}", routes::ADMIN_SAGAS);
        self.get_optional("reading the saga log", url, ADMIN_TIMEOUT)
            .await
    }

    /// An institution's totals (`GET /admin/totals`), for sampling: a short timeout, so a
    /// paused service costs one sample, not the sampler.
    pub async fn totals(&self, base: &str) -> Result<Totals, AdminError> {
        let url = format!("{base}{}", routes::ADMIN_TOTALS);
        let request = self.http.get(&url).timeout(SAMPLE_TIMEOUT);
        let response = self.send("reading the totals", &url, request).await?;
        response
            .json()
            .await
            .map_err(|source| AdminError::Transport {
                what: "reading the totals",
                url,
                source,
            })
    }

    /// The totals of institution `role`, for sampling: its `/admin/totals`, or its `books:`
    /// source's balances.
    pub async fn institution_totals(
        &self,
        endpoints: &Endpoints,
        role: ServiceRole,
    ) -> Result<Totals, AdminError> {
        match (endpoints.books.of(role), endpoints.of(role)) {
            (Some(source), _) => books::totals(source, role, &self.http, SAMPLE_TIMEOUT)
                .await
                .map_err(|message| AdminError::Books {
                    role: role.as_str(),
                    message,
                }),
            (None, Some(base)) => self.totals(base).await,
            (None, None) => Err(AdminError::Books {
                role: role.as_str(),
                message: "no URL and no books: source".into(),
            }),
        }
    }

    /// `GET url` read as `T`; None when the service answers 404 (it does not know the thing,
    /// or has no such route).
    async fn get_optional<T: DeserializeOwned>(
        &self,
        what: &'static str,
        url: String,
        timeout: Duration,
    ) -> Result<Option<T>, AdminError> {
        let request = self.http.get(&url).timeout(timeout);
        match self.send(what, &url, request).await {
            Ok(response) => response
                .json()
                .await
                .map(Some)
                .map_err(|source| AdminError::Transport { what, url, source }),
            Err(AdminError::Refused { status, .. }) if status == reqwest::StatusCode::NOT_FOUND => {
                Ok(None)
            }
            Err(err) => Err(err),
        }
    }

    /// The coordinator's money in flight (`GET /admin/in-flight`); None when it keeps no saga
    /// log.
    pub async fn in_flight(&self, coordinator: &str) -> Result<Option<InFlight>, AdminError> {
        let url = format!("{coordinator}{}", routes::ADMIN_IN_FLIGHT);
        self.get_optional("reading the money in flight", url, SAMPLE_TIMEOUT)
            .await
    }

    /// `GET /transfers/{id}` at the coordinator; None when it does not know the id. The
    /// answer's status follows the transfer's (200 completed, 202 pending, 422 failed), so
    /// each of them carries a transfer.
    pub async fn transfer(
        &self,
        coordinator: &str,
        transfer_id: &str,
    ) -> Result<Option<TransferView>, AdminError> {
        const WHAT: &str = "reading a transfer";
        let path = routes::with_transfer_id(routes::TRANSFER, transfer_id);
        let url = format!("{coordinator}{path}");
        let request = self.http.get(&url).timeout(ADMIN_TIMEOUT);
        match self.send(WHAT, &url, request).await {
            Ok(response) => {
                response
                    .json()
                    .await
                    .map(Some)
                    .map_err(|source| AdminError::Transport {
                        what: WHAT,
                        url,
                        source,
                    })
            }
            Err(AdminError::Refused { status, .. }) if status == reqwest::StatusCode::NOT_FOUND => {
                Ok(None)
            }
            Err(AdminError::Refused {
                status, body, url, ..
            }) if status == reqwest::StatusCode::UNPROCESSABLE_ENTITY => {
                serde_json::from_str(&body)
                    .map(Some)
                    .map_err(|e| AdminError::Refused {
                        what: WHAT,
                        url,
                        status,
                        body: format!("{body} (not a transfer: {e})"),
                    })
            }
            Err(err) => Err(err),
        }
    }

    /// Both institutions' books, the ledger read first: every credit seen then has its debit
    /// already applied. None when an institution has no address.
    pub async fn books(&self, endpoints: &Endpoints) -> Result<Option<(Dump, Dump)>, AdminError> {
        if !endpoints.books_readable() {
            return Ok(None);
        }
        let ledger = self.book(endpoints, ServiceRole::Ledger).await?;
        let external = self.book(endpoints, ServiceRole::External).await?;
        Ok(Some((external, ledger)))
    }

    /// One institution's books: from its `books:` source, else its `/admin/dump`.
    async fn book(&self, endpoints: &Endpoints, role: ServiceRole) -> Result<Dump, AdminError> {
        let unreadable = |message: String| AdminError::Books {
            role: role.as_str(),
            message,
        };
        match (endpoints.books.of(role), endpoints.of(role)) {
            (Some(source), _) => books::read(source, role, &self.http)
                .await
                .map_err(unreadable),
            (None, Some(base)) => self.dump(base).await,
            (None, None) => Err(unreadable("no URL and no books: source".into())),
        }
    }

    /// Saves each service's `/metrics` (Prometheus text: operations by outcome, the store's
    /// commits) as `<role>.metrics` in `out`. Counters run from the service's last start. A
    /// service that does not answer is skipped: the figures are evidence, not a check.
    pub async fn save_metrics(&self, endpoints: &Endpoints, out: &Path) {
        for role in ServiceRole::ALL {
            let Some(base) = endpoints.of(role) else {
                continue;
            };
            if let Some(text) = self.metrics(base, role).await {
                let path = out.join(format!("{}.metrics", role.as_str()));
                if let Err(err) = std::fs::write(path, text) {
                    tracing::warn!(role = role.as_str(), %err, "cannot save metrics");
                }
            }
        }
    }

    /// The `/metrics` text of the service `role` at `base`; None when it does not answer
    /// with one (`/metrics` is not required of another system).
    pub async fn metrics(&self, base: &str, role: ServiceRole) -> Option<String> {
        let url = format!("{base}{}", routes::METRICS);
        let answer = self.http.get(&url).timeout(METRICS_TIMEOUT).send().await;
        let text = match answer {
            Ok(response) if response.status().is_success() => response.text().await,
            Ok(response) => {
                tracing::debug!(role = role.as_str(), status = %response.status(), "no metrics");
                return None;
            }
            Err(err) => Err(err),
        };
        text.map_err(|err| tracing::debug!(role = role.as_str(), %err, "metrics not readable"))
            .ok()
    }
}
