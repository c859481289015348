//! GitOps: the provider installed from the package `cargo xtask provider-mirror` writes (as a
//! network mirror over HTTPS and as a filesystem mirror), and examples/gitops/pipeline.sh's
//! steps run against a real Herald.
//!
//! The package holds this test build's provider (the debug build Cargo made for these tests,
//! packed once per test process with the xtask library): a release build here would cost
//! minutes for the same bytes-in-a-zip.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use herald_testkit::TestCa;
use serde_json::json;

use crate::harness::{Herald, Run, Tf, squeezed};

const VERSION: &str = env!("CARGO_PKG_VERSION");

/// The mirror directory and the package in it, made once per test process.
fn mirror() -> &'static (PathBuf, xtask::Package) {
    static MIRROR: OnceLock<(PathBuf, xtask::Package)> = OnceLock::new();
    MIRROR.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("herald-mirror-it-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let pkg = xtask::package(
            &dir,
            Path::new(env!("CARGO_BIN_EXE_terraform-provider-herald")),
            VERSION,
            &xtask::Platform::current(),
        )
        .expect("the provider packs into a mirror");
        (dir, pkg)
    })
}

/// A static file server over HTTPS on 127.0.0.1, as a team would serve the mirror directory;
/// it records the paths asked for.
struct MirrorServer {
    url: String,
    requests: Arc<Mutex<Vec<String>>>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl MirrorServer {
    fn start(root: PathBuf, ca: &TestCa) -> MirrorServer {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let url = format!(
            "https://127.0.0.1:{}/",
            listener.local_addr().unwrap().port()
        );
        // HTTP/1.1 only: this server speaks nothing else.
        let mut tls = (*ca.server).clone();
        tls.alpn_protocols = vec![b"http/1.1".to_vec()];
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(tls));
        let requests = Arc::new(Mutex::new(Vec::new()));
        let log = requests.clone();
        let (stop, mut stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                loop {
                    tokio::select! {
                        _ = &mut stopped => return,
                        accepted = listener.accept() => {
                            let Ok((stream, _)) = accepted else { continue };
                            let (acceptor, root, log) = (acceptor.clone(), root.clone(), log.clone());
                            tokio::spawn(async move {
                                let served = tokio::time::timeout(
                                    Duration::from_secs(30),
                                    serve_one(acceptor, stream, &root, &log),
                                );
                                let _ = served.await;
                            });
                        }
                    }
                }
            });
        });
        MirrorServer {
            url,
            requests,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    fn requests(&self) -> Vec<String> {
        self.requests.lock().unwrap().clone()
    }
}

impl Drop for MirrorServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// One GET per connection: the file under `root`, or 404.
async fn serve_one(
    acceptor: tokio_rustls::TlsAcceptor,
    stream: tokio::net::TcpStream,
    root: &Path,
    log: &Mutex<Vec<String>>,
) -> std::io::Result<()> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut tls = acceptor.accept(stream).await?;
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 16 * 1024 {
        let n = tls.read(&mut buf).await?;
        if n == 0 {
            return Ok(());
        }
        head.extend_from_slice(&buf[..n]);
    }
    let head = String::from_utf8_lossy(&head);
    let path = head
        .split_whitespace()
        .nth(1)
        .unwrap_or("/")
        .split('?')
        .next()
        .unwrap_or("/")
        .to_owned();
    log.lock().unwrap().push(path.clone());
    let file = root.join(path.trim_start_matches('/'));
    let body = if path.contains("..") {
        None
    } else {
        std::fs::read(&file).ok()
    };
    let response = match body {
        Some(body) => {
            let kind = if path.ends_with(".json") {
                "application/json"
            } else {
                "application/zip"
            };
            let mut r = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: {kind}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            )
            .into_bytes();
            r.extend_from_slice(&body);
            r
        }
        None => {
            b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".to_vec()
        }
    };
    tls.write_all(&response).await?;
    tls.shutdown().await
}

/// The `hashes` a lock file lists for the Herald provider.
fn locked_hashes(lock: &str) -> Vec<String> {
    let block = lock
        .split("provider \"registry.terraform.io/herald/herald\"")
        .nth(1)
        .expect("the lock file lists herald/herald");
    assert!(
        squeezed(block).contains(&format!("version = \"{VERSION}\"")),
        "locked at the crate's version:\n{lock}"
    );
    let hashes = block.split("hashes = [").nth(1).unwrap();
    let hashes = hashes.split(']').next().unwrap();
    let mut out: Vec<String> = hashes
        .split('"')
        .filter(|s| s.starts_with("h1:") || s.starts_with("zh:"))
        .map(str::to_owned)
        .collect();
    out.sort();
    out
}

/// A working directory that installs the provider from a mirror, with its own TF_DATA_DIR and
/// plugin cache (a fresh runner), and no token of its own.
fn mirror_workdir(installation: &str, herald: &Herald) -> Tf {
    let mut tf = Tf::with_installation(None, installation);
    let data = tf.dir.path().join("tf-data");
    let cache = tf.dir.path().join("plugin-cache");
    std::fs::create_dir_all(&cache).unwrap();
    tf.env("TF_DATA_DIR", &data.display().to_string());
    tf.env("TF_PLUGIN_CACHE_DIR", &cache.display().to_string());
    tf.env("HERALD_ENDPOINT", &herald.endpoint);
    tf
}

/// `terraform version` lists the provider at the crate's version once init installed it.
fn assert_version_listed(tf: &Tf) {
    let v = tf.ok(&["version"]);
    assert!(
        v.stdout.contains(&format!(
            "provider registry.terraform.io/herald/herald v{VERSION}"
        )),
        "{}",
        v.stdout
    );
}

fn example(name: &str) -> String {
    std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../examples/gitops")
            .join(name),
    )
    .unwrap()
}

/// Runs `pipeline.sh STEP` in the working directory with the working directory's environment
/// plus `env`, bounded by coreutils' timeout.
fn pipeline(tf: &Tf, step: &str, env: &[(&str, &str)]) -> Run {
    let out = Command::new("timeout")
        .args(["300", "bash", "pipeline.sh", step])
        .current_dir(tf.dir.path())
        .env_remove("HERALD_API_TOKEN")
        .env_remove("TF_LOG")
        .envs(tf.envs())
        // The steps' own commands, without colour codes in what the test reads.
        .env("TF_CLI_ARGS_init", "-no-color")
        .env("TF_CLI_ARGS_plan", "-no-color")
        .env("TF_CLI_ARGS_apply", "-no-color")
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .output()
        .expect("pipeline.sh runs");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// A terraform command in the working directory with this API token.
fn terraform_as(tf: &Tf, token: &str, args: &[&str]) -> Run {
    let out = Command::new(crate::harness::terraform_bin())
        .args(args)
        .arg("-no-color")
        .arg("-input=false")
        .current_dir(tf.dir.path())
        .env_remove("TF_LOG")
        .envs(tf.envs())
        .env("HERALD_API_TOKEN", token)
        .stdin(Stdio::null())
        .output()
        .expect("terraform runs");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

#[test]
fn the_gitops_pipeline_runs_from_a_network_mirror() {
    let (mirror_dir, pkg) = mirror();
    let ca = TestCa::new("herald mirror test CA");
    let server = MirrorServer::start(mirror_dir.clone(), &ca);
    let herald = Herald::start();
    let admin = herald.token.clone();
    let viewer = herald.create_token("ci-viewer", "viewer");

    let mut tf = mirror_workdir(
        &format!("network_mirror {{ url = \"{}\" }}", server.url),
        &herald,
    );
    let ca_file = tf.dir.path().join("mirror-ca.pem");
    std::fs::write(&ca_file, &ca.pem).unwrap();
    tf.env("SSL_CERT_FILE", &ca_file.display().to_string());
    let receiver = herald.endpoint.clone(); // any loopback URL: nothing is delivered here
    tf.env("TF_VAR_receiver_base", &receiver);
    tf.env("TF_VAR_pager_api_key", "pager-key-s3cret");
    tf.env("TF_VAR_chat_token", "chat-t0ken-s3cret");
    tf.file("main.tf", &example("main.tf"));
    tf.file("pipeline.sh", &example("pipeline.sh"));
    let viewer_env = [("HERALD_VIEWER_TOKEN", viewer.as_str())];
    let admin_env = [("HERALD_ADMIN_TOKEN", admin.as_str())];
    let mut steps: Vec<(String, i32)> = Vec::new();
    let mut record = |name: &str, r: &Run| {
        steps.push((name.to_owned(), r.code));
        assert!(
            !r.all().contains("s3cret"),
            "{name}: a header value in the output"
        );
    };

    // The developer's step: lock the provider against the mirror and commit the lock file.
    let lock = tf.run(&[
        "providers",
        "lock",
        &format!("-net-mirror={}", server.url),
        &format!("-platform={}", pkg.platform.key()),
    ]);
    record("terraform providers lock -net-mirror=…", &lock);
    assert_eq!(lock.code, 0, "{}", lock.all());
    let lockfile = std::fs::read_to_string(tf.dir.path().join(".terraform.lock.hcl")).unwrap();
    // Terraform checks the archive against the mirror's `hashes` (h1 and zh) and records the
    // h1 it computed itself: the package's.
    assert_eq!(locked_hashes(&lockfile), vec![pkg.h1.clone()], "{lockfile}");

    // Pull request: init from the mirror against the committed lock file, plan as a viewer.
    let pr = pipeline(&tf, "pr", &viewer_env);
    record("pipeline.sh pr (create)", &pr);
    assert_eq!(pr.code, 0, "{}", pr.all());
    assert!(
        pr.stdout
            .contains("Plan: 2 to add, 0 to change, 0 to destroy."),
        "{}",
        pr.stdout
    );
    let served = server.requests();
    for path in ["index.json", &format!("{VERSION}.json"), ".zip"] {
        assert!(
            served.iter().any(|p| p.ends_with(path)),
            "the mirror served no {path}: {served:?}"
        );
    }
    let cached = tf.dir.path().join(format!(
        "plugin-cache/registry.terraform.io/herald/herald/{VERSION}/{}/terraform-provider-herald_v{VERSION}",
        pkg.platform.key()
    ));
    assert!(cached.is_file(), "init filled the plugin cache");
    assert_eq!(
        std::fs::read_to_string(tf.dir.path().join(".terraform.lock.hcl")).unwrap(),
        lockfile,
        "-lockfile=readonly leaves the lock file as committed"
    );
    let plan_txt = std::fs::read_to_string(tf.dir.path().join("artifacts/plan.txt")).unwrap();
    assert!(plan_txt.contains("herald_destination.pager will be created"));
    assert!(tf.dir.path().join("artifacts/tfplan").is_file());
    assert_version_listed(&tf);
    assert!(
        herald.destinations().is_empty(),
        "a viewer's plan writes nothing"
    );

    // Main branch: apply as admin.
    let apply = pipeline(&tf, "apply", &admin_env);
    record("pipeline.sh apply (create)", &apply);
    assert_eq!(apply.code, 0, "{}", apply.all());
    let pager = herald.destination_named("SOC pager");
    assert_eq!(pager["customHeaders"][0]["value"], "pager-key-s3cret");
    assert_eq!(pager["url"], format!("{receiver}/pager"));
    let chat = herald.destination_named("Detection chat");
    assert_eq!(chat["rateLimitPerMinute"], 60);

    // Nightly: no drift. The viewer reads no header values and no signing secrets; nothing of
    // that shows up as a change.
    let drift = pipeline(&tf, "drift", &viewer_env);
    record("pipeline.sh drift (clean)", &drift);
    assert_eq!(drift.code, 0, "{}", drift.all());
    assert!(drift.stdout.contains("No changes."), "{}", drift.stdout);
    assert!(
        !drift.stdout.contains("changed outside of Terraform"),
        "{}",
        drift.stdout
    );

    // What Herald withholds from a viewer (header values, signing secrets) is not a change
    // either when the viewer's refresh is all there is.
    let refresh = terraform_as(&tf, &viewer, &["plan", "-refresh-only"]);
    assert_eq!(refresh.code, 0, "{}", refresh.all());
    assert!(refresh.stdout.contains("No changes."), "{}", refresh.stdout);
    assert!(
        !refresh.stdout.contains("changed outside of Terraform"),
        "{}",
        refresh.stdout
    );

    // A pull request changing one attribute plans exactly that change.
    let edited = example("main.tf").replace(
        "severities            = [\"MEDIUM\", \"HIGH\", \"CRITICAL\"]",
        "severities            = [\"LOW\", \"MEDIUM\", \"HIGH\", \"CRITICAL\"]",
    );
    assert_ne!(
        edited,
        example("main.tf"),
        "the edit applies to the example"
    );
    tf.file("main.tf", &edited);
    let pr = pipeline(&tf, "pr", &viewer_env);
    record("pipeline.sh pr (one change)", &pr);
    assert_eq!(pr.code, 0, "{}", pr.all());
    assert!(
        pr.stdout
            .contains("Plan: 0 to add, 1 to change, 0 to destroy."),
        "{}",
        pr.stdout
    );
    assert!(
        pr.stdout
            .contains("herald_destination.detection_chat will be updated in-place")
    );
    assert!(pr.stdout.contains("+ \"LOW\""), "{}", pr.stdout);
    for spurious in [
        "custom_headers",
        "signing_secret",
        "disabled_reason",
        "herald_destination.pager ",
        "changed outside of Terraform",
    ] {
        assert!(
            !pr.stdout.contains(spurious),
            "a viewer's plan shows {spurious:?}:\n{}",
            pr.stdout
        );
    }
    let apply = pipeline(&tf, "apply", &admin_env);
    record("pipeline.sh apply (one change)", &apply);
    assert_eq!(apply.code, 0, "{}", apply.all());
    assert!(
        apply.stdout.contains("0 added, 1 changed, 0 destroyed"),
        "{}",
        apply.stdout
    );
    let drift = pipeline(&tf, "drift", &viewer_env);
    record("pipeline.sh drift (clean)", &drift);
    assert_eq!(drift.code, 0, "{}", drift.all());

    // A change by hand in Herald: the drift check fails and names the attribute.
    herald.update(json!({ "id": pager["id"], "url": format!("{receiver}/pager-by-hand") }));
    let drift = pipeline(&tf, "drift", &viewer_env);
    record("pipeline.sh drift (after a change by hand)", &drift);
    assert_eq!(drift.code, 2, "{}", drift.all());
    assert!(
        squeezed(&drift.stdout).contains(&format!(
            "~ url = \"{receiver}/pager-by-hand\" -> \"{receiver}/pager\""
        )),
        "{}",
        drift.stdout
    );
    assert!(drift.stderr.contains("Drift:"), "{}", drift.stderr);

    println!("pipeline steps and exit codes:");
    for (name, code) in &steps {
        println!("  {code}  {name}");
    }
}

#[test]
fn the_package_works_as_a_filesystem_mirror() {
    let (mirror_dir, pkg) = mirror();
    let herald = Herald::start();
    let mut tf = mirror_workdir(
        &format!(
            "filesystem_mirror {{ path = \"{}\" }}",
            mirror_dir.display()
        ),
        &herald,
    );
    tf.env("HERALD_API_TOKEN", &herald.token);
    tf.config("");
    tf.ok(&[
        "providers",
        "lock",
        &format!("-fs-mirror={}", mirror_dir.display()),
        &format!("-platform={}", pkg.platform.key()),
    ]);
    let lockfile = std::fs::read_to_string(tf.dir.path().join(".terraform.lock.hcl")).unwrap();
    // A filesystem mirror has no signed checksums to offer: Terraform records the h1 hash it
    // computes from the archive, which must be the one the package lists.
    assert_eq!(locked_hashes(&lockfile), vec![pkg.h1.clone()], "{lockfile}");
    tf.ok(&["init", "-lockfile=readonly", "-input=false"]);
    assert_version_listed(&tf);
    tf.ok(&["validate"]);

    // Another build under the same version is not what the lock file allows.
    let other = tempfile::tempdir().unwrap();
    let imposter = other.path().join("imposter");
    std::fs::write(&imposter, b"#!/bin/sh\nexit 1\n").unwrap();
    xtask::package(
        &other.path().join("mirror"),
        &imposter,
        VERSION,
        &pkg.platform,
    )
    .unwrap();
    let mut fresh = mirror_workdir(
        &format!(
            "filesystem_mirror {{ path = \"{}\" }}",
            other.path().join("mirror").display()
        ),
        &herald,
    );
    fresh.env("HERALD_API_TOKEN", &herald.token);
    fresh.config("");
    fresh.file(".terraform.lock.hcl", &lockfile);
    let refused = fresh.run(&["init", "-lockfile=readonly", "-input=false"]);
    assert_eq!(refused.code, 1, "{}", refused.all());
    assert!(
        refused.all().contains("checksums"),
        "init names the checksum mismatch:\n{}",
        refused.all()
    );
}

/// The packed archive is what Terraform unpacks: one executable named for the version.
#[test]
fn the_package_holds_the_provider_binary() {
    let (_, pkg) = mirror();
    assert_eq!(
        pkg.zip.file_name().unwrap().to_string_lossy(),
        format!(
            "terraform-provider-herald_{VERSION}_{}.zip",
            pkg.platform.key()
        )
    );
    let mut bytes = Vec::new();
    std::fs::File::open(&pkg.zip)
        .unwrap()
        .read_to_end(&mut bytes)
        .unwrap();
    assert_eq!(
        pkg.zh,
        format!("zh:{}", sha256_hex(&bytes)),
        "zh is the archive's SHA-256"
    );
    let out = Command::new(env!("CARGO_BIN_EXE_terraform-provider-herald"))
        .arg("--version")
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        format!("terraform-provider-herald {VERSION}")
    );
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}
