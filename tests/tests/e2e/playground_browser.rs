//! The GraphQL playground at `GET /graphql`: self-contained (its page names only Herald's own
//! `/assets/`, each served with its type) and working in a real browser
//! (`tests/browser/playground.mjs` in headless Chromium: sign in, a query, the Docs pane, a
//! subscription streaming a test alert's delivery, no request to any other host).

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use herald_testkit::{Backend, Receiver, Reply, fresh_database_url, target_profile_dir};

use crate::process::{HeraldProcess, create_token};

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// The values of every `attribute="…"` in `html`.
fn attribute_values<'a>(html: &'a str, attribute: &str) -> Vec<&'a str> {
    let needle = format!(" {attribute}=\"");
    html.match_indices(&needle)
        .map(|(i, _)| {
            let rest = &html[i + needle.len()..];
            &rest[..rest.find('"').expect("a closed attribute")]
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_playground_page_loads_only_herald_assets() {
    let dir = tempfile::tempdir().unwrap();
    let db = fresh_database_url(Backend::Sqlite, dir.path());
    let server = HeraldProcess::start(&db, dir.path()).await;
    let http = reqwest::Client::new();
    let page = http
        .get(format!("{}/graphql", server.base_url))
        .header("Accept", "text/html")
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    let csp = page.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(csp.contains("script-src 'self';"), "{csp}");
    let html = page.text().await.unwrap();
    assert!(
        !html.contains("http://") && !html.contains("https://") && !html.contains("//unpkg"),
        "the page names another host:\n{html}"
    );

    let scripts = attribute_values(&html, "src");
    let links = attribute_values(&html, "href");
    assert!(scripts.len() >= 4, "scripts: {scripts:?}");
    // Links are the stylesheets and the console (`/`); nothing leaves Herald's origin.
    for url in scripts.iter().chain(&links) {
        assert!(
            url.starts_with('/') && !url.starts_with("//"),
            "{url} is not on Herald's origin"
        );
    }
    let stylesheets: Vec<&str> = links
        .iter()
        .copied()
        .filter(|u| u.ends_with(".css"))
        .collect();
    assert_eq!(stylesheets.len(), 2, "stylesheets: {links:?}");
    for (url, kind) in scripts
        .iter()
        .map(|u| (*u, "javascript"))
        .chain(stylesheets.iter().map(|u| (*u, "text/css")))
    {
        assert!(url.starts_with("/assets/"), "{url} is not an asset");
        let r = http
            .get(format!("{}{url}", server.base_url))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{url}");
        let content_type = r.headers()["content-type"].to_str().unwrap().to_owned();
        assert!(
            content_type.contains(kind),
            "{url} is served as {content_type}"
        );
        let body = r.text().await.unwrap();
        if kind == "text/css" {
            // Fonts and images in the stylesheets are inline (`data:`) or Herald's own.
            for (i, _) in body.match_indices("url(") {
                let target = body[i + 4..].trim_start_matches(['"', '\'']);
                assert!(
                    target.starts_with("data:") || target.starts_with('/'),
                    "{url} loads {}",
                    &target[..target.len().min(80)]
                );
            }
        }
        if url.contains("/vendor/") {
            // Each vendored package carries its licence beside its files.
            let package = url.split('/').nth(3).unwrap();
            let licence = ["LICENSE", "LICENSE.md"].iter().any(|name| {
                workspace_root()
                    .join("server/web/vendor")
                    .join(package)
                    .join(name)
                    .exists()
            });
            assert!(licence, "{package} has no LICENSE");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_playground_works_in_a_browser() {
    let dir = tempfile::tempdir().unwrap();
    let db = fresh_database_url(Backend::Sqlite, dir.path());
    let receiver = Receiver::start().await;
    receiver.always(Reply::ok());
    let server = HeraldProcess::start(&db, dir.path()).await;
    let token = create_token(&db, dir.path(), "playground-admin", "admin");

    let root = workspace_root();
    let shots = target_profile_dir()
        .parent()
        .unwrap()
        .join("browser-screenshots");
    std::fs::create_dir_all(&shots).unwrap();
    let screenshot = shots.join("playground.png");
    let mut node = tokio::process::Command::new("node");
    node.arg("playground.mjs")
        .current_dir(root.join("tests/browser"))
        .env("HERALD_URL", &server.base_url)
        .env("HERALD_TOKEN", &token)
        .env("RECEIVER_URL", &receiver.url)
        .env("SCREENSHOT", &screenshot)
        .stdin(Stdio::null())
        .kill_on_drop(true);
    // The README's copy is refreshed on request only, so a test run leaves the tree clean.
    if std::env::var_os("HERALD_UPDATE_DOCS_IMAGES").is_some() {
        node.env("DOCS_IMAGE", root.join("docs/images/playground.png"));
    }
    let run = tokio::time::timeout(Duration::from_secs(180), node.output())
        .await
        .expect("the browser test did not finish within 180 s")
        .expect("run node (tests/browser needs `npm ci`; .ci/run does it)");
    let output = format!(
        "{}{}",
        String::from_utf8_lossy(&run.stdout),
        String::from_utf8_lossy(&run.stderr)
    );
    println!("{output}");
    println!("screenshot: {}", screenshot.display());
    assert!(
        run.status.success(),
        "the browser test failed:\n{output}\nserver log:\n{}",
        server.stderr()
    );
    assert!(output.contains("requests to other hosts: 0"), "{output}");
}
