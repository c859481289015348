//! Malformed requests against a real `herald serve`: more than ten thousand of them over the two
//! backends (see [`plan`]), with an admin token, a viewer token, a bogus one and none, to
//! `/graphql`, `/graphql/ws` and `/v1/alerts`. Every
//! one must be answered (no reset, no dropped WebSocket) with a status below 500, the server must
//! stay healthy, and the destinations, alerts and deliveries stored before must read back byte for
//! byte the same.
//!
//! The requests come from a seeded generator: mutations of the real operations in `schema.graphql`
//! and of Panther's payload (wrong types, bad enum values, bad ids and cursors, unknown fields,
//! deep nesting, many aliases, huge strings, invalid UTF-8, truncated JSON), plus plain random
//! bytes. The seed is printed; `HERALD_FUZZ_SEED=0x… cargo test -p herald-testkit --test e2e fuzz`
//! replays a run (each worker draws from its own generator, so a request's content depends only
//! on the seed, the worker and its index, all of which a failure names).
//!
//! Data safety without a blind spot: mutations never carry a real id (only read-only queries do),
//! so nothing stored before can be updated, deleted, rotated or re-sent. A mutation that happens
//! to stay valid (an admin `createDestination` or `sendAlert` whose mutation left it well-formed)
//! may add records; the check reads every record stored before, one by one, and compares the
//! answers as JSON values (every string and number byte for byte, keys in any order).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::{SinkExt, StreamExt};
use herald_testkit::{Backend, GraphqlClient, Receiver, Reply, fresh_database_url};
use rand::rngs::StdRng;
use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};
use reqwest::Method;
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, HeaderValue};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use crate::process::{HeraldProcess, herald, tokens_in};

/// "HERALD" in ASCII; any other seed comes from `HERALD_FUZZ_SEED`.
const DEFAULT_SEED: u64 = 0x4845_5241_4c44;
/// Concurrent keep-alive HTTP connections, and concurrent WebSocket clients.
const HTTP_WORKERS: usize = 8;
const WS_WORKERS: usize = 2;

/// Requests on each HTTP connection, and sessions (one upgrade and a few frames each) per
/// WebSocket client. Most run on SQLite; PostgreSQL gets half as many, since the malformed
/// requests rarely reach the store and the server code in front of it is the same. Together:
/// 8,400 + 4,200 = 12,600 requests, in under half a minute on an idle machine (debug build).
fn plan(backend: Backend) -> (usize, usize) {
    match backend {
        Backend::Sqlite => (1_000, 200),
        Backend::Postgres => (500, 100),
    }
}
/// Everything the fuzz phase may take before the test gives up on it.
const FUZZ_BUDGET: Duration = Duration::from_secs(480);
/// A placeholder string in a generated JSON value, replaced by raw JSON text after serializing
/// (nesting deeper than serde_json writes, lone surrogates, numbers JSON cannot hold).
const RAW: &str = "@@FUZZ-RAW@@";

const DESTINATION_FIELDS: &str = "id displayName url severities alertTypes customHeaders { name value } logTypes rateLimitPerMinute enabled autoDisableAfterFailures disabledReason disabledAt signingSecret createdAt updatedAt";
const DELIVERY_FIELDS: &str = "id alertId destinationId label state success statusCode responseBody message attemptCount attempts { number startedAt durationMs statusCode responseBody responseTruncated responseHeaders error url requestHeaders } nextAttemptAt webhookId resendOf test createdAt dispatchedAt";
const ALERT_FIELDS: &str =
    "id detectionId title severity type createdAt receivedAt payload logTypes";

/// What the generator may point at. Real ids appear only in read-only operations.
struct World {
    /// Requests answered so far, over all workers (for the progress line).
    done: std::sync::atomic::AtomicUsize,
    /// What each worker is waiting on, since when (for the progress line).
    in_flight: std::sync::Mutex<BTreeMap<u64, (Instant, String)>>,
    base_url: String,
    admin: String,
    viewer: String,
    receiver_url: String,
    destination_ids: Vec<String>,
    alert_ids: Vec<String>,
    delivery_ids: Vec<String>,
    cursors: Vec<String>,
}

#[derive(Debug, Clone, Copy)]
enum Auth {
    Admin,
    Viewer,
    Anonymous,
    Bogus,
}

/// One HTTP request to send, and how to describe it in a failure.
struct HttpRequest {
    method: Method,
    path: String,
    auth: Auth,
    authorization: Option<HeaderValue>,
    content_type: Option<&'static str>,
    body: Vec<u8>,
    /// Endpoint and base operation, for the summary: `graphql sendAlert`.
    kind: String,
    /// The mutations applied.
    what: Vec<&'static str>,
}

/// One WebSocket session: the upgrade's headers, then frames.
struct WsSession {
    protocol: Option<&'static str>,
    auth: Auth,
    authorization: Option<HeaderValue>,
    frames: Vec<Message>,
    what: Vec<&'static str>,
}

struct Gen<'w> {
    rng: StdRng,
    w: &'w World,
    serial: u64,
}

impl<'w> Gen<'w> {
    fn new(seed: u64, worker: u64, w: &'w World) -> Self {
        Gen {
            rng: StdRng::seed_from_u64(seed ^ worker.wrapping_mul(0x9E37_79B9_7F4A_7C15)),
            w,
            serial: 0,
        }
    }

    fn below(&mut self, n: usize) -> usize {
        self.rng.random_range(0..n)
    }

    fn chance(&mut self, p: f64) -> bool {
        self.rng.random_bool(p)
    }

    fn pick<T: Clone>(&mut self, items: &[T]) -> T {
        items.choose(&mut self.rng).expect("non-empty").clone()
    }

    fn bytes(&mut self, n: usize) -> Vec<u8> {
        let mut b = vec![0u8; n];
        self.rng.fill(&mut b[..]);
        b
    }

    fn ascii(&mut self, n: usize) -> String {
        (0..n)
            .map(|_| char::from(self.rng.random_range(0x20u8..0x7f)))
            .collect()
    }

    /// Lengths around the limits, where the bugs are: mostly a few KiB; then either side of the
    /// 64 KiB document limit, of the 200 KiB alert context, and (rarely: a body over it is
    /// uploaded only to be drained) of the 1 MiB body and WebSocket message limit. Past a limit
    /// the server answers without reading further, so more bytes there would test nothing new.
    fn huge_len(&mut self) -> usize {
        match self.below(100) {
            0..=1 => self
                .rng
                .random_range((1 << 20) - (8 << 10)..(1 << 20) + (64 << 10)),
            2..=7 => self.rng.random_range(190 << 10..260 << 10),
            8..=19 => self.rng.random_range(60 << 10..70 << 10),
            _ => self.rng.random_range(1 << 10..16 << 10),
        }
    }

    /// For GraphQL text: either side of the 64 KiB document limit, now and then past the 1 MiB
    /// body limit.
    fn huge_text_len(&mut self) -> usize {
        match self.below(100) {
            0..=2 => self.rng.random_range(1 << 20..(1 << 20) + (64 << 10)),
            3..=59 => self.rng.random_range(60 << 10..70 << 10),
            _ => self.rng.random_range(1 << 10..60 << 10),
        }
    }

    /// Either side of serde_json's recursion limit (128) and the GraphQL depth limit, and far
    /// past both (parsers stop at the limit, so deeper costs the test without testing more).
    fn nesting_depth(&mut self) -> usize {
        self.pick(&[13, 64, 127, 129, 1_000, 20_000])
    }

    /// Log types a destination or an alert may not name: each rule of `validate_log_types`.
    fn bad_log_types(&mut self) -> Value {
        match self.below(9) {
            0 => json!(["AWS.CloudTrail", "Okta.SystemLog", "AWS CloudTrail"]),
            1 => json!(["A.B", "A.B"]),
            2 => Value::Array((0..101).map(|i| json!(format!("Custom.T{i}"))).collect()),
            3 => json!([""]),
            4 => json!(["L".repeat(129)]),
            5 => json!(["AWS.S3\u{0}", "Okta-SystemLog"]),
            6 => json!([1, null]),
            7 => json!("AWS.S3"),
            _ => json!([self.weird_string()]),
        }
    }

    fn real_destination(&mut self) -> String {
        let ids = &self.w.destination_ids;
        ids[self.below(ids.len())].clone()
    }

    fn real_alert(&mut self) -> String {
        let ids = &self.w.alert_ids;
        ids[self.below(ids.len())].clone()
    }

    fn real_delivery(&mut self) -> String {
        let ids = &self.w.delivery_ids;
        ids[self.below(ids.len())].clone()
    }

    fn real_id(&mut self) -> String {
        match self.below(3) {
            0 => self.real_destination(),
            1 => self.real_alert(),
            _ => self.real_delivery(),
        }
    }

    /// An id that names nothing stored: never a real id, though it may look like one.
    fn bad_id(&mut self) -> String {
        match self.below(14) {
            0 => String::new(),
            1 => "dst_".into(),
            2 => format!("dst_{}", hex(&self.bytes(16))),
            3 => format!("dlv_{}", hex(&self.bytes(16))),
            4 => hex(&self.bytes(16)),
            5 => {
                // A real id with one character more or one less.
                let mut id = self.real_id();
                if self.chance(0.5) {
                    id.pop();
                } else {
                    id.push('0');
                }
                id
            }
            6 => format!("{}x", self.real_id().to_uppercase()),
            7 => "' OR '1'='1".into(),
            8 => "../../../etc/passwd".into(),
            9 => "dst_\u{0}\u{202e}🦀".into(),
            10 => "x".repeat(self.huge_len()),
            11 => "-1".into(),
            12 => "SKIP".into(),
            _ => self.weird_string(),
        }
    }

    fn bad_cursor(&mut self) -> String {
        match self.below(12) {
            0 => String::new(),
            1 => "|".into(),
            2 => "2024-13-45T25:61:61Z|x".into(),
            3 => "9999-12-31T23:59:59Z|".into(),
            4 => "-262144-01-01T00:00:00Z|zzz".into(),
            5 => {
                let mut c = self.pick(&self.w.cursors);
                c.truncate(self.below(c.len() + 1));
                c
            }
            6 => format!("{}{}", self.pick(&self.w.cursors), self.weird_string()),
            7 => hex(&self.bytes(24)),
            8 => "YWJj".into(),
            9 => "c".repeat(self.huge_len()),
            10 => self.bad_id(),
            _ => self.weird_string(),
        }
    }

    fn weird_string(&mut self) -> String {
        match self.below(10) {
            0 => String::new(),
            1 => " \t\n ".into(),
            2 => "\u{0}\u{1}\u{7f}\r\nX-Injected: 1".into(),
            3 => "\u{202e}\u{200b}\u{feff}🦀👩‍👩‍👧".into(),
            4 => "'; DROP TABLE destinations; --".into(),
            5 => "%00%0d%0a".into(),
            6 => "${jndi:ldap://127.0.0.1/a}{{7*7}}".into(),
            7 => "\\\"\\u0000\"".into(),
            8 => {
                let n = self.rng.random_range(1..64);
                self.ascii(n)
            }
            _ => "A".repeat(self.huge_len()),
        }
    }

    fn bad_enum(&mut self) -> Value {
        match self.below(8) {
            0 => json!("SEVERE"),
            1 => json!("high"),
            2 => json!(""),
            3 => json!("HIGH "),
            4 => json!("RULE"),
            5 => json!(3),
            6 => json!(["HIGH", "NOPE"]),
            _ => json!("CRITICAL\u{0}"),
        }
    }

    fn bad_time(&mut self) -> Value {
        self.pick(&[
            json!("2024-02-30T00:00:00Z"),
            json!("yesterday"),
            json!(""),
            json!(1_700_000_000),
            json!("+275760-09-13T00:00:00Z"),
            json!("2024-01-01T00:00:00+99:99"),
            json!("2024-01-01 00:00:00"),
            json!("Mon, 01 Jan 2024 00:00:00 GMT"),
        ])
    }

    /// Nested JSON text `depth` levels deep, now and then left unclosed.
    fn deep_json(&mut self) -> String {
        let depth = self.nesting_depth();
        let (open, close) = if self.chance(0.5) {
            ("[", "]")
        } else {
            ("{\"a\":", "}")
        };
        let closers = if self.chance(0.1) { 0 } else { depth };
        format!("{}1{}", open.repeat(depth), close.repeat(closers))
    }

    /// A value of another JSON type than `v`.
    fn other_type(&mut self, v: &Value) -> Value {
        let options = [
            json!(42),
            json!(-1.5),
            json!(true),
            json!("text"),
            json!([1, "two", null]),
            json!({"nested": {"x": 1}}),
            json!([]),
            json!({}),
        ];
        loop {
            let o = self.pick(&options);
            if std::mem::discriminant(&o) != std::mem::discriminant(v) {
                return o;
            }
        }
    }

    /// Applies one mutation to a node of `v`; raw text for the [`RAW`] placeholder goes in `raw`.
    fn mutate_value(&mut self, v: &mut Value, raw: &mut Option<String>) -> &'static str {
        let mut paths = Vec::new();
        pointers(v, String::new(), &mut paths);
        let path = self.pick(&paths);
        let choice = self.below(14);
        if choice == 4 {
            if let Some((parent, key)) = path.rsplit_once('/')
                && let Some(Value::Object(m)) = v.pointer_mut(parent)
            {
                m.remove(key);
            } else {
                *v = Value::Null;
            }
            return "missing field";
        }
        let node = v.pointer_mut(&path).expect("the path was just listed");
        match choice {
            0 => {
                *node = self.other_type(node);
                "wrong type"
            }
            1 => {
                *node = self.bad_enum();
                "bad enum"
            }
            2 => {
                *node = json!("A".repeat(self.huge_len()));
                "huge string"
            }
            3 => {
                let key = self.pick(&["bogusField", "__typename", "id", "", "severity"]);
                let value = self.other_type(&Value::Null);
                match node {
                    Value::Object(m) => {
                        m.insert(key.to_owned(), value);
                    }
                    other => *other = json!({ key: value }),
                }
                "unknown field"
            }
            5 => {
                *node = Value::Null;
                "null"
            }
            6 if raw.is_none() => {
                *node = json!(RAW);
                *raw = Some(self.deep_json());
                "deep nesting"
            }
            7 => {
                *node = json!(self.bad_id());
                "bad id"
            }
            8 => {
                *node = json!(self.bad_cursor());
                "bad cursor"
            }
            9 if raw.is_none() => {
                *node = json!(RAW);
                *raw = Some(
                    self.pick(&[
                        "9223372036854775808",
                        "-9223372036854775809",
                        "1e309",
                        "-0",
                        "1e-400",
                        "99999999999999999999999999999999",
                        "NaN",
                    ])
                    .to_owned(),
                );
                "bad number"
            }
            10 if raw.is_none() => {
                *node = json!(RAW);
                *raw = Some(
                    self.pick(&[
                        "\"\\ud800\"",
                        "\"\\udfff\\ud800\"",
                        "\"\\u12\"",
                        "\"\\x41\"",
                    ])
                    .to_owned(),
                );
                "invalid escape"
            }
            11 => {
                *node = self.bad_time();
                "bad time"
            }
            12 => {
                // Long lists of small values; a huge value is only doubled (the body stays MiBs).
                let small = node.to_string().len() <= 64;
                let n = if small {
                    self.pick(&[2, 101, 1_001, 5_000])
                } else {
                    2
                };
                *node = Value::Array(vec![node.take(); n]);
                "long list"
            }
            _ => {
                *node = json!(self.weird_string());
                "weird string"
            }
        }
    }

    fn alert_input(&mut self) -> Value {
        self.serial += 1;
        let mut input = json!({
            "detectionId": "Fuzz.Detection",
            "title": "fuzzed",
            "severity": self.pick(&["INFO", "LOW", "MEDIUM", "HIGH", "CRITICAL"]),
            "type": "RULE",
            "tags": ["fuzz"],
            "context": {"k": [1, {"n": null}], "s": "v"},
            "dynamicSeverity": "LOW",
            "createdAt": "2024-01-01T00:00:00Z",
        });
        if self.chance(0.5) {
            input["alertId"] = json!(format!(
                "fuzz-{:x}-{}",
                self.rng.random::<u32>(),
                self.serial
            ));
        }
        if self.chance(0.7) {
            input["destinationOverrides"] = json!(["SKIP"]);
        }
        match self.below(4) {
            0 => input["logTypes"] = json!(["AWS.CloudTrail", "Okta.SystemLog"]),
            1 => input["logTypes"] = self.bad_log_types(),
            _ => {}
        }
        input
    }

    /// A real id half of the time, for read-only operations.
    fn maybe_real(&mut self, real: String) -> String {
        if self.chance(0.5) {
            real
        } else {
            self.bad_id()
        }
    }

    /// A real operation from the schema: (name, query, variables).
    fn graphql_operation(&mut self) -> (&'static str, String, Value) {
        match self.below(16) {
            0 => {
                let after = if self.chance(0.5) {
                    json!(self.pick(&self.w.destination_ids))
                } else {
                    Value::Null
                };
                (
                    "destinations",
                    format!(
                        "query($first: Int, $after: String, $displayName: String) {{ destinations(first: $first, after: $after, displayName: $displayName) {{ totalCount edges {{ cursor node {{ {DESTINATION_FIELDS} deliveryCounts {{ pending retrying succeeded failed }} }} }} pageInfo {{ hasNextPage endCursor }} }} }}"
                    ),
                    json!({"first": 25, "after": after, "displayName": "Fuzz A"}),
                )
            }
            1 => {
                let id = self.real_destination();
                (
                    "destination",
                    format!(
                        "query($id: ID!, $first: Int, $state: DeliveryState) {{ destination(id: $id) {{ {DESTINATION_FIELDS} deliveries(first: $first, state: $state) {{ edges {{ node {{ id state }} }} }} }} }}"
                    ),
                    json!({"id": self.maybe_real(id), "first": 5, "state": "SUCCEEDED"}),
                )
            }
            2 => {
                let after = json!(self.pick(&self.w.cursors));
                (
                    "alerts",
                    format!("query($first: Int, $after: String, $severity: Severity, $since: DateTime) {{ alerts(first: $first, after: $after, severity: $severity, since: $since) {{ totalCount edges {{ cursor node {{ {ALERT_FIELDS} deliveries {{ id state }} }} }} pageInfo {{ hasNextPage endCursor }} }} }}"),
                    json!({"first": 10, "after": after, "severity": "HIGH", "since": "2020-01-01T00:00:00Z"}),
                )
            }
            3 => {
                let id = self.real_alert();
                (
                    "alert",
                    format!(
                        "query($id: ID!) {{ alert(id: $id) {{ {ALERT_FIELDS} deliveries {{ id label }} }} }}"
                    ),
                    json!({"id": self.maybe_real(id)}),
                )
            }
            4 => {
                let (d, a) = (self.real_destination(), self.real_alert());
                (
                    "deliveries",
                    format!(
                        "query($first: Int, $after: String, $destinationId: ID, $alertId: ID, $state: DeliveryState) {{ deliveries(first: $first, after: $after, destinationId: $destinationId, alertId: $alertId, state: $state) {{ totalCount edges {{ cursor node {{ {DELIVERY_FIELDS} alert {{ id }} destination {{ id }} }} }} }} }}"
                    ),
                    json!({"first": 10, "after": null, "destinationId": self.maybe_real(d), "alertId": self.maybe_real(a), "state": "SUCCEEDED"}),
                )
            }
            5 => {
                let id = self.real_delivery();
                (
                    "delivery",
                    format!("query($id: ID!) {{ delivery(id: $id) {{ {DELIVERY_FIELDS} }} }}"),
                    json!({"id": self.maybe_real(id)}),
                )
            }
            6 if self.chance(0.5) => (
                "viewer",
                "query { viewer { tokenName role } }".into(),
                json!({}),
            ),
            6 => {
                let target = self.real_destination();
                (
                    "auditEvents",
                    "query($first: Int, $after: String, $targetId: ID, $action: String, $since: DateTime) { auditEvents(first: $first, after: $after, targetId: $targetId, action: $action, since: $since) { totalCount edges { cursor node { id at actor action targetType targetId changedFields } } } }".into(),
                    json!({"first": 20, "after": null, "targetId": self.maybe_real(target), "action": "destination.created", "since": "2020-01-01T00:00:00Z"}),
                )
            }
            7 => {
                self.serial += 1;
                (
                    "createDestination",
                    format!(
                        "mutation($input: CreateDestinationInput!) {{ createDestination(input: $input) {{ destination {{ {DESTINATION_FIELDS} }} }} }}"
                    ),
                    json!({"input": {
                        "displayName": format!("fuzz-{:x}-{}", self.rng.random::<u32>(), self.serial),
                        "url": self.w.receiver_url,
                        "severities": ["CRITICAL"],
                        "alertTypes": ["RULE"],
                        "customHeaders": [{"name": "X-Fuzz", "value": "v"}],
                        "logTypes": if self.chance(0.5) { json!(["AWS.CloudTrail"]) } else { self.bad_log_types() },
                        "rateLimitPerMinute": self.pick(&[json!(60), json!(0), json!(600_001), json!(null)]),
                        "autoDisableAfterFailures": self.pick(&[json!(20), json!(0), json!(10_001), json!(null)]),
                        "enabled": false,
                    }}),
                )
            }
            8 => (
                "updateDestination",
                format!(
                    "mutation($input: UpdateDestinationInput!) {{ updateDestination(input: $input) {{ destination {{ {DESTINATION_FIELDS} }} }} }}"
                ),
                json!({"input": {
                    "id": self.bad_id(),
                    "displayName": "renamed",
                    "url": "https://hooks.example.com/x",
                    "severities": ["LOW"],
                    "alertTypes": ["POLICY"],
                    "customHeaders": [{"name": "X-New", "value": "v"}],
                    "logTypes": self.bad_log_types(),
                    "rateLimitPerMinute": 60,
                    "enabled": false,
                }}),
            ),
            9 => (
                "deleteDestination",
                "mutation($input: DeleteDestinationInput!) { deleteDestination(input: $input) { deletedId } }".into(),
                json!({"input": {"id": self.bad_id()}}),
            ),
            10 => (
                "rotateSigningSecret",
                "mutation($input: RotateSigningSecretInput!) { rotateSigningSecret(input: $input) { destination { id signingSecret } } }".into(),
                json!({"input": {"id": self.bad_id(), "gracePeriodSeconds": 60}}),
            ),
            11 => (
                "sendAlert",
                "mutation($input: SendAlertInput!) { sendAlert(input: $input) { alert { id payload } deliveries { id state } warnings } }".into(),
                json!({"input": self.alert_input()}),
            ),
            12 => {
                let alerts = vec![self.alert_input(), self.alert_input()];
                (
                    "sendAlerts",
                    "mutation($input: SendAlertsInput!) { sendAlerts(input: $input) { results { alert { id } warnings } } }".into(),
                    json!({"input": {"alerts": alerts}}),
                )
            }
            13 => (
                "sendTestAlert",
                "mutation($input: SendTestAlertInput!) { sendTestAlert(input: $input) { delivery { id state } } }".into(),
                json!({"input": {"destinationId": self.bad_id()}}),
            ),
            14 => (
                "resendAlert",
                "mutation($input: ResendAlertInput!) { resendAlert(input: $input) { deliveries { id } } }".into(),
                json!({"input": {"alertId": self.bad_id(), "destinationIds": [self.bad_id()]}}),
            ),
            _ => (
                "resendDelivery",
                "mutation($input: ResendDeliveryInput!) { resendDelivery(input: $input) { delivery { id } } }".into(),
                json!({"input": {"deliveryId": self.bad_id()}}),
            ),
        }
    }

    /// A grammar-aware change to the operation's text.
    fn mutate_query(&mut self, q: &str) -> (String, &'static str) {
        let braces: Vec<usize> = q.match_indices('{').map(|(i, _)| i + 1).collect();
        match self.below(15) {
            0 => {
                let at = self.pick(&braces);
                (format!("{} bogusField {}", &q[..at], &q[at..]), "unknown field")
            }
            1 => {
                let at = self.pick(&braces);
                (
                    format!(
                        "{} destinations(bogus: 1, first: \"ten\", after: {}) {{ totalCount }} {}",
                        &q[..at],
                        serde_json::to_string(&self.bad_cursor()).unwrap(),
                        &q[at..]
                    ),
                    "unknown argument",
                )
            }
            2 => {
                let mut at = self.below(q.len() + 1);
                while !q.is_char_boundary(at) {
                    at -= 1;
                }
                (q[..at].to_owned(), "truncated query")
            }
            3 => {
                let mut chars: Vec<char> = q.chars().collect();
                for _ in 0..self.rng.random_range(1..6) {
                    let i = self.below(chars.len());
                    chars[i] = self.pick(&[
                        '{', '}', '(', ')', '[', ']', ':', '$', '@', '!', '"', '\\', ',', '=', '.',
                        '|', '&', '\u{0}', 'é',
                    ]);
                }
                (chars.into_iter().collect(), "flipped characters")
            }
            4 => {
                let d = self.nesting_depth();
                (
                    format!("{{ {} a {}", "a { ".repeat(d), "} ".repeat(d + 1)),
                    "deep selection",
                )
            }
            5 => {
                // Valid fields, recursing through the schema: Delivery.destination.deliveries…
                // Three steps stay within the depth limit and execute, so they ask for two
                // deliveries a level: with `first: 100` they multiply into millions of rows.
                let d = self.pick(&[3, 6, 20, 200]);
                let step = "deliveries(first: 2) { nodes { id destination { id ";
                (
                    format!(
                        "{{ destinations(first: 2) {{ nodes {{ {}id {} }} }} }}",
                        step.repeat(d),
                        "} } } ".repeat(d)
                    ),
                    "deep schema recursion",
                )
            }
            6 => {
                let d = self.nesting_depth();
                let value = if self.chance(0.5) {
                    format!("{}1{}", "[".repeat(d), "]".repeat(d))
                } else {
                    format!("{}1{}", "{a: ".repeat(d), "}".repeat(d))
                };
                (
                    format!(
                        "mutation {{ sendAlert(input: {{detectionId: \"d\", title: \"t\", severity: HIGH, destinationOverrides: [\"SKIP\"], context: {{deep: {value}}}}}) {{ alert {{ id }} }} }}"
                    ),
                    "deep literal",
                )
            }
            7 => {
                let n = self.pick(&[2, 50, 500, 2_000, 10_000]);
                // Nested connections only a few dozen times: under the complexity limit, hundreds
                // of them execute (seconds of database work each), which says nothing new.
                let field = if n <= 50 && self.chance(0.5) {
                    "destinations(first: 5) { nodes { id deliveries(first: 5) { nodes { id attempts { number } } } } }"
                } else {
                    self.pick(&["viewer { role }", "__typename"])
                };
                let body: String = (0..n).map(|i| format!("a{i}: {field} ")).collect();
                (format!("{{ {body}}}"), "many aliases")
            }
            8 => (
                "query { ...A } fragment A on Query { viewer { role } ...B } fragment B on Query { ...A }".into(),
                "fragment cycle",
            ),
            9 => {
                let n = self.pick(&[1, 100, 5_000]);
                let dir = self.pick(&["@skip(if: \"yes\")", "@include(if: false)", "@bogus", "@skip"]);
                (
                    format!("{{ viewer {} {{ role }} }}", dir.repeat(n)),
                    "directives",
                )
            }
            10 => {
                let pad = self.huge_text_len();
                let padded = if self.chance(0.5) {
                    format!("# {}\n{q}", "x".repeat(pad))
                } else {
                    format!("{}{q}", " ".repeat(pad))
                };
                (padded, "huge padding")
            }
            11 => (
                format!(
                    "{{ destinations(displayName: \"{}\") {{ totalCount }} }}",
                    "A".repeat(self.huge_text_len())
                ),
                "huge literal",
            ),
            12 => (
                self.pick(&[
                    "subscription { deliveryUpdated { id } }",
                    "query A { viewer { role } } query B { viewer { role } }",
                    "query($first: String) { destinations(first: $first) { totalCount } }",
                    "query { destinations(first: $undeclared) { totalCount } }",
                    "mutation { __typename }",
                    "",
                    "{}",
                    "query { destinations(first: 101) { totalCount } }",
                    "query { destinations(first: -1) { totalCount } }",
                    "query { alerts(first: 2147483648) { totalCount } }",
                ])
                .to_owned(),
                "invalid operation",
            ),
            13 => {
                let d = self.pick(&[5, 12, 50]);
                (
                    format!(
                        "{{ __schema {{ types {{ fields {{ type {} name {} }} }} }} }}",
                        "{ ofType ".repeat(d),
                        "} ".repeat(d)
                    ),
                    "deep introspection",
                )
            }
            _ => (
                q.replacen("query", "subscription", 1)
                    .replacen("mutation", "query", 1),
                "wrong operation type",
            ),
        }
    }

    /// The JSON body `{"query", "variables"}`, with the raw placeholder filled in.
    fn graphql_body(&mut self, query: &str, vars: &Value, raw: Option<&str>) -> Vec<u8> {
        let mut envelope = json!({"query": query, "variables": vars});
        if self.chance(0.05) {
            envelope["operationName"] = json!(self.pick(&["Nope", "", "A"]));
        }
        let text = serde_json::to_string(&envelope).unwrap();
        match raw {
            Some(raw) => text.replacen(&format!("\"{RAW}\""), raw, 1).into_bytes(),
            None => text.into_bytes(),
        }
    }

    /// A change to the body's bytes or its JSON shape.
    fn mutate_envelope(&mut self, body: Vec<u8>, query: &str) -> (Vec<u8>, &'static str) {
        match self.below(11) {
            0 => {
                let at = self.below(body.len().max(1));
                (body[..at].to_vec(), "truncated JSON")
            }
            1 => {
                // Invalid UTF-8 inside a string when the body has one, anywhere otherwise.
                let bad: &[u8] = self.pick(&[
                    &b"\xff"[..],
                    b"\xc3\x28",
                    b"\xed\xa0\x80",
                    b"\xf8\x88\x80\x80\x80",
                    b"\xc0\xaf",
                    b"\xe2\x82",
                ]);
                let at = find(&body, b"\":\"").map_or(self.below(body.len() + 1), |i| i + 3);
                let mut out = body[..at].to_vec();
                out.extend_from_slice(bad);
                out.extend_from_slice(&body[at..]);
                (out, "invalid UTF-8")
            }
            2 => {
                let wrong = self.pick(&[
                    json!({"query": 42}),
                    json!({"query": ["{ viewer { role } }"]}),
                    json!({"query": {"q": 1}}),
                    json!({"query": null}),
                    json!({"query": query, "variables": "{}"}),
                    json!({"query": query, "variables": [1, 2]}),
                    json!({"query": query, "variables": 7}),
                    json!({"query": query, "operationName": 5}),
                    json!({"query": query, "extensions": "x"}),
                    json!({}),
                    json!(null),
                    json!("{ viewer { role } }"),
                    json!(42),
                    json!([]),
                ]);
                (serde_json::to_vec(&wrong).unwrap(), "wrong envelope types")
            }
            3 => {
                let mut out = b"[".to_vec();
                out.extend_from_slice(&body);
                out.push(b',');
                out.extend_from_slice(&body);
                out.push(b']');
                (out, "batch")
            }
            4 => (
                serde_json::to_vec(&json!({
                    "query": query,
                    "variables": {},
                    "extensions": {"persistedQuery": {"version": 1, "sha256Hash": "abc"}},
                    "zz": [1, {"a": null}],
                }))
                .unwrap(),
                "unknown top-level fields",
            ),
            5 => {
                let mut out = body;
                out.extend_from_slice(b"}}]]\"garbage");
                (out, "trailing garbage")
            }
            6 => {
                let mut out = b"\xef\xbb\xbf".to_vec();
                out.extend_from_slice(&body);
                (out, "byte order mark")
            }
            7 => (
                format!(
                    "{{\"query\":{},\"query\":42,\"variables\":{{}},\"variables\":null}}",
                    serde_json::to_string(query).unwrap()
                )
                .into_bytes(),
                "duplicate keys",
            ),
            8 => {
                let text = String::from_utf8_lossy(&body).into_owned();
                let utf16: Vec<u8> = text.encode_utf16().flat_map(u16::to_le_bytes).collect();
                (utf16, "UTF-16 body")
            }
            9 => (Vec::new(), "empty body"),
            _ => {
                let mut out = body;
                let i = self.below(out.len().max(1));
                if let Some(b) = out.get_mut(i) {
                    *b ^= 1 << self.below(8);
                }
                (out, "bit flip")
            }
        }
    }

    fn random_bytes(&mut self) -> Vec<u8> {
        let n = if self.chance(0.9) {
            self.below(4096)
        } else {
            self.below(64 << 10)
        };
        self.bytes(n)
    }

    fn auth(&mut self) -> (Auth, Option<HeaderValue>) {
        let auth = match self.below(10) {
            0..=3 => Auth::Admin,
            4..=6 => Auth::Viewer,
            7..=8 => Auth::Anonymous,
            _ => Auth::Bogus,
        };
        let header = match auth {
            Auth::Admin => Some(format!("Bearer {}", self.w.admin)),
            Auth::Viewer => Some(format!("Bearer {}", self.w.viewer)),
            Auth::Anonymous => None,
            Auth::Bogus => {
                let bad = match self.below(7) {
                    0 => format!("Bearer hrld_{}", hex(&self.bytes(32))),
                    1 => "Basic YWRtaW46YWRtaW4=".into(),
                    2 => "Bearer".into(),
                    3 => "Bearer ".to_owned() + &"t".repeat(8 << 10),
                    4 => format!("Token {}", self.w.viewer),
                    5 => format!("Bearer {}x", self.w.admin),
                    _ => {
                        return (
                            auth,
                            Some(HeaderValue::from_bytes(b"Bearer hrld_\xff\xfe\x80").unwrap()),
                        );
                    }
                };
                Some(bad)
            }
        };
        (
            auth,
            header.map(|h| HeaderValue::from_str(&h).expect("a valid header value")),
        )
    }

    fn http_request(&mut self) -> HttpRequest {
        let (auth, authorization) = self.auth();
        if self.chance(0.3) {
            return self.alert_request(auth, authorization);
        }
        if self.chance(0.02) {
            // The playground and wrong methods answer too.
            let (method, path) = self.pick(&[
                (
                    Method::GET,
                    "/graphql?query=%7Bviewer%7Brole%7D%7D&variables=%7B%7D",
                ),
                (Method::GET, "/graphql?%ff%fe=%00"),
                (Method::PUT, "/graphql"),
                (Method::DELETE, "/v1/alerts"),
                (Method::GET, "/v1/alerts"),
                (Method::PATCH, "/graphql/ws"),
            ]);
            let body = self.random_bytes();
            return HttpRequest {
                method,
                path: path.into(),
                auth,
                authorization,
                content_type: None,
                body,
                kind: "other methods".into(),
                what: vec!["method or query string"],
            };
        }
        let (name, query, mut vars) = self.graphql_operation();
        let mut what = Vec::new();
        let mut raw = None;
        let mut content_type = Some("application/json");
        let body = match self.below(100) {
            0..=44 => {
                for _ in 0..self.rng.random_range(1..=3) {
                    what.push(self.mutate_value(&mut vars, &mut raw));
                }
                self.graphql_body(&query, &vars, raw.as_deref())
            }
            45..=74 => {
                let (q, w) = self.mutate_query(&query);
                what.push(w);
                self.graphql_body(&q, &vars, None)
            }
            75..=89 => {
                let body = self.graphql_body(&query, &vars, None);
                let (body, w) = self.mutate_envelope(body, &query);
                what.push(w);
                body
            }
            90..=94 => {
                what.push("random bytes");
                self.random_bytes()
            }
            _ => {
                let (ct, body, w) = self.odd_content(&query);
                content_type = ct;
                what.push(w);
                body
            }
        };
        HttpRequest {
            method: Method::POST,
            path: "/graphql".into(),
            auth,
            authorization,
            content_type,
            body,
            kind: format!("graphql {name}"),
            what,
        }
    }

    /// Other content types, including GraphQL multipart uploads with broken parts.
    fn odd_content(&mut self, query: &str) -> (Option<&'static str>, Vec<u8>, &'static str) {
        let plain = serde_json::to_vec(&json!({"query": query})).unwrap();
        match self.below(6) {
            0 => (None, plain, "no content type"),
            1 => (Some("text/plain"), plain, "text/plain"),
            2 => (
                Some("application/graphql"),
                query.as_bytes().to_vec(),
                "application/graphql",
            ),
            3 => (
                Some("application/json; charset=latin1"),
                plain,
                "odd charset",
            ),
            _ => {
                let operations = if self.chance(0.7) {
                    serde_json::to_string(&json!({"query": query, "variables": {"file": null}}))
                        .unwrap()
                } else {
                    self.ascii(40)
                };
                let map = self.pick(&[
                    r#"{"0": ["variables.file"]}"#,
                    r#"{"0": ["variables.a.b.c.0"]}"#,
                    r#"{"0": "variables.file"}"#,
                    r#"{"1": ["variables.file"]}"#,
                    "not json",
                ]);
                let file_len = if self.chance(0.05) {
                    self.huge_len()
                } else {
                    self.below(2048)
                };
                let mut body = format!(
                    "--fuzzb\r\nContent-Disposition: form-data; name=\"operations\"\r\n\r\n{operations}\r\n--fuzzb\r\nContent-Disposition: form-data; name=\"map\"\r\n\r\n{map}\r\n--fuzzb\r\nContent-Disposition: form-data; name=\"0\"; filename=\"a.bin\"\r\nContent-Type: application/octet-stream\r\n\r\n"
                )
                .into_bytes();
                body.extend(self.bytes(file_len));
                if self.chance(0.8) {
                    body.extend_from_slice(b"\r\n--fuzzb--\r\n");
                }
                (
                    Some("multipart/form-data; boundary=fuzzb"),
                    body,
                    "multipart",
                )
            }
        }
    }

    fn panther_payload(&mut self) -> Value {
        self.serial += 1;
        let mut p = json!({
            "id": "Fuzz.Panther",
            "createdAt": "2024-01-01T00:00:00Z",
            "severity": self.pick(&["INFO", "LOW", "MEDIUM", "HIGH", "CRITICAL"]),
            "type": self.pick(&["RULE", "POLICY", "SCHEDULED_RULE"]),
            "link": "https://panther.example/alerts/1",
            "title": "fuzzed via /v1/alerts",
            "name": "Fuzz",
            "alertContext": {"user": "alice", "n": [1, 2, {"deep": true}]},
            "description": "d",
            "runbook": "r",
            "tags": ["fuzz"],
            "version": "v1",
            "dynamicSeverity": "LOW",
        });
        if self.chance(0.5) {
            p["alertId"] = json!(format!(
                "fuzz-p-{:x}-{}",
                self.rng.random::<u32>(),
                self.serial
            ));
        }
        if self.chance(0.7) {
            p["destinationOverrides"] = json!(["SKIP"]);
        } else {
            p["dynamicDestinations"] = json!([self.bad_id()]);
        }
        match self.below(4) {
            0 => p["logTypes"] = json!(["GitHub.Audit"]),
            1 => p["logTypes"] = self.bad_log_types(),
            _ => {}
        }
        p
    }

    fn alert_request(&mut self, auth: Auth, authorization: Option<HeaderValue>) -> HttpRequest {
        let mut p = self.panther_payload();
        let mut what = Vec::new();
        let body = match self.below(100) {
            0..=59 => {
                let mut raw = None;
                for _ in 0..self.rng.random_range(1..=3) {
                    let w = match self.below(6) {
                        // An earlier mutation may have made the payload something else than an object.
                        0 if p.is_object() => {
                            let key = self.pick(&["severity", "type", "dynamicSeverity"]);
                            p[key] = self.bad_enum();
                            "bad enum"
                        }
                        1 if p.is_object() => {
                            p["createdAt"] = self.bad_time();
                            "bad time"
                        }
                        2 if p.is_object() => {
                            p["alertContext"] = json!({"blob": "A".repeat(self.huge_len())});
                            "huge context"
                        }
                        _ => self.mutate_value(&mut p, &mut raw),
                    };
                    what.push(w);
                }
                let text = serde_json::to_string(&p).unwrap();
                match raw {
                    Some(raw) => text.replacen(&format!("\"{RAW}\""), &raw, 1).into_bytes(),
                    None => text.into_bytes(),
                }
            }
            60..=84 => {
                let body = serde_json::to_vec(&p).unwrap();
                let (body, w) = self.mutate_envelope(body, "");
                what.push(w);
                body
            }
            85..=94 => {
                what.push("random bytes");
                self.random_bytes()
            }
            _ => {
                what.push("huge body");
                let mut body =
                    br#"{"id":"x","title":"t","severity":"LOW","description":""#.to_vec();
                // Either side of the 264 KiB body limit of /v1/alerts (200 KiB context + 64 KiB).
                let len = self.rng.random_range(250 << 10..280 << 10);
                body.extend(std::iter::repeat_n(b'A', len));
                body.extend_from_slice(br#""}"#);
                body
            }
        };
        HttpRequest {
            method: Method::POST,
            path: "/v1/alerts".into(),
            auth,
            authorization,
            content_type: if self.chance(0.9) {
                Some("application/json")
            } else {
                None
            },
            body,
            kind: "v1/alerts".into(),
            what,
        }
    }

    fn ws_session(&mut self) -> WsSession {
        let (auth, authorization) = self.auth();
        // The token travels in the upgrade's header or in connection_init.
        let authorization = if self.chance(0.3) {
            authorization
        } else {
            None
        };
        let init_token = match auth {
            Auth::Admin => self.w.admin.clone(),
            Auth::Viewer => self.w.viewer.clone(),
            _ => format!("hrld_{}", hex(&self.bytes(8))),
        };
        let protocol = match self.below(100) {
            0..=79 => Some("graphql-transport-ws"),
            80..=89 => Some("graphql-ws"),
            90..=94 => None,
            _ => Some("graphql-bogus"),
        };
        let mut frames = Vec::new();
        let mut what = Vec::new();
        let text = |v: Value| Message::Text(v.to_string().into());
        for _ in 0..self.rng.random_range(1..=6) {
            let (frame, w) = match self.below(12) {
                0..=2 => (
                    text(json!({"type": "connection_init", "payload": {"Authorization": format!("Bearer {init_token}")}})),
                    "connection_init",
                ),
                3 => {
                    let long = "t".repeat(self.huge_len());
                    let payload = self.pick(&[
                        json!(42),
                        json!("Bearer x"),
                        json!([1]),
                        json!({"Authorization": 42}),
                        json!({"authorization": "Basic eA=="}),
                        json!({"Authorization": format!("Bearer {long}")}),
                    ]);
                    (
                        text(json!({"type": "connection_init", "payload": payload})),
                        "bad connection_init",
                    )
                }
                4..=6 => {
                    let (query, mut vars) = if self.chance(0.5) {
                        (
                            "subscription($destinationId: ID, $alertId: ID) { deliveryUpdated(destinationId: $destinationId, alertId: $alertId) { id state } }".to_owned(),
                            json!({"destinationId": self.bad_id(), "alertId": null}),
                        )
                    } else {
                        let (_, q, v) = self.graphql_operation();
                        (q, v)
                    };
                    let mut raw = None;
                    let query = if self.chance(0.5) {
                        self.mutate_query(&query).0
                    } else {
                        self.mutate_value(&mut vars, &mut raw);
                        query
                    };
                    let id = self.pick(&[json!("1"), json!(""), json!(7), json!(null), json!("1")]);
                    let frame = json!({"id": id, "type": "subscribe", "payload": {"query": query, "variables": vars}}).to_string();
                    let frame = match raw {
                        Some(raw) => frame.replacen(&format!("\"{RAW}\""), &raw, 1),
                        None => frame,
                    };
                    (Message::Text(frame.into()), "bad subscribe")
                }
                7 => (
                    text(self.pick(&[
                        json!({"type": "bogus"}),
                        json!({"type": 5}),
                        json!({}),
                        json!([]),
                        json!("subscribe"),
                        json!(null),
                        json!({"type": "complete", "id": "never-started"}),
                        json!({"type": "ping", "payload": {"x": 1}}),
                        json!({"type": "pong"}),
                        json!({"type": "start", "id": "1", "payload": {"query": "{ viewer { role } }"}}),
                        json!({"type": "connection_terminate"}),
                    ])),
                    "bad message type",
                ),
                8 => {
                    let n = self.below(1024);
                    (Message::Binary(self.bytes(n).into()), "binary frame")
                }
                9 => {
                    let mut t = json!({"type": "connection_init", "payload": {}}).to_string();
                    t.truncate(self.below(t.len()));
                    (Message::Text(t.into()), "truncated frame")
                }
                10 => (Message::Text(self.deep_json().into()), "deep frame"),
                _ => {
                    let n = self.huge_len();
                    (Message::Text(self.ascii(n).into()), "garbage frame")
                }
            };
            frames.push(frame);
            what.push(w);
        }
        WsSession {
            protocol,
            auth,
            authorization,
            frames,
            what,
        }
    }
}

/// Every JSON pointer in `v`, the root included.
fn pointers(v: &Value, at: String, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            for (k, child) in m {
                pointers(child, format!("{at}/{k}"), out);
            }
        }
        Value::Array(items) => {
            for (i, child) in items.iter().enumerate() {
                pointers(child, format!("{at}/{i}"), out);
            }
        }
        _ => {}
    }
    out.push(at);
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// The start of a body, for a failure message, with the test's tokens masked.
fn preview(body: &[u8], w: &World) -> String {
    let text = String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned();
    text.replace(&w.admin, "<admin token>")
        .replace(&w.viewer, "<viewer token>")
}

/// An error and its causes on one line (reqwest's Display hides the cause).
fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        s.push_str(": ");
        s.push_str(&cause.to_string());
        source = cause.source();
    }
    s
}

#[derive(Default)]
struct Tally {
    /// Requests per kind (`graphql sendAlert`, `v1/alerts`, `ws session`).
    kinds: BTreeMap<String, usize>,
    /// Mutations applied, counted.
    mutations: BTreeMap<&'static str, usize>,
    /// `POST /graphql 400`, `ws graphql-transport-ws 101`, …
    statuses: BTreeMap<String, usize>,
    /// Requests per token: `Admin`, `Viewer`, `Anonymous`, `Bogus`.
    auths: BTreeMap<String, usize>,
    requests: usize,
    ws_frames: usize,
    failures: Vec<String>,
    /// Time spent per kind of request.
    kind_time: BTreeMap<String, Duration>,
    /// The slowest requests: how long, and what.
    slowest: Vec<(Duration, String)>,
}

impl Tally {
    fn merge(&mut self, other: Tally) {
        for (k, n) in other.kinds {
            *self.kinds.entry(k).or_default() += n;
        }
        for (k, n) in other.mutations {
            *self.mutations.entry(k).or_default() += n;
        }
        for (k, n) in other.statuses {
            *self.statuses.entry(k).or_default() += n;
        }
        for (k, n) in other.auths {
            *self.auths.entry(k).or_default() += n;
        }
        self.requests += other.requests;
        self.ws_frames += other.ws_frames;
        self.failures.extend(other.failures);
        self.slowest.extend(other.slowest);
        for (k, t) in other.kind_time {
            *self.kind_time.entry(k).or_default() += t;
        }
        self.keep_slowest();
    }

    fn timed(&mut self, took: Duration, what: String) {
        self.slowest.push((took, what));
        if self.slowest.len() > 20 {
            self.keep_slowest();
        }
    }

    fn keep_slowest(&mut self) {
        self.slowest.sort_by_key(|s| std::cmp::Reverse(s.0));
        self.slowest.truncate(5);
    }
}

async fn http_worker(world: Arc<World>, seed: u64, worker: u64, n: usize) -> Tally {
    // One client, one connection: requests on it go one after another, kept alive.
    let client = reqwest::Client::builder()
        .http1_only()
        .pool_max_idle_per_host(1)
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap();
    let mut g = Gen::new(seed, worker, &world);
    let mut tally = Tally::default();
    for i in 0..n {
        let req = g.http_request();
        let summary = format!(
            "{} {} [{}; {}; auth {:?}; {} bytes: {:?}]",
            req.method,
            req.path,
            req.kind,
            req.what.join(", "),
            req.auth,
            req.body.len(),
            preview(&req.body, &world),
        );
        let describe = |problem: String| {
            format!("seed {seed:#x} worker {worker} request {i}: {summary}: {problem}")
        };
        *tally.kinds.entry(req.kind.clone()).or_default() += 1;
        *tally.auths.entry(format!("{:?}", req.auth)).or_default() += 1;
        for w in &req.what {
            *tally.mutations.entry(w).or_default() += 1;
        }
        tally.requests += 1;
        let mut builder = client.request(
            req.method.clone(),
            format!("{}{}", world.base_url, req.path),
        );
        if let Some(ct) = req.content_type {
            builder = builder.header(CONTENT_TYPE, ct);
        }
        if let Some(a) = &req.authorization {
            builder = builder.header(AUTHORIZATION, a.clone());
        }
        let sent = Instant::now();
        world
            .in_flight
            .lock()
            .unwrap()
            .insert(worker, (sent, summary.clone()));
        let answer = match builder.body(req.body).send().await {
            Ok(resp) => {
                let status = resp.status().as_u16();
                match resp.bytes().await {
                    Ok(_) => Ok(status),
                    Err(e) => Err(format!(
                        "status {status}, then the body broke off: {}",
                        chain(&e)
                    )),
                }
            }
            Err(e) => Err(format!("no answer: {}", chain(&e))),
        };
        world
            .done
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        tally.timed(sent.elapsed(), summary.clone());
        *tally.kind_time.entry(req.kind.clone()).or_default() += sent.elapsed();
        match answer {
            Ok(status) => {
                let path = req.path.split('?').next().unwrap_or_default();
                *tally
                    .statuses
                    .entry(format!("{} {path} {status}", req.method))
                    .or_default() += 1;
                if status >= 500 {
                    tally.failures.push(describe(format!("answered {status}")));
                }
            }
            Err(problem) => tally.failures.push(describe(problem)),
        }
    }
    tally
}

async fn ws_worker(world: Arc<World>, seed: u64, worker: u64, n: usize) -> Tally {
    let mut g = Gen::new(seed, worker, &world);
    let mut tally = Tally::default();
    let url = format!("{}/graphql/ws", world.base_url.replacen("http", "ws", 1));
    for i in 0..n {
        let session = g.ws_session();
        tally.requests += 1;
        tally.ws_frames += session.frames.len();
        *tally.kinds.entry("ws session".into()).or_default() += 1;
        *tally
            .auths
            .entry(format!("{:?}", session.auth))
            .or_default() += 1;
        for w in &session.what {
            *tally.mutations.entry(w).or_default() += 1;
        }
        let describe = |problem: String| {
            let frames: Vec<String> = session
                .frames
                .iter()
                .map(|f| match f {
                    Message::Text(t) => preview(t.as_str().as_bytes(), &world),
                    Message::Binary(b) => format!("binary {} bytes", b.len()),
                    other => format!("{other:?}"),
                })
                .collect();
            format!(
                "seed {seed:#x} ws worker {worker} session {i}: protocol {:?}, auth {:?}, [{}], frames {frames:?}: {problem}",
                session.protocol,
                session.auth,
                session.what.join(", "),
            )
        };
        let sent = Instant::now();
        let outcome =
            tokio::time::timeout(Duration::from_secs(30), run_ws_session(&url, &session)).await;
        world
            .done
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        tally.timed(sent.elapsed(), describe("(ws session)".into()));
        *tally.kind_time.entry("ws session".into()).or_default() += sent.elapsed();
        match outcome {
            Ok(Ok(status)) => {
                *tally
                    .statuses
                    .entry(format!(
                        "WS {} {status}",
                        session.protocol.unwrap_or("(none)")
                    ))
                    .or_default() += 1;
                if status >= 500 {
                    tally.failures.push(describe(format!("answered {status}")));
                }
            }
            Ok(Err(problem)) => tally.failures.push(describe(problem)),
            Err(_) => tally
                .failures
                .push(describe("no answer within 30 s".into())),
        }
    }
    tally
}

/// Runs one session; the upgrade's status, or what went wrong. After its frames the client
/// sends a WebSocket ping: the server must answer it with a pong or have closed the socket with a
/// close frame. A socket that ends without one was dropped.
async fn run_ws_session(url: &str, session: &WsSession) -> Result<u16, String> {
    use tokio_tungstenite::tungstenite::Error as WsError;
    let mut req = url.into_client_request().unwrap();
    if let Some(p) = session.protocol {
        req.headers_mut()
            .insert("Sec-WebSocket-Protocol", p.parse().unwrap());
    }
    if let Some(a) = &session.authorization {
        req.headers_mut().insert(AUTHORIZATION, a.clone());
    }
    let mut ws = match tokio_tungstenite::connect_async(req).await {
        Ok((ws, resp)) => {
            if resp.status().as_u16() != 101 {
                return Ok(resp.status().as_u16());
            }
            ws
        }
        Err(WsError::Http(resp)) => return Ok(resp.status().as_u16()),
        Err(e) => return Err(format!("upgrade not answered: {}", chain(&e))),
    };
    let mut closed_by_server = false;
    for frame in &session.frames {
        if ws.send(frame.clone()).await.is_err() {
            // The server may have closed the socket (with a close frame): read on to see.
            break;
        }
    }
    let _ = ws.send(Message::Ping(b"probe".to_vec().into())).await;
    loop {
        match ws.next().await {
            Some(Ok(Message::Pong(p))) if &p[..] == b"probe" => break,
            Some(Ok(Message::Close(_))) => {
                closed_by_server = true;
                break;
            }
            Some(Ok(_)) => {}
            Some(Err(e)) => return Err(format!("the socket broke: {}", chain(&e))),
            None => return Err("the socket ended without a close frame".into()),
        }
    }
    if !closed_by_server {
        let _ = ws.close(None).await;
    }
    Ok(101)
}

/// The response bodies for every record stored before the fuzzing, read one by one with the
/// admin token (so secrets and header values are included).
async fn snapshot(world: &World) -> Vec<(String, String)> {
    let http = reqwest::Client::new();
    let mut out = Vec::new();
    let reads = world
        .destination_ids
        .iter()
        .map(|id| {
            (
                id,
                format!("query($id: ID!) {{ destination(id: $id) {{ {DESTINATION_FIELDS} }} }}"),
            )
        })
        .chain(world.alert_ids.iter().map(|id| {
            (
                id,
                format!(
                    "query($id: ID!) {{ alert(id: $id) {{ {ALERT_FIELDS} deliveries {{ {DELIVERY_FIELDS} }} }} }}"
                ),
            )
        }));
    for (id, query) in reads {
        let body = http
            .post(format!("{}/graphql", world.base_url))
            .bearer_auth(&world.admin)
            .json(&json!({"query": query, "variables": {"id": id}}))
            .send()
            .await
            .expect("the snapshot read is answered")
            .text()
            .await
            .unwrap();
        let parsed: Value = serde_json::from_str(&body).unwrap();
        assert!(
            parsed.get("errors").is_none()
                && parsed["data"]
                    .as_object()
                    .is_some_and(|d| d.values().all(|v| !v.is_null())),
            "{id} reads back: {body}"
        );
        out.push((id.clone(), body));
    }
    out
}

/// Three destinations with custom headers and four alerts (two over GraphQL, two over
/// `/v1/alerts`) whose six deliveries all reached the receiver, one after a 503.
async fn seed_data(
    server: &HeraldProcess,
    admin: &str,
    receiver: &Receiver,
) -> (Vec<String>, Vec<String>) {
    let client = GraphqlClient::new(&server.base_url, Some(admin));
    let mut destination_ids = Vec::new();
    for input in [
        json!({"displayName": "Fuzz A", "url": receiver.url, "customHeaders": [{"name": "X-Api-Key", "value": "fuzz-key-1"}, {"name": "X-Tenant", "value": "blue"}], "logTypes": ["AWS.CloudTrail", "Okta.SystemLog"], "rateLimitPerMinute": 6000}),
        json!({"displayName": "Fuzz B", "url": receiver.url, "severities": ["HIGH", "CRITICAL"], "alertTypes": ["RULE", "POLICY"], "customHeaders": [{"name": "Authorization", "value": "Bearer downstream"}], "autoDisableAfterFailures": 1000}),
        json!({"displayName": "Fuzz C", "url": receiver.url, "enabled": false, "customHeaders": [{"name": "X-Off", "value": "1"}]}),
    ] {
        let created = client
            .query(
                "mutation($input: CreateDestinationInput!) { createDestination(input: $input) { destination { id } } }",
                json!({"input": input}),
            )
            .await;
        destination_ids.push(
            created.data()["createDestination"]["destination"]["id"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    let mut alert_ids = Vec::new();
    // The HIGH alert names a log type A lists; B lists none, so takes every log type.
    for (severity, context, log_types) in [
        (
            "HIGH",
            json!({"ip": "203.0.113.7"}),
            json!(["AWS.CloudTrail"]),
        ),
        ("LOW", json!({"list": [1, 2, 3]}), json!([])),
    ] {
        let sent = client
            .query(
                "mutation($input: SendAlertInput!) { sendAlert(input: $input) { alert { id } } }",
                json!({"input": {"detectionId": "Seed.GraphQL", "title": "seeded", "severity": severity, "tags": ["seed"], "context": context, "logTypes": log_types}}),
            )
            .await;
        alert_ids.push(
            sent.data()["sendAlert"]["alert"]["id"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    let http = reqwest::Client::new();
    for payload in [
        json!({"id": "Seed.Panther", "severity": "CRITICAL", "title": "seeded via Panther", "alertContext": {"user": "alice"}, "tags": ["seed"], "logTypes": ["Okta.SystemLog"]}),
        json!({"id": "Seed.Policy", "severity": "INFO", "type": "POLICY", "title": "seeded policy", "alertId": "seed-policy-1"}),
    ] {
        let resp = http
            .post(format!("{}/v1/alerts", server.base_url))
            .bearer_auth(admin)
            .json(&payload)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 202);
        let body: Value = resp.json().await.unwrap();
        alert_ids.push(body["alertId"].as_str().unwrap().to_owned());
    }
    // A: all four; B: HIGH and CRITICAL; C: disabled. Six deliveries, seven requests (one 503).
    receiver.wait_for(7, Duration::from_secs(30)).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let counts = client
            .query("{ succeeded: deliveries(state: SUCCEEDED) { totalCount } all: deliveries { totalCount } }", json!({}))
            .await;
        let d = counts.data();
        if d["succeeded"]["totalCount"] == 6 && d["all"]["totalCount"] == 6 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the seeded deliveries did not all succeed: {d}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    (destination_ids, alert_ids)
}

async fn malformed_requests_get_4xx_and_leave_stored_data_intact(backend: Backend) {
    let seed = std::env::var("HERALD_FUZZ_SEED")
        .ok()
        .map(|s| {
            let s = s.trim();
            s.strip_prefix("0x")
                .map_or_else(|| s.parse(), |hex| u64::from_str_radix(hex, 16))
                .expect("HERALD_FUZZ_SEED is a number (decimal or 0x…)")
        })
        .unwrap_or(DEFAULT_SEED);
    println!("fuzz seed {seed:#x} (replay with HERALD_FUZZ_SEED={seed:#x})");

    let dir = tempfile::tempdir().unwrap();
    let db = fresh_database_url(backend, dir.path());
    let mut server = HeraldProcess::start_with(
        &db,
        dir.path(),
        &[
            (
                "HERALD_RETRY_SCHEDULE",
                "50ms,50ms,50ms,50ms,50ms,50ms,50ms,50ms,50ms,50ms",
            ),
            ("HERALD_ALLOW_NETWORKS", "127.0.0.0/8,::1/128"),
            ("RUST_LOG", "warn"),
        ],
    )
    .await;
    let admin = tokens_in(&server.stdout()).remove(0);
    let out = herald(
        &db,
        dir.path(),
        &[
            "token",
            "create",
            "--name",
            "fuzz-viewer",
            "--role",
            "viewer",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let viewer = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .last()
        .unwrap()
        .trim()
        .to_owned();

    let receiver = Receiver::start().await;
    receiver.queue([Reply::status(503, "busy").header("Retry-After", "0")]);
    let (destination_ids, alert_ids) = seed_data(&server, &admin, &receiver).await;
    let lists = GraphqlClient::new(&server.base_url, Some(&admin))
        .query(
            "{ alerts(first: 10) { edges { cursor } } deliveries(first: 10) { nodes { id } } }",
            json!({}),
        )
        .await;
    let lists = lists.data();
    let cursors: Vec<String> = lists["alerts"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["cursor"].as_str().unwrap().to_owned())
        .collect();
    let delivery_ids: Vec<String> = lists["deliveries"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["id"].as_str().unwrap().to_owned())
        .collect();
    let world = Arc::new(World {
        done: Default::default(),
        in_flight: Default::default(),
        base_url: server.base_url.clone(),
        admin,
        viewer,
        receiver_url: receiver.url.clone(),
        destination_ids,
        alert_ids,
        delivery_ids,
        cursors,
    });
    let before = snapshot(&world).await;

    let (http_per_worker, ws_per_worker) = plan(backend);
    let planned = HTTP_WORKERS * http_per_worker + WS_WORKERS * ws_per_worker;
    let started = Instant::now();
    let mut workers = Vec::new();
    for w in 0..HTTP_WORKERS as u64 {
        workers.push(tokio::spawn(http_worker(
            world.clone(),
            seed,
            w,
            http_per_worker,
        )));
    }
    for w in 0..WS_WORKERS as u64 {
        workers.push(tokio::spawn(ws_worker(
            world.clone(),
            seed,
            1000 + w,
            ws_per_worker,
        )));
    }
    let progress = {
        let world = world.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_secs(10)).await;
                let done = world.done.load(std::sync::atomic::Ordering::Relaxed);
                println!("… {done} requests answered after {:.0?}", started.elapsed());
                for (w, (since, what)) in world.in_flight.lock().unwrap().iter() {
                    if since.elapsed() > Duration::from_secs(5) {
                        let what: String = what.chars().take(200).collect();
                        println!("    worker {w} waiting {:.0?} on {what}", since.elapsed());
                    }
                }
            }
        })
    };
    let mut tally = Tally::default();
    let joined = tokio::time::timeout(FUZZ_BUDGET, futures::future::join_all(workers))
        .await
        .unwrap_or_else(|_| {
            panic!("the fuzz phase took longer than {FUZZ_BUDGET:?} (seed {seed:#x})")
        });
    for t in joined {
        tally.merge(t.expect("a fuzz worker panicked"));
    }
    let elapsed = started.elapsed();
    progress.abort();

    println!(
        "fuzz ({backend:?}, seed {seed:#x}): {} requests ({} WebSocket sessions with {} frames) in {elapsed:.1?}",
        tally.requests,
        tally.kinds.get("ws session").copied().unwrap_or(0),
        tally.ws_frames
    );
    println!("requests per kind (and the time they took, summed over the workers):");
    for (k, n) in &tally.kinds {
        let t = tally.kind_time.get(k).copied().unwrap_or_default();
        println!("  {n:>6}  {k:<28} {t:>9.1?}");
    }
    println!("requests per token: {:?}", tally.auths);
    println!("mutations applied:");
    for (k, n) in &tally.mutations {
        println!("  {n:>6}  {k}");
    }
    println!("statuses:");
    for (k, n) in &tally.statuses {
        println!("  {n:>6}  {k}");
    }
    println!("slowest:");
    for (took, what) in &tally.slowest {
        println!(
            "  {took:>9.1?}  {}",
            what.chars().take(300).collect::<String>()
        );
    }

    assert!(
        tally.failures.is_empty(),
        "{} of {} requests were not answered below 500 (seed {seed:#x}); the first ones:\n{}\nserver log tail:\n{}",
        tally.failures.len(),
        tally.requests,
        tally
            .failures
            .iter()
            .take(10)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n"),
        tail(&server.stderr(), 40),
    );
    assert_eq!(
        tally.requests, planned,
        "every planned request was sent and answered"
    );
    for auth in ["Admin", "Viewer", "Anonymous"] {
        assert!(
            tally.auths.get(auth).is_some_and(|&n| n >= planned / 10),
            "too few requests with {auth}: {:?}",
            tally.auths
        );
    }
    assert!(
        server.child.try_wait().unwrap().is_none(),
        "herald serve exited during the fuzzing: {}",
        tail(&server.stderr(), 40)
    );
    let health = reqwest::get(format!("{}/healthz", server.base_url))
        .await
        .unwrap();
    assert_eq!(health.status(), 200, "healthy after the fuzzing");

    // Compared as JSON values: the same data, key for key and byte for byte in every string and
    // number. Not as raw bodies: async-graphql does not always emit a delivery's fields in the
    // same order (seen: `attempts` before `nextAttemptAt` in one answer, after it in another).
    let after = snapshot(&world).await;
    let mut reordered = 0;
    for ((id, b), (_, a)) in before.iter().zip(&after) {
        let (bv, av): (Value, Value) = (
            serde_json::from_str(b).unwrap(),
            serde_json::from_str(a).unwrap(),
        );
        assert_eq!(
            bv, av,
            "{id} changed during the fuzzing:\nbefore {b}\nafter  {a}"
        );
        reordered += usize::from(b != a);
    }
    if reordered > 0 {
        println!("{reordered} records read back with the same data in another key order");
    }
    println!(
        "{} stored records read back with the same data; /healthz answers 200",
        before.len()
    );
}

fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

herald_testkit::on_both_backends!(malformed_requests_get_4xx_and_leave_stored_data_intact);
