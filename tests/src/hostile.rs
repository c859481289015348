//! Receivers that misbehave on purpose, written on raw TCP because a well-behaved HTTP server
//! library will not misbehave: one that never answers, one that answers a huge body, one that
//! drips its headers, one that hangs up in the middle of its headers, and one that redirects.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

#[derive(Debug, Clone)]
pub enum Misbehaviour {
    /// Reads the request and never writes a byte.
    NeverAnswers,
    /// Answers 200 with a body of this many bytes, streamed as fast as it is read.
    HugeBody(usize),
    /// Writes a complete 200 response one byte a second.
    DripsHeaders,
    /// Writes the start of a response's headers, then closes the connection.
    ClosesMidHeaders,
    /// Answers `302 Found` with this `Location`.
    RedirectsTo(String),
}

pub struct HostileReceiver {
    pub url: String,
    connections: Arc<AtomicUsize>,
    _server: tokio::task::JoinHandle<()>,
}

impl HostileReceiver {
    pub async fn start(kind: Misbehaviour) -> HostileReceiver {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        let connections = Arc::new(AtomicUsize::new(0));
        let counted = connections.clone();
        let server = tokio::spawn(async move {
            loop {
                let Ok((conn, _)) = listener.accept().await else {
                    continue;
                };
                counted.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(misbehave(conn, kind.clone()));
            }
        });
        HostileReceiver {
            url,
            connections,
            _server: server,
        }
    }

    /// Connections accepted so far.
    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }
}

/// Reads until the end of the request head (the body is not needed to misbehave).
async fn read_head(conn: &mut TcpStream) {
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    while !seen.windows(4).any(|w| w == b"\r\n\r\n") {
        match conn.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => seen.extend_from_slice(&buf[..n]),
        }
    }
}

async fn misbehave(mut conn: TcpStream, kind: Misbehaviour) {
    read_head(&mut conn).await;
    match kind {
        Misbehaviour::NeverAnswers => {
            // Hold the connection open, reading whatever comes, until the client gives up.
            let mut sink = [0u8; 4096];
            while let Ok(n) = conn.read(&mut sink).await {
                if n == 0 {
                    break;
                }
            }
        }
        Misbehaviour::HugeBody(size) => {
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {size}\r\n\r\n"
            );
            if conn.write_all(head.as_bytes()).await.is_err() {
                return;
            }
            let chunk = vec![b'x'; 64 * 1024];
            let mut left = size;
            while left > 0 {
                let n = left.min(chunk.len());
                if conn.write_all(&chunk[..n]).await.is_err() {
                    return; // The client stopped reading and hung up.
                }
                left -= n;
            }
        }
        Misbehaviour::DripsHeaders => {
            for byte in b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok" {
                if conn.write_all(&[*byte]).await.is_err() {
                    return;
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
        Misbehaviour::ClosesMidHeaders => {
            let _ = conn.write_all(b"HTTP/1.1 200 OK\r\nContent-Ty").await;
            let _ = conn.shutdown().await;
        }
        Misbehaviour::RedirectsTo(location) => {
            let answer = format!(
                "HTTP/1.1 302 Found\r\nLocation: {location}\r\nContent-Length: 5\r\n\r\nmoved"
            );
            let _ = conn.write_all(answer.as_bytes()).await;
            let _ = conn.shutdown().await;
        }
    }
}
