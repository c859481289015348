//! `GET /graphql`: the GraphiQL playground, `server/web/playground/` with GraphiQL, React and
//! graphql-ws vendored under `server/web/vendor/`, so it works without internet. The page is
//! Herald's own rather than async-graphql's template so that subscriptions authenticate (the
//! WebSocket's `connection_init` carries the token) and the token comes from the browser session.

use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::Response;

use super::web;

/// The site-wide policy with one addition: GraphiQL's stylesheet carries its fonts (Roboto, Fira
/// Code) inline as `data:` URLs, which `font-src 'self'` refuses. A `data:` font comes from the
/// stylesheet Herald served and can reach no other host, so allowing it loads nothing from
/// elsewhere; scripts, styles and connections stay `'self'` only. Only this page gets it.
/// Styles get no allowance: the one inline `<style>` GraphiQL adds (the scroll lock of its
/// dialogs) is refused, harmlessly, since this page's body never scrolls.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
    style-src 'self'; img-src 'self' data:; font-src 'self' data:; connect-src 'self'; \
    worker-src 'self' blob:; manifest-src 'self'; frame-ancestors 'none'; base-uri 'none'; \
    form-action 'self'";

pub async fn page(headers: HeaderMap) -> Response {
    let mut response = web::page("playground/index.html", &headers);
    // The site-wide layer sets its policy only where none is present, so this one stays.
    response.headers_mut().insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The playground's policy is the site's with `data:` fonts and nothing else.
    #[test]
    fn policy_differs_from_the_sites_only_in_data_fonts() {
        assert_eq!(
            CONTENT_SECURITY_POLICY.replace("font-src 'self' data:", "font-src 'self'"),
            web::CONTENT_SECURITY_POLICY
        );
    }
}
