//! Herald's own web pages: the operator console at `/` and the GraphiQL playground at
//! `GET /graphql`, with their scripts, styles and fonts under `/assets/`. Everything is compiled
//! into the binary from `server/web/` (third-party files in `server/web/vendor/`, each with its
//! version and licence), so the pages work on a machine without internet, and a strict
//! Content-Security-Policy lets them load nothing from anywhere else.

use axum::extract::Path;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use rust_embed::Embed;
use tower_http::set_header::SetResponseHeaderLayer;

#[derive(Embed)]
#[folder = "web/"]
struct Files;

/// Scripts, styles, fonts, images and connections only from Herald's own origin (`'self'`
/// covers the same-origin WebSocket of subscriptions), never in a frame, no plugins, no `<base>`
/// rewriting. Applied to every response: an API answer opened in a browser gets it too.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
    style-src 'self'; img-src 'self' data:; font-src 'self'; connect-src 'self'; \
    worker-src 'self' blob:; manifest-src 'self'; frame-ancestors 'none'; base-uri 'none'; \
    form-action 'self'";

/// The headers every response carries: the CSP above, and the older headers that keep pages out
/// of frames and stop content-type sniffing for browsers that ignore parts of CSP.
pub fn security_headers() -> [SetResponseHeaderLayer<HeaderValue>; 4] {
    [
        SetResponseHeaderLayer::if_not_present(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CONTENT_SECURITY_POLICY),
        ),
        SetResponseHeaderLayer::overriding(
            header::X_FRAME_OPTIONS,
            HeaderValue::from_static("DENY"),
        ),
        SetResponseHeaderLayer::overriding(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ),
        SetResponseHeaderLayer::overriding(
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        ),
    ]
}

/// `GET /assets/{*path}`: a file from `server/web/`. Revalidated on every use by its ETag (a
/// hash of its content), so a new binary's files are never hidden behind an old cache.
pub async fn asset(Path(path): Path<String>, headers: HeaderMap) -> Response {
    file(&path, &headers)
}

/// An HTML page from `server/web/` (`console/index.html`, `playground/index.html`).
pub fn page(path: &str, headers: &HeaderMap) -> Response {
    file(path, headers)
}

fn file(path: &str, request: &HeaderMap) -> Response {
    let Some(f) = Files::get(path) else {
        return (StatusCode::NOT_FOUND, "no such file").into_response();
    };
    let etag = format!("\"{}\"", hex::encode(&f.metadata.sha256_hash()[..16]));
    if request
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag))
    {
        return (StatusCode::NOT_MODIFIED, [(header::ETAG, etag)]).into_response();
    }
    let mime = f.metadata.mimetype();
    // Text types are UTF-8 in this repository; say so rather than let the browser guess.
    let content_type = if mime.starts_with("text/") || mime == "application/javascript" {
        format!("{mime}; charset=utf-8")
    } else {
        mime.to_owned()
    };
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::ETAG, etag),
            (header::CACHE_CONTROL, "no-cache".to_owned()),
        ],
        f.data.into_owned(),
    )
        .into_response()
}

/// Whether a `GET` came from a browser wanting a page (it accepts HTML) rather than from a client
/// wanting data.
pub fn wants_html(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("text/html"))
}
