//! `GET /metrics`: what Prometheus scrapes. Alerts by API, attempts by outcome with their
//! durations, finished deliveries, the queue read from the database, HTTP requests by route
//! template, the build; never a destination, URL, header value or token.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use herald_server::config::{DispatchConfig, EgressConfig};
use herald_server::dispatch::retry::RetrySchedule;
use herald_testkit::{Backend, Receiver, Reply};
use serde_json::{Value, json};

use crate::app::{TestApp, test_dispatch};

const WAIT: Duration = Duration::from_secs(20);

/// One scrape, parsed: each sample by its name and its labels (sorted), so a value is looked up
/// by what it means rather than found by substring.
struct Scrape {
    text: String,
    samples: BTreeMap<(String, Vec<(String, String)>), f64>,
}

impl Scrape {
    fn parse(text: String) -> Scrape {
        let mut samples = BTreeMap::new();
        for line in text
            .lines()
            .filter(|l| !l.starts_with('#') && !l.is_empty())
        {
            let (series, value) = line.rsplit_once(' ').expect("a sample is `series value`");
            let (name, labels) = match series.split_once('{') {
                None => (series.to_owned(), Vec::new()),
                Some((name, rest)) => {
                    let body = rest.strip_suffix('}').expect("labels end with }");
                    let mut labels: Vec<(String, String)> = body
                        .split("\",")
                        .filter(|p| !p.is_empty())
                        .map(|pair| {
                            let (k, v) = pair.split_once("=\"").expect("label is k=\"v\"");
                            (k.to_owned(), v.trim_end_matches('"').to_owned())
                        })
                        .collect();
                    labels.sort();
                    (name.to_owned(), labels)
                }
            };
            let value: f64 = match value {
                "+Inf" => f64::INFINITY,
                v => v
                    .parse()
                    .unwrap_or_else(|_| panic!("bad value in {line:?}")),
            };
            assert!(
                samples.insert((name, labels), value).is_none(),
                "series twice: {line}"
            );
        }
        Scrape { text, samples }
    }

    /// The sample's value; panics naming it when it is absent.
    fn get(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.try_get(name, labels)
            .unwrap_or_else(|| panic!("no sample {name}{labels:?} in:\n{}", self.text))
    }

    fn try_get(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        let mut key: Vec<(String, String)> = labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        key.sort();
        self.samples.get(&(name.to_owned(), key)).copied()
    }

    /// Every sample of a metric, by its labels.
    fn series(&self, name: &str) -> Vec<(&Vec<(String, String)>, f64)> {
        self.samples
            .iter()
            .filter(|((n, _), _)| n == name)
            .map(|((_, l), v)| (l, *v))
            .collect()
    }
}

async fn scrape(app: &TestApp) -> Scrape {
    // No token: Prometheus scrapes without one.
    let resp = reqwest::get(app.url("/metrics")).await.unwrap();
    assert_eq!(resp.status(), 200);
    let content_type = resp.headers()["content-type"].to_str().unwrap().to_owned();
    assert!(
        content_type.starts_with("application/openmetrics-text"),
        "{content_type}"
    );
    Scrape::parse(resp.text().await.unwrap())
}

/// Scrapes until `done` holds (the queue gauges are cached for two seconds).
async fn scrape_until(app: &TestApp, what: &str, done: impl Fn(&Scrape) -> bool) -> Scrape {
    let deadline = Instant::now() + WAIT;
    loop {
        let s = scrape(app).await;
        if done(&s) {
            return s;
        }
        assert!(Instant::now() < deadline, "never saw {what}:\n{}", s.text);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn send_rest(app: &TestApp, severity: &str) -> reqwest::Response {
    reqwest::Client::new()
        .post(app.url("/v1/alerts"))
        .bearer_auth(&app.admin_token)
        .json(&json!({"id": "Rest.Rule", "severity": severity, "title": "from automation"}))
        .send()
        .await
        .unwrap()
}

async fn alerts_attempts_and_deliveries_are_counted(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let ok = Receiver::start().await;
    let bad = Receiver::start().await;
    bad.always(Reply::status(500, "down"));
    let ok_dest = app
        .create_destination(json!({"displayName": "Fine", "url": ok.url, "severities": ["HIGH"]}))
        .await;
    app.create_destination(json!({"displayName": "Broken", "url": bad.url, "severities": ["LOW"]}))
        .await;

    let before = scrape(&app).await;
    for source in ["graphql", "rest"] {
        assert_eq!(
            before.get("herald_alerts_accepted_total", &[("source", source)]),
            0.0
        );
    }

    // GraphQL: one sendAlert and a sendAlerts of two count three alerts, not two calls.
    let one = app
        .send_alert(json!({"detectionId": "g1", "title": "t", "severity": "HIGH"}))
        .await;
    let batch = app
        .admin
        .query(
            "mutation($input: SendAlertsInput!) { sendAlerts(input: $input) { results { deliveries { id } } } }",
            json!({"input": {"alerts": [
                {"detectionId": "g2", "title": "t", "severity": "HIGH"},
                {"detectionId": "g3", "title": "t", "severity": "LOW"},
            ]}}),
        )
        .await;
    let results = batch.data()["sendAlerts"]["results"].as_array().unwrap();
    // REST: one more.
    let rest = send_rest(&app, "HIGH").await;
    assert_eq!(rest.status(), 202);
    let rest: Value = rest.json().await.unwrap();
    // And the test alert, which is no alert: it is not counted as accepted.
    let tested = app
        .admin
        .query(
            "mutation($id: ID!) { sendTestAlert(input: {destinationId: $id}) { delivery { state } } }",
            json!({"id": ok_dest["id"]}),
        )
        .await;
    assert_eq!(
        tested.data()["sendTestAlert"]["delivery"]["state"],
        "SUCCEEDED"
    );

    let ids = [
        one["deliveries"][0]["id"].clone(),
        results[0]["deliveries"][0]["id"].clone(),
        results[1]["deliveries"][0]["id"].clone(),
        rest["deliveryIds"][0].clone(),
    ];
    for id in &ids {
        app.wait_final(id).await;
    }

    let s = scrape(&app).await;
    assert_eq!(
        s.get("herald_alerts_accepted_total", &[("source", "graphql")]),
        3.0
    );
    assert_eq!(
        s.get("herald_alerts_accepted_total", &[("source", "rest")]),
        1.0
    );
    // Three HIGH alerts and the test alert went to the 200 receiver; the LOW one was tried
    // eleven times (ten retries) at the 500 receiver and failed.
    assert_eq!(ok.count(), 4);
    assert_eq!(bad.count(), 11);
    assert_eq!(s.get("herald_attempts_total", &[("outcome", "2xx")]), 4.0);
    assert_eq!(s.get("herald_attempts_total", &[("outcome", "5xx")]), 11.0);
    for other in ["3xx", "4xx", "timeout", "network", "refused"] {
        assert_eq!(s.get("herald_attempts_total", &[("outcome", other)]), 0.0);
    }
    assert_eq!(
        s.get("herald_deliveries_total", &[("state", "succeeded")]),
        4.0
    );
    assert_eq!(
        s.get("herald_deliveries_total", &[("state", "failed")]),
        1.0
    );

    // The histogram: a count per outcome equal to the attempts, cumulative buckets ending in
    // +Inf with that count, and a sum that is a plausible time.
    let h = "herald_attempt_duration_seconds";
    assert_eq!(s.get(&format!("{h}_count"), &[("outcome", "5xx")]), 11.0);
    assert_eq!(s.get(&format!("{h}_count"), &[("outcome", "2xx")]), 4.0);
    let sum = s.get(&format!("{h}_sum"), &[("outcome", "5xx")]);
    assert!(
        sum > 0.0 && sum < 11.0 * 2.0,
        "11 local attempts took {sum}s"
    );
    let mut buckets: Vec<(f64, f64)> = s
        .series(&format!("{h}_bucket"))
        .into_iter()
        .filter(|(l, _)| l.iter().any(|(k, v)| k == "outcome" && v == "5xx"))
        .map(|(l, v)| {
            let le = &l.iter().find(|(k, _)| k == "le").unwrap().1;
            (
                if le == "+Inf" {
                    f64::INFINITY
                } else {
                    le.parse().unwrap()
                },
                v,
            )
        })
        .collect();
    buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
    assert!(buckets.len() > 5, "{buckets:?}");
    assert!(
        buckets.windows(2).all(|w| w[0].1 <= w[1].1),
        "cumulative: {buckets:?}"
    );
    assert_eq!(buckets.last().unwrap(), &(f64::INFINITY, 11.0));
    assert_eq!(
        buckets.iter().find(|(le, _)| *le == 5.0).unwrap().1,
        11.0,
        "a local receiver answers within 5 s"
    );
}

async fn refused_addresses_count_as_refused(backend: Backend) {
    // Herald's default egress policy: loopback is refused when an attempt connects.
    let app = TestApp::spawn_with(
        backend,
        DispatchConfig {
            egress: EgressConfig::default(),
            ..test_dispatch()
        },
    )
    .await;
    let receiver = Receiver::start().await;
    app.create_destination(json!({
        "displayName": "Internal",
        "url": receiver.url.replace("127.0.0.1", "localhost"),
    }))
    .await;
    let sent = app
        .send_alert(json!({"detectionId": "d", "title": "t", "severity": "HIGH"}))
        .await;
    let d = app.wait_final(&sent["deliveries"][0]["id"]).await;
    assert_eq!(d["state"], "FAILED");
    let s = scrape(&app).await;
    assert_eq!(
        s.get("herald_attempts_total", &[("outcome", "refused")]),
        11.0
    );
    assert_eq!(
        s.get("herald_attempts_total", &[("outcome", "network")]),
        0.0
    );
    assert_eq!(
        s.get("herald_deliveries_total", &[("state", "failed")]),
        1.0
    );
    assert_eq!(receiver.count(), 0);
}

async fn queue_gauges_follow_the_database(backend: Backend) {
    // One request at a time per destination, a receiver that holds it, and retries an hour
    // apart: deliveries wait in the queue, due, for as long as the test needs.
    let app = TestApp::spawn_with(
        backend,
        DispatchConfig {
            retry_schedule: Some(RetrySchedule::parse(&["1h"; 10].join(",")).unwrap()),
            delivery_timeout: Duration::from_secs(60),
            lease: Duration::from_secs(60),
            max_in_flight_per_destination: 1,
            ..test_dispatch()
        },
    )
    .await;
    let s = scrape(&app).await;
    assert_eq!(s.get("herald_queue_depth", &[("state", "pending")]), 0.0);
    assert_eq!(s.get("herald_queue_depth", &[("state", "retrying")]), 0.0);
    assert_eq!(s.get("herald_queue_oldest_due_age_seconds", &[]), 0.0);

    let slow = Receiver::start().await;
    slow.always(Reply::ok().delayed(Duration::from_secs(60)));
    app.create_destination(json!({"displayName": "Slow", "url": slow.url, "severities": ["HIGH"]}))
        .await;
    let flaky = Receiver::start().await;
    flaky.always(Reply::status(503, "later"));
    app.create_destination(
        json!({"displayName": "Flaky", "url": flaky.url, "severities": ["LOW"]}),
    )
    .await;
    for n in 0..5 {
        app.send_alert(json!({"detectionId": format!("p{n}"), "title": "t", "severity": "HIGH"}))
            .await;
    }
    app.send_alert(json!({"detectionId": "r", "title": "t", "severity": "LOW"}))
        .await;
    slow.wait_for(1, WAIT).await;
    flaky.wait_for(1, WAIT).await;

    // Five PENDING (one in flight, three waiting in this process for the one request slot, one
    // due in the queue past the destination's bound) and one RETRYING.
    let first = scrape_until(&app, "5 pending and 1 retrying", |s| {
        s.get("herald_queue_depth", &[("state", "pending")]) == 5.0
            && s.get("herald_queue_depth", &[("state", "retrying")]) == 1.0
    })
    .await;
    let age = first.get("herald_queue_oldest_due_age_seconds", &[]);
    assert!((0.0..30.0).contains(&age), "age {age}");
    // The waiting deliveries stay due, so the oldest due age grows with the clock.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let later = scrape(&app).await;
    let grown = later.get("herald_queue_oldest_due_age_seconds", &[]);
    assert!(grown >= age + 2.0, "age went from {age} to {grown}");
    assert_eq!(
        later.get("herald_queue_depth", &[("state", "pending")]),
        5.0
    );
    assert_eq!(slow.count(), 1, "one request at a time");
}

async fn http_requests_are_counted_by_route_template(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.admin.query("{ viewer { role } }", json!({})).await;
    app.admin.query("{ viewer { role } }", json!({})).await;
    // Without a token: a 401 on the route it was sent to.
    assert_eq!(
        reqwest::Client::new()
            .post(app.url("/v1/alerts"))
            .json(&json!({}))
            .send()
            .await
            .unwrap()
            .status(),
        401
    );
    for n in 0..5 {
        let resp = reqwest::get(app.url(&format!("/no/such/path-{n}")))
            .await
            .unwrap();
        assert_eq!(resp.status(), 404);
    }
    let s = scrape(&app).await;
    let requests = |route: &str, status: &str| {
        s.try_get(
            "herald_http_requests_total",
            &[("route", route), ("status", status)],
        )
        .unwrap_or(0.0)
    };
    assert_eq!(requests("/graphql", "200"), 2.0);
    assert_eq!(requests("/v1/alerts", "401"), 1.0);
    // Made-up paths are one series, whatever they were.
    assert_eq!(requests("unmatched", "404"), 5.0);
    assert!(!s.text.contains("path-"), "{}", s.text);
    assert_eq!(
        s.get(
            "herald_http_request_duration_seconds_count",
            &[("route", "/graphql"), ("status", "200")]
        ),
        2.0
    );
    // The scrape itself shows up in the next one.
    let again = scrape(&app).await;
    assert!(
        again.get(
            "herald_http_requests_total",
            &[("route", "/metrics"), ("status", "200")]
        ) >= 1.0
    );
    assert_eq!(
        again.get(
            "herald_build_info",
            &[("version", env!("CARGO_PKG_VERSION"))]
        ),
        1.0
    );
}

async fn no_secret_or_destination_reaches_the_metrics(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let receiver = Receiver::start().await;
    receiver.always(Reply::status(500, "no"));
    let url = format!("{}?api_key=query-string-secret", receiver.url);
    let dest = app
        .create_destination(json!({
            "displayName": "Payroll Webhook",
            "url": url,
            "customHeaders": [{"name": "X-Api-Key", "value": "header-value-secret"}],
        }))
        .await;
    let sent = app
        .send_alert(json!({"detectionId": "d", "title": "t", "severity": "HIGH"}))
        .await;
    app.wait_final(&sent["deliveries"][0]["id"]).await;
    assert_eq!(send_rest(&app, "HIGH").await.status(), 202);
    let s = scrape(&app).await;
    assert!(s.get("herald_attempts_total", &[("outcome", "5xx")]) >= 11.0);
    for secret in [
        "Payroll",
        "query-string-secret",
        "header-value-secret",
        "127.0.0.1",
        receiver.url.as_str(),
        app.admin_token.as_str(),
        dest["id"].as_str().unwrap(),
        dest["signingSecret"].as_str().unwrap(),
        sent["deliveries"][0]["id"].as_str().unwrap(),
    ] {
        assert!(!s.text.contains(secret), "{secret:?} is in the metrics");
    }
}

herald_testkit::on_both_backends!(
    alerts_attempts_and_deliveries_are_counted,
    refused_addresses_count_as_refused,
    queue_gauges_follow_the_database,
    http_requests_are_counted_by_route_template,
    no_secret_or_destination_reaches_the_metrics,
);
