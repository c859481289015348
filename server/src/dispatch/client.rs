//! The one place Herald opens connections to receivers: one HTTP client for the whole process
//! (connections to receivers stay alive between deliveries), no redirects, no proxy, a timeout,
//! and the egress policy on every connection (`crate::egress`).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use serde_json::{Map, Value};

use crate::config::EgressConfig;
use crate::egress::{GuardedResolver, Policy, Refusal};

/// The first this many bytes of a response body are kept.
pub const MAX_RESPONSE_BODY: usize = 64 * 1024;

/// Response headers kept with an attempt: the ones that explain an outcome.
const KEPT_HEADERS: &[&str] = &[
    "content-type",
    "content-length",
    "retry-after",
    "location",
    "x-request-id",
];

#[derive(Clone)]
pub struct WebhookClient {
    http: reqwest::Client,
    timeout: Duration,
    policy: Arc<Policy>,
}

/// What a custom header's value is recorded as: custom headers carry receivers' credentials.
pub const MASKED: &str = "********";

const USER_AGENT: &str = concat!("Herald/", env!("CARGO_PKG_VERSION"));

/// A request to send: the URL and every header, already signed.
pub struct WebhookRequest {
    pub url: String,
    /// The destination's own headers. Their values are secrets: sent as they are, recorded masked.
    pub custom_headers: Vec<(String, String)>,
    /// Herald's headers (the Standard Webhooks ones), recorded as sent.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

/// The headers a request carries, and the same as a JSON object of lower-case name to value with
/// every custom header value masked: what an attempt records. Both come from one map, so the
/// record cannot drift from what is sent.
fn request_headers(req: &WebhookRequest) -> (HeaderMap, Map<String, Value>) {
    let mut headers = HeaderMap::with_capacity(req.custom_headers.len() + req.headers.len() + 2);
    headers.insert(
        reqwest::header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    headers.insert(
        reqwest::header::USER_AGENT,
        HeaderValue::from_static(USER_AGENT),
    );
    let mut secret = std::collections::HashSet::new();
    let own = req.headers.iter().map(|h| (h, false));
    for ((name, value), is_secret) in req.custom_headers.iter().map(|h| (h, true)).chain(own) {
        // Validation keeps bad names and values out of the database; a stored one that still
        // fails here is skipped rather than failing the delivery.
        if let (Ok(n), Ok(v)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(value),
        ) {
            if is_secret {
                secret.insert(n.clone());
            }
            headers.insert(n, v);
        }
    }
    let mut recorded = Map::new();
    for (name, value) in &headers {
        // A name that ever held a secret stays masked, whatever replaced it.
        let shown = if secret.contains(name) {
            MASKED.to_owned()
        } else {
            String::from_utf8_lossy(value.as_bytes()).into_owned()
        };
        recorded.insert(name.as_str().to_owned(), Value::String(shown));
    }
    (headers, recorded)
}

/// Why an attempt got no usable answer, as a closed set (metrics and logs use it; the message in
/// `error` is for people).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// No answer within the delivery timeout.
    Timeout,
    /// The egress policy refused the address (or plain http, with `HERALD_REQUIRE_HTTPS`).
    Refused,
    /// Anything else on the way: DNS, connection refused or reset, TLS.
    Network,
}

/// What came back, or why nothing did.
#[derive(Debug, Clone)]
pub struct WebhookResponse {
    pub started_at: DateTime<Utc>,
    pub duration: Duration,
    pub status: Option<u16>,
    pub body: Option<String>,
    pub truncated: bool,
    pub headers: Option<Value>,
    /// The network-level cause when there is no status.
    pub error: Option<String>,
    /// The kind of failure when there is no status.
    pub failure: Option<Failure>,
    /// The URL the request went to (or was refused for).
    pub url: String,
    /// The request's headers by lower-case name, custom header values masked.
    pub request_headers: Map<String, Value>,
}

impl WebhookResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.as_ref()?.get(name)?.as_str()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("cannot build the HTTP client: {0}")]
    Build(#[from] reqwest::Error),
    #[error("HERALD_CA_BUNDLE: cannot read {path}: {source}")]
    ReadCaBundle {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("HERALD_CA_BUNDLE: {path} holds no PEM certificate ({detail})")]
    BadCaBundle { path: PathBuf, detail: String },
}

impl WebhookClient {
    pub fn new(timeout: Duration, egress: &EgressConfig) -> Result<Self, ClientError> {
        let policy = Arc::new(egress.policy());
        let mut builder = reqwest::Client::builder();
        if let Some(path) = &egress.ca_bundle {
            let pem = std::fs::read(path).map_err(|source| ClientError::ReadCaBundle {
                path: path.clone(),
                source,
            })?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem)
                .ok()
                .filter(|c| !c.is_empty())
                .ok_or_else(|| ClientError::BadCaBundle {
                    path: path.clone(),
                    detail: "expected -----BEGIN CERTIFICATE----- blocks".into(),
                })?;
            builder = builder.tls_certs_merge(certs);
        }
        let http = builder
            // The resolver is where the egress policy is enforced for host names; a proxy from
            // the environment would resolve names itself and bypass it.
            .dns_resolver(Arc::new(GuardedResolver::new(policy.clone())))
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(USER_AGENT)
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(10)))
            .pool_idle_timeout(Duration::from_secs(90))
            .pool_max_idle_per_host(64)
            .tcp_nodelay(true)
            .build()?;
        Ok(WebhookClient {
            http,
            timeout,
            policy,
        })
    }

    /// The egress policy this client enforces; the API checks URLs with the same one.
    pub fn policy(&self) -> &Arc<Policy> {
        &self.policy
    }

    pub async fn send(&self, req: WebhookRequest) -> WebhookResponse {
        let started_at = super::super::store::now();
        let clock = Instant::now();
        let (headers, request_headers) = request_headers(&req);
        // Literal addresses never reach the resolver, so they are checked here; the URL was
        // checked when written, but the allowed networks may have changed since.
        if let Err(refusal) = self.policy.check_url(&req.url) {
            return WebhookResponse {
                started_at,
                duration: clock.elapsed(),
                status: None,
                body: None,
                truncated: false,
                headers: None,
                error: Some(refusal.to_string()),
                failure: Some(Failure::Refused),
                url: req.url,
                request_headers,
            };
        }
        let result = self
            .http
            .post(&req.url)
            .headers(headers)
            .body(req.body)
            .send()
            .await;
        let mut out = WebhookResponse {
            started_at,
            duration: Duration::ZERO,
            status: None,
            body: None,
            truncated: false,
            headers: None,
            error: None,
            failure: None,
            url: req.url,
            request_headers,
        };
        match result {
            Err(e) => {
                out.error = Some(self.describe(&e));
                out.failure = Some(classify(&e));
            }
            Ok(mut resp) => {
                out.status = Some(resp.status().as_u16());
                let mut kept = Map::new();
                for name in KEPT_HEADERS {
                    if let Some(v) = resp.headers().get(*name).and_then(|v| v.to_str().ok()) {
                        kept.insert((*name).to_owned(), Value::String(v.to_owned()));
                    }
                }
                out.headers = Some(Value::Object(kept));
                let mut body = Vec::new();
                loop {
                    match resp.chunk().await {
                        Ok(Some(chunk)) => {
                            let room = MAX_RESPONSE_BODY - body.len();
                            if chunk.len() > room {
                                body.extend_from_slice(&chunk[..room]);
                                out.truncated = true;
                                break;
                            }
                            body.extend_from_slice(&chunk);
                        }
                        Ok(None) => break,
                        Err(e) => {
                            // The status arrived; a body cut short is kept as far as it came.
                            out.error =
                                Some(format!("reading the response: {}", self.describe(&e)));
                            break;
                        }
                    }
                }
                // Stored as text: bytes that are not UTF-8 become U+FFFD, and so does NUL, which
                // is UTF-8 but which PostgreSQL's text cannot hold (the attempt would never be
                // recorded, and the delivery would be sent again and again).
                out.body = Some(String::from_utf8_lossy(&body).replace('\0', "\u{fffd}"));
            }
        }
        out.duration = clock.elapsed();
        out
    }

    fn describe(&self, e: &reqwest::Error) -> String {
        if e.is_timeout() {
            return format!("timed out after {}s", self.timeout.as_secs_f64());
        }
        // A refusal by the egress policy is the whole story; the layers around it add nothing.
        let mut source = std::error::Error::source(e);
        while let Some(s) = source {
            if let Some(refusal) = s.downcast_ref::<Refusal>() {
                return refusal.to_string();
            }
            source = s.source();
        }
        // reqwest's own message is generic ("error sending request"); the cause is in the chain.
        let mut msg = e.to_string();
        let mut source = std::error::Error::source(e);
        while let Some(s) = source {
            msg.push_str(": ");
            msg.push_str(&s.to_string());
            source = s.source();
        }
        if let Some(url) = e.url() {
            msg = msg.replace(&format!(" for url ({url})"), "");
        }
        msg
    }
}

/// The kind of a request that got no status: the egress refusal is found in the error's chain
/// (the resolver raised it), as in `describe`.
fn classify(e: &reqwest::Error) -> Failure {
    if e.is_timeout() {
        return Failure::Timeout;
    }
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        if s.downcast_ref::<Refusal>().is_some() {
            return Failure::Refused;
        }
        source = s.source();
    }
    Failure::Network
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recorded_headers_mask_every_custom_value_and_keep_heralds() {
        let req = WebhookRequest {
            url: "https://example.test/hook".into(),
            custom_headers: vec![
                ("X-Api-Key".into(), "k-123".into()),
                ("User-Agent".into(), "receiver-wants-this".into()),
            ],
            headers: vec![
                ("webhook-id".into(), "msg_1".into()),
                ("webhook-timestamp".into(), "1700000000".into()),
                ("webhook-signature".into(), "v1,abc=".into()),
            ],
            body: b"{}".to_vec(),
        };
        let (sent, recorded) = request_headers(&req);
        assert_eq!(sent["x-api-key"], "k-123", "the real value is sent");
        assert_eq!(sent["user-agent"], "receiver-wants-this");
        assert_eq!(
            Value::Object(recorded),
            serde_json::json!({
                "content-type": "application/json",
                "user-agent": MASKED,
                "x-api-key": MASKED,
                "webhook-id": "msg_1",
                "webhook-timestamp": "1700000000",
                "webhook-signature": "v1,abc=",
            })
        );
    }
}
