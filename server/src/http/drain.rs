//! Keeps keep-alive connections usable when a handler answers without reading the whole request
//! body (a 401 before the body is parsed, a 403, a 405, a 413). hyper cannot reuse such a
//! connection, so it closes it after the response without saying so: a client that sends its next
//! request on it meets a closed socket, and a client still uploading gets a reset that can swallow
//! the answer. So what a handler leaves unread is read and discarded here, up to a bound; past the
//! bound the response says `Connection: close`, so the client knows not to reuse the connection.

use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::{Body, Bytes, HttpBody};
use axum::extract::Request;
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::Response;
use futures::StreamExt;
use http_body::{Frame, SizeHint};

/// Unread request bytes discarded per request, at most, and for how long.
const MAX_DRAIN_BYTES: usize = 16 << 20;
const MAX_DRAIN_TIME: Duration = Duration::from_secs(5);

/// The request body, shared between the handler (which may drop its end unread) and this layer.
#[derive(Clone)]
struct SharedBody(Arc<Mutex<Option<Body>>>);

impl SharedBody {
    fn lock(&self) -> MutexGuard<'_, Option<Body>> {
        // A panic while polling leaves nothing half-updated worth refusing over.
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl HttpBody for SharedBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        match self.lock().as_mut() {
            Some(body) => Pin::new(body).poll_frame(cx),
            None => Poll::Ready(None),
        }
    }

    fn is_end_stream(&self) -> bool {
        self.lock().as_ref().is_none_or(HttpBody::is_end_stream)
    }

    // Passed through, so a declared Content-Length over a limit is refused before any read.
    fn size_hint(&self) -> SizeHint {
        self.lock()
            .as_ref()
            .map_or_else(|| SizeHint::with_exact(0), HttpBody::size_hint)
    }
}

pub async fn drain_unread_body(req: Request, next: Next) -> Response {
    let (parts, body) = req.into_parts();
    if body.is_end_stream() {
        return next.run(Request::from_parts(parts, body)).await;
    }
    let shared = SharedBody(Arc::new(Mutex::new(Some(body))));
    let handler_end = Body::new(shared.clone());
    let mut response = next.run(Request::from_parts(parts, handler_end)).await;
    let rest = shared.lock().take();
    if let Some(rest) = rest
        && !rest.is_end_stream()
        && !drain(rest).await
    {
        response
            .headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    response
}

/// Reads the rest of a body and throws it away; false when it is too long or too slow.
async fn drain(body: Body) -> bool {
    let mut chunks = body.into_data_stream();
    let mut left = MAX_DRAIN_BYTES;
    let read_all = async {
        while let Some(chunk) = chunks.next().await {
            match chunk {
                Ok(c) if c.len() <= left => left -= c.len(),
                _ => return false,
            }
        }
        true
    };
    tokio::time::timeout(MAX_DRAIN_TIME, read_all)
        .await
        .unwrap_or(false)
}
