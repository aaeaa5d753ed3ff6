//! The merchant's side of the API, over HTTP.

use std::time::{Duration, Instant};

use serde_json::Value;

/// How often the waits ask again.
const POLL_EVERY: Duration = Duration::from_millis(100);

/// A bearer-key client of one cashout base URL.
#[derive(Clone)]
pub struct Api {
    http: reqwest::Client,
    base: String,
}

/// An answer: status code and JSON body (`Null` when not JSON or unreadable).
pub type Answer = (u16, Value);

impl Api {
    /// A client of `base` (`http://127.0.0.1:8080`).
    pub fn new(base: &str) -> Api {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .pool_max_idle_per_host(64)
            .build()
            .unwrap_or_else(|_| reqwest::Client::new());
        Api {
            http,
            base: base.trim_end_matches('/').to_owned(),
        }
    }

    /// The base URL.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// Any call. A transport failure (the server is down) is status 0.
    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        key: &str,
        body: Option<&Value>,
        idempotency_key: Option<&str>,
    ) -> Answer {
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(key);
        if let Some(k) = idempotency_key {
            req = req.header("Idempotency-Key", k);
        }
        if let Some(b) = body {
            req = req.json(b);
        }
        match req.send().await {
            Ok(res) => {
                let status = res.status().as_u16();
                let text = res.text().await.unwrap_or_default();
                (status, serde_json::from_str(&text).unwrap_or(Value::Null))
            }
            Err(_) => (0, Value::Null),
        }
    }

    /// `GET`.
    pub async fn get(&self, path: &str, key: &str) -> Answer {
        self.call(reqwest::Method::GET, path, key, None, None).await
    }

    /// `POST` with an optional JSON body.
    pub async fn post(&self, path: &str, key: &str, body: Option<&Value>) -> Answer {
        self.call(reqwest::Method::POST, path, key, body, None).await
    }

    /// GETs `path` every 100 ms until `done` takes the answer, or `within` passes (`Err`: the
    /// last answer).
    pub async fn get_until<T>(
        &self,
        path: &str,
        key: &str,
        within: Duration,
        mut done: impl FnMut(&Answer) -> Option<T>,
    ) -> Result<T, Answer> {
        let deadline = Instant::now() + within;
        loop {
            let answer = self.get(path, key).await;
            if let Some(t) = done(&answer) {
                return Ok(t);
            }
            if Instant::now() >= deadline {
                return Err(answer);
            }
            tokio::time::sleep(POLL_EVERY).await;
        }
    }

    /// Waits until request `id` has `status`, `within` at most; any answer but 200 ends the wait
    /// (the request must stay readable all along).
    pub async fn wait_for_status(&self, id: &str, key: &str, status: &str, within: Duration) -> Result<Value, String> {
        let path = format!("/v1/cashout-requests/{id}");
        let waited = self
            .get_until(&path, key, within, |(code, r)| match code {
                200 if r["status"] == status => Some(Ok(r.clone())),
                200 => None,
                _ => Some(Err(format!("reading request {id} answered {code}: {r}"))),
            })
            .await;
        waited.unwrap_or_else(|(_, r)| {
            Err(format!(
                "request {id} is {} after {within:?}, expected {status}",
                r["status"]
            ))
        })
    }

    /// `POST /v1/cashout-requests`. Each idempotency key advances invoices of its own: a hash
    /// of the key is appended to the payers' tax ids, since cashout refuses an invoice that an
    /// open or paid request holds and the harnesses send one body many times.
    pub async fn create(&self, key: &str, idempotency_key: &str, body: &Value) -> Answer {
        let body = with_own_invoices(body, idempotency_key);
        self.call(
            reqwest::Method::POST,
            "/v1/cashout-requests",
            key,
            Some(&body),
            Some(idempotency_key),
        )
        .await
    }

    /// `POST /v1/cashout-requests` with `body` as it is: status, the created request's id (empty
    /// when none) and `Retry-After` in seconds; `Err` on a transport failure.
    pub async fn create_raw(
        &self,
        key: &str,
        idempotency_key: &str,
        body: &Value,
    ) -> Result<(u16, String, Option<u64>), reqwest::Error> {
        let res = self
            .http
            .post(format!("{}/v1/cashout-requests", self.base))
            .bearer_auth(key)
            .header("Idempotency-Key", idempotency_key)
            .json(body)
            .send()
            .await?;
        let status = res.status().as_u16();
        let retry_after = res
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok());
        let body: Value = res.json().await.unwrap_or(Value::Null);
        Ok((status, body["id"].as_str().unwrap_or_default().to_owned(), retry_after))
    }

    /// `GET /v1/statements?{query}` without `limit`: the whole statement, streamed by the
    /// server and read here to its end, as JSON (lines and totals); `Err` with the status and
    /// the start of the body when it is not a 200, or when the transfer was cut.
    pub async fn statement(&self, key: &str, query: &str) -> Result<Value, String> {
        let what = format!("GET /v1/statements?{query}");
        let res = self
            .http
            .get(format!("{}/v1/statements?{query}", self.base))
            .bearer_auth(key)
            .timeout(Duration::from_secs(600))
            .send()
            .await
            .map_err(|e| format!("{what}: {e}"))?;
        let status = res.status().as_u16();
        let text = res.text().await.map_err(|e| format!("{what}: the body was cut: {e}"))?;
        if status != 200 {
            let head: String = text.chars().take(300).collect();
            return Err(format!("{what} answered {status}: {head}"));
        }
        serde_json::from_str(&text).map_err(|e| format!("{what}: not JSON ({e})"))
    }

    /// Registers an endpoint; returns its id and secret.
    pub async fn register_endpoint(
        &self,
        key: &str,
        url: &str,
        event_types: &[&str],
    ) -> Result<(String, String), String> {
        let body = if event_types.is_empty() {
            serde_json::json!({ "url": url })
        } else {
            serde_json::json!({ "url": url, "event_types": event_types })
        };
        let (code, ep) = self.post("/v1/webhook-endpoints", key, Some(&body)).await;
        match (code, ep["id"].as_str(), ep["secret"].as_str()) {
            (201, Some(id), Some(secret)) => Ok((id.to_owned(), secret.to_owned())),
            _ => Err(format!("registering {url}: {code} {ep}")),
        }
    }
}

/// `body` with the idempotency key's hash appended to each payer's tax id (at most 14 + 17
/// characters: tax ids are at most 32).
pub fn with_own_invoices(body: &Value, idempotency_key: &str) -> Value {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    idempotency_key.hash(&mut hasher);
    let tag = hasher.finish();
    let mut body = body.clone();
    if let Some(invoices) = body["invoices"].as_array_mut() {
        for invoice in invoices {
            if let Some(tax_id) = invoice["payer"]["tax_id"].as_str() {
                let short: String = tax_id.chars().take(14).collect();
                invoice["payer"]["tax_id"] = Value::String(format!("{short}-{tag:016x}"));
            }
        }
    }
    body
}
