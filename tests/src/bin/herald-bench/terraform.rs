//! Issue 12's Terraform targets: `terraform apply` and `destroy` of 100 `herald_destination`
//! within 2x of 100 `terraform_data` (Terraform's built-in resource, no provider process, no API:
//! Terraform's own floor), and `terraform plan` of 1,000 destinations with no change in under
//! 10 s. The real CLI runs against a real `herald serve`, with the provider binary built in this
//! workspace (`terraform-provider-herald`, next to `herald-bench`) installed through
//! `dev_overrides`, as the provider's own tests install it: no `terraform init`, no network.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde::Serialize;

use crate::report::int;
use crate::scenario::{Backend, Ctx};
use crate::server::Herald;

/// The sizes issue 12's targets are stated for; at other sizes the rows show no verdict (at a
/// handful of resources Terraform's fixed start-up costs decide the ratio).
const TARGET_APPLY: usize = 100;
const TARGET_PLAN: usize = 1_000;

/// Where Terraform comes from: `$TERRAFORM`, else `terraform` on PATH (as in the provider's tests).
const TERRAFORM_ENV: &str = "TERRAFORM";
const PROVIDER_BIN: &str = "terraform-provider-herald";
/// Overrides where the provider binary is, for comparing two builds.
const PROVIDER_BIN_ENV: &str = "TERRAFORM_PROVIDER_HERALD_BIN";
/// One Terraform command may take this long before the scenario gives up on it.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(600);

/// Sizes of the Terraform scenario (the smoke run shrinks them).
#[derive(Debug, Clone, Serialize)]
pub struct Sizes {
    /// Resources per apply/destroy (the target: 100).
    pub apply: usize,
    /// Destinations under the no-change plan (the target: 1,000).
    pub plan: usize,
    /// Each timing is the median of this many runs.
    pub repeat: usize,
}

/// The Terraform CLI and the provider binary, when both are there.
pub struct Tools {
    terraform: PathBuf,
    provider: PathBuf,
    version: String,
}

impl Tools {
    /// `Ok(None)` with the reason printed when the Terraform CLI is missing: the scenario is then
    /// skipped, not failed (it is the one scenario that needs a tool cargo cannot build). A
    /// missing provider binary is an error that says how to build it.
    pub fn find() -> anyhow::Result<Option<Tools>> {
        let terraform = std::env::var_os(TERRAFORM_ENV)
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("terraform"));
        let version = std::process::Command::new(&terraform)
            .arg("version")
            .stdin(Stdio::null())
            .output();
        let version = match version {
            Ok(out) if out.status.success() => String::from_utf8_lossy(&out.stdout)
                .lines()
                .next()
                .unwrap_or_default()
                .trim()
                .to_owned(),
            _ => {
                eprintln!(
                    "herald-bench: the Terraform CLI ({}) is not there; the terraform scenario is skipped (install Terraform 1.11 or later, or set {TERRAFORM_ENV})",
                    terraform.display()
                );
                return Ok(None);
            }
        };
        let provider = std::env::var_os(PROVIDER_BIN_ENV)
            .map(PathBuf::from)
            .unwrap_or_else(|| herald_testkit::target_profile_dir().join(PROVIDER_BIN));
        if !provider.exists() {
            bail!(
                "{} is missing: build it with `cargo build --release -p terraform-provider-herald` (drop --release for a debug bench)",
                provider.display()
            );
        }
        Ok(Some(Tools {
            terraform,
            provider,
            version,
        }))
    }
}

/// One Terraform measurement on one database.
#[derive(Debug, Clone, Default, Serialize)]
pub struct TfRow {
    pub what: String,
    pub db: String,
    /// Median wall time with `herald_destination`, seconds.
    pub herald_s: Option<f64>,
    /// Median wall time of the same command with `terraform_data`, seconds.
    pub data_s: Option<f64>,
    pub target: Option<String>,
    pub met: Option<bool>,
    pub notes: Vec<String>,
    pub failure: Option<String>,
}

impl TfRow {
    pub fn failed(db: &str, e: &anyhow::Error) -> TfRow {
        TfRow {
            what: "terraform".into(),
            db: db.to_owned(),
            failure: Some(format!("{e:#}")),
            ..TfRow::default()
        }
    }
}

/// A Terraform working directory with its own CLI configuration.
struct WorkDir {
    dir: PathBuf,
    env: Vec<(&'static str, String)>,
    terraform: PathBuf,
}

impl WorkDir {
    fn new(
        root: &Path,
        name: &str,
        rc: &Path,
        tools: &Tools,
        herald: &Herald,
    ) -> anyhow::Result<Self> {
        let dir = root.join(name);
        std::fs::create_dir_all(&dir)?;
        let base = herald
            .gql
            .endpoint
            .strip_suffix("/graphql")
            .unwrap_or(&herald.gql.endpoint)
            .to_owned();
        Ok(WorkDir {
            dir,
            env: vec![
                ("TF_CLI_CONFIG_FILE", rc.display().to_string()),
                ("CHECKPOINT_DISABLE", "1".into()),
                ("TF_IN_AUTOMATION", "1".into()),
                ("HERALD_ENDPOINT", base),
                ("HERALD_API_TOKEN", herald.token().to_owned()),
            ],
            terraform: tools.terraform.clone(),
        })
    }

    fn config(&self, text: &str) -> anyhow::Result<()> {
        Ok(std::fs::write(self.dir.join("main.tf"), text)?)
    }

    /// Runs one command; its wall time and exit code. Output is kept for the error message only.
    async fn run(&self, args: &[&str]) -> anyhow::Result<(f64, i32)> {
        let mut cmd = tokio::process::Command::new(&self.terraform);
        cmd.args(args)
            .args(["-input=false", "-no-color"])
            .current_dir(&self.dir)
            .env_remove("TF_LOG")
            .envs(self.env.iter().map(|(k, v)| (*k, v.as_str())))
            .stdin(Stdio::null())
            .kill_on_drop(true);
        let started = Instant::now();
        let out = tokio::time::timeout(COMMAND_TIMEOUT, cmd.output())
            .await
            .with_context(|| format!("terraform {args:?} ran over {COMMAND_TIMEOUT:?}"))?
            .with_context(|| format!("run {}", self.terraform.display()))?;
        let secs = started.elapsed().as_secs_f64();
        let code = out.status.code().unwrap_or(-1);
        if code != 0 && !(code == 2 && args.contains(&"-detailed-exitcode")) {
            let tail = |b: &[u8]| {
                let s = String::from_utf8_lossy(b);
                let lines: Vec<&str> = s.lines().collect();
                lines[lines.len().saturating_sub(15)..].join("\n")
            };
            bail!(
                "terraform {args:?} exited {code}:\n{}\n{}",
                tail(&out.stdout),
                tail(&out.stderr)
            );
        }
        Ok((secs, code))
    }

    async fn apply(&self) -> anyhow::Result<f64> {
        Ok(self.run(&["apply", "-auto-approve"]).await?.0)
    }

    async fn destroy(&self) -> anyhow::Result<f64> {
        Ok(self.run(&["destroy", "-auto-approve"]).await?.0)
    }

    /// A plan that must find nothing to change (`-detailed-exitcode` 0).
    async fn empty_plan(&self) -> anyhow::Result<f64> {
        let (secs, code) = self.run(&["plan", "-detailed-exitcode"]).await?;
        if code != 0 {
            bail!("terraform plan found changes right after apply (exit {code})");
        }
        Ok(secs)
    }
}

fn herald_config(n: usize) -> String {
    format!(
        r#"terraform {{
  required_providers {{
    herald = {{ source = "herald/herald" }}
  }}
}}
provider "herald" {{}}
resource "herald_destination" "d" {{
  count          = {n}
  display_name   = "tf-${{count.index}}"
  url            = "https://hooks.example.com/${{count.index}}"
  severities     = ["HIGH", "CRITICAL"]
  custom_headers = {{ "X-Api-Key" = "key-${{count.index}}" }}
}}
"#
    )
}

/// The same values as `terraform_data` inputs: Terraform's cost for as many resources of the
/// same shape, with no provider.
fn data_config(n: usize) -> String {
    format!(
        r#"resource "terraform_data" "d" {{
  count = {n}
  input = {{
    display_name   = "tf-${{count.index}}"
    url            = "https://hooks.example.com/${{count.index}}"
    severities     = ["HIGH", "CRITICAL"]
    custom_headers = {{ "X-Api-Key" = "key-${{count.index}}" }}
  }}
}}
"#
    )
}

fn median(mut v: Vec<f64>) -> Option<f64> {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied()
}

/// Apply and destroy of `sizes.apply` resources, then the no-change plan of `sizes.plan`, each
/// next to the same with `terraform_data`, on one database.
pub async fn run(
    ctx: &Ctx<'_>,
    tools: &Tools,
    backend: Backend,
    sizes: &Sizes,
) -> anyhow::Result<Vec<TfRow>> {
    let dir = tempfile::tempdir()?;
    let db = ctx.database(backend, dir.path())?;
    let herald = Herald::start(ctx.bins, &db.url(), dir.path(), &[]).await?;

    // dev_overrides takes the first `terraform-provider-herald*` file of the directory it names,
    // so the binary gets a directory of its own.
    let plugin_dir = dir.path().join("provider");
    std::fs::create_dir_all(&plugin_dir)?;
    std::fs::copy(&tools.provider, plugin_dir.join(PROVIDER_BIN))
        .with_context(|| format!("copy {}", tools.provider.display()))?;
    let rc = dir.path().join("terraform.rc");
    std::fs::write(
        &rc,
        format!(
            "provider_installation {{\n  dev_overrides {{ \"herald/herald\" = \"{}\" }}\n  direct {{}}\n}}\ndisable_checkpoint = true\n",
            plugin_dir.display()
        ),
    )?;
    let tf = WorkDir::new(dir.path(), "herald", &rc, tools, &herald)?;
    let data = WorkDir::new(dir.path(), "data", &rc, tools, &herald)?;

    let db_name = backend.name();
    let (n, m) = (sizes.apply, sizes.plan);
    // Apply and destroy, alternating the two kinds so that a slow moment of a shared machine
    // does not fall on one side only.
    let (mut ha, mut hd, mut da, mut dd) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    tf.config(&herald_config(n))?;
    data.config(&data_config(n))?;
    for _ in 0..sizes.repeat {
        ha.push(tf.apply().await?);
        let stored = count_destinations(&herald).await?;
        anyhow::ensure!(
            stored == n,
            "after apply Herald holds {stored} destinations, not {n}"
        );
        hd.push(tf.destroy().await?);
        let stored = count_destinations(&herald).await?;
        anyhow::ensure!(
            stored == 0,
            "after destroy Herald still holds {stored} destinations"
        );
        da.push(data.apply().await?);
        dd.push(data.destroy().await?);
    }
    let ratio_row = |what: &str, h: Vec<f64>, d: Vec<f64>| {
        let (herald_s, data_s) = (median(h), median(d));
        let ratio = herald_s.zip(data_s).map(|(h, d)| h / d);
        TfRow {
            what: what.to_owned(),
            db: db_name.to_owned(),
            herald_s,
            data_s,
            target: Some("≤ 2× terraform_data".into()),
            met: ratio.filter(|_| n == TARGET_APPLY).map(|r| r <= 2.0),
            notes: vec![format!("median of {}", sizes.repeat)],
            failure: None,
        }
    };
    let mut rows = vec![
        ratio_row(&format!("apply {}", int(n as f64)), ha, da),
        ratio_row(&format!("destroy {}", int(n as f64)), hd, dd),
    ];

    // The plan: m destinations in the state and on the server, unchanged.
    tf.config(&herald_config(m))?;
    data.config(&data_config(m))?;
    let big_apply = tf.apply().await?;
    data.apply().await?;
    let (mut hp, mut dp) = (Vec::new(), Vec::new());
    for _ in 0..sizes.repeat {
        hp.push(tf.empty_plan().await?);
        dp.push(data.empty_plan().await?);
    }
    // No destroy of the m: the server and its database go away with the scenario.
    let herald_s = median(hp);
    rows.push(TfRow {
        what: format!("plan {}, no change", int(m as f64)),
        db: db_name.to_owned(),
        herald_s,
        data_s: median(dp),
        target: Some("< 10 s".into()),
        met: herald_s.filter(|_| m >= TARGET_PLAN).map(|s| s < 10.0),
        notes: vec![
            format!("median of {}", sizes.repeat),
            format!(
                "the apply that made the {} took {big_apply:.1} s",
                int(m as f64)
            ),
        ],
        failure: None,
    });
    herald.stop()?;
    Ok(rows)
}

async fn count_destinations(herald: &Herald) -> anyhow::Result<usize> {
    let data = herald
        .gql
        .call(
            "{ destinations(first: 1) { totalCount } }",
            serde_json::json!({}),
        )
        .await?;
    data["destinations"]["totalCount"]
        .as_u64()
        .map(|n| n as usize)
        .context("destinations answered no totalCount")
}

/// The Terraform table.
pub fn markdown(rows: &[TfRow], tools: Option<&Tools>) -> String {
    let mut out = String::from(
        "| terraform | db | herald_destination s | terraform_data s | ratio | target | notes |\n\
         |---|---|---:|---:|---:|---|---|\n",
    );
    for r in rows {
        if let Some(f) = &r.failure {
            out.push_str(&format!(
                "| {} | {} | – | – | – | – | FAILED: {} |\n",
                r.what,
                r.db,
                f.replace('\n', " ").replace('|', "/")
            ));
            continue;
        }
        let secs = |v: Option<f64>| v.map_or("–".into(), |s| format!("{s:.2}"));
        let ratio = match (r.herald_s, r.data_s) {
            (Some(h), Some(d)) if d > 0.0 => format!("{:.1}×", h / d),
            _ => "–".into(),
        };
        let target = match (&r.target, r.met) {
            (Some(t), Some(met)) => format!("{t}: {}", if met { "met" } else { "**missed**" }),
            (Some(t), None) => format!("{t} (at the target's size only)"),
            _ => "–".into(),
        };
        out.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {} |\n",
            r.what,
            r.db,
            secs(r.herald_s),
            secs(r.data_s),
            ratio,
            target,
            r.notes.join("; ").replace('|', "/")
        ));
    }
    if let Some(t) = tools {
        out.push_str(&format!(
            "\n{}; Terraform's default parallelism (10).\n",
            t.version
        ));
    }
    out
}
