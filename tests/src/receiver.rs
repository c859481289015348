//! A real HTTP receiver on 127.0.0.1 that records every request and answers as a test scripts it.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use tokio::sync::Notify;

/// How the receiver answers one request.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub body: String,
    pub headers: Vec<(String, String)>,
    /// Wait this long before answering (to trip timeouts).
    pub delay: Duration,
}

impl Reply {
    pub fn status(status: u16, body: &str) -> Reply {
        Reply {
            status,
            body: body.to_owned(),
            headers: Vec::new(),
            delay: Duration::ZERO,
        }
    }

    pub fn ok() -> Reply {
        Reply::status(200, "ok")
    }

    pub fn header(mut self, name: &str, value: &str) -> Reply {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    pub fn delayed(mut self, delay: Duration) -> Reply {
        self.delay = delay;
        self
    }
}

/// One request as it arrived.
#[derive(Debug, Clone)]
pub struct Received {
    pub headers: HeaderMap,
    pub body: Bytes,
    pub at: Instant,
}

impl Received {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).expect("the body is JSON")
    }
}

#[derive(Default)]
struct Script {
    queued: VecDeque<Reply>,
    default: Option<Reply>,
}

#[derive(Clone)]
struct Shared {
    script: Arc<Mutex<Script>>,
    received: Arc<Mutex<Vec<Received>>>,
    arrived: Arc<Notify>,
}

pub struct Receiver {
    pub url: String,
    shared: Shared,
    _server: tokio::task::JoinHandle<()>,
}

async fn handle(State(s): State<Shared>, headers: HeaderMap, body: Bytes) -> Response {
    let reply = {
        let mut script = s.script.lock().unwrap();
        script
            .queued
            .pop_front()
            .or_else(|| script.default.clone())
            .unwrap_or_else(Reply::ok)
    };
    s.received.lock().unwrap().push(Received {
        headers,
        body,
        at: Instant::now(),
    });
    s.arrived.notify_waiters();
    if !reply.delay.is_zero() {
        tokio::time::sleep(reply.delay).await;
    }
    let mut resp = (
        StatusCode::from_u16(reply.status).unwrap(),
        reply.body.clone(),
    )
        .into_response();
    for (k, v) in &reply.headers {
        resp.headers_mut().insert(
            axum::http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
            v.parse().unwrap(),
        );
    }
    resp
}

/// The shared record of a receiver and the app that fills it.
fn recording_app() -> (Shared, Router) {
    let shared = Shared {
        script: Arc::default(),
        received: Arc::default(),
        arrived: Arc::new(Notify::new()),
    };
    let app = Router::new().fallback(handle).with_state(shared.clone());
    (shared, app)
}

impl Receiver {
    /// Starts a receiver that answers 200 `ok` unless told otherwise.
    pub async fn start() -> Receiver {
        let (shared, app) = recording_app();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Receiver {
            url: format!("http://{addr}/hook"),
            shared,
            _server: server,
        }
    }

    /// Like `start`, over HTTPS with a certificate that `ca` issued; the URL names `localhost`.
    pub async fn start_tls(ca: &crate::TestCa) -> Receiver {
        use hyper_util::rt::{TokioExecutor, TokioIo};
        use hyper_util::server::conn::auto::Builder;
        use hyper_util::service::TowerToHyperService;

        let (shared, app) = recording_app();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let acceptor = tokio_rustls::TlsAcceptor::from(ca.server.clone());
        let server = tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    continue;
                };
                let acceptor = acceptor.clone();
                let service = TowerToHyperService::new(app.clone());
                tokio::spawn(async move {
                    // A client that refuses the certificate ends the handshake: nothing to serve.
                    let Ok(tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let _ = Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(tls), service)
                        .await;
                });
            }
        });
        Receiver {
            url: format!("https://localhost:{port}/hook"),
            shared,
            _server: server,
        }
    }

    /// Answers the next requests with these replies, in order, then with the default.
    pub fn queue(&self, replies: impl IntoIterator<Item = Reply>) {
        self.shared.script.lock().unwrap().queued.extend(replies);
    }

    /// Answers every request not otherwise scripted with `reply`.
    pub fn always(&self, reply: Reply) {
        self.shared.script.lock().unwrap().default = Some(reply);
    }

    pub fn received(&self) -> Vec<Received> {
        self.shared.received.lock().unwrap().clone()
    }

    pub fn count(&self) -> usize {
        self.shared.received.lock().unwrap().len()
    }

    /// Waits until at least `n` requests arrived; panics after `timeout`.
    pub async fn wait_for(&self, n: usize, timeout: Duration) -> Vec<Received> {
        let deadline = Instant::now() + timeout;
        loop {
            let notified = self.shared.arrived.notified();
            if self.count() >= n {
                return self.received();
            }
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(
                !left.is_zero(),
                "receiver got {} requests, expected {n} within {timeout:?}",
                self.count()
            );
            let _ = tokio::time::timeout(left.min(Duration::from_millis(100)), notified).await;
        }
    }
}
