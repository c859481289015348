//! The `herald_destination` lifecycle and the data sources, through the real CLI.

use serde_json::json;

use crate::harness::{Herald, Tf, sorted};

const TWO_DESTINATIONS: &str = r#"
resource "herald_destination" "soc" {
  display_name = "SOC pager"
  url          = "https://hooks.example.com/soc"
  severities   = ["HIGH", "CRITICAL"]
  alert_types  = ["RULE", "POLICY"]
  custom_headers = {
    "Authorization" = "Bearer s3cret"
    "X-Team"        = "blue"
  }
}

resource "herald_destination" "all" {
  display_name = "Everything"
  url          = "http://127.0.0.1:9/all"
  enabled      = false
}
"#;

#[test]
fn apply_creates_what_the_config_says_and_the_next_plan_is_empty() {
    let herald = Herald::start();
    let tf = Tf::new(Some(&herald));
    tf.config(TWO_DESTINATIONS);
    let out = tf.apply();
    assert!(out.stdout.contains("2 added"), "{}", out.stdout);
    assert!(!out.all().contains("s3cret"), "header values are sensitive");

    let soc = herald.destination_named("SOC pager");
    assert_eq!(soc["url"], "https://hooks.example.com/soc");
    assert_eq!(sorted(&soc["severities"]), ["CRITICAL", "HIGH"]);
    assert_eq!(sorted(&soc["alertTypes"]), ["POLICY", "RULE"]);
    assert_eq!(soc["enabled"], true);
    let mut headers: Vec<(String, String)> = soc["customHeaders"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| {
            (
                h["name"].as_str().unwrap().into(),
                h["value"].as_str().unwrap().into(),
            )
        })
        .collect();
    headers.sort();
    assert_eq!(
        headers,
        [
            ("Authorization".to_string(), "Bearer s3cret".to_string()),
            ("X-Team".into(), "blue".into())
        ]
    );

    let all = herald.destination_named("Everything");
    assert_eq!(all["enabled"], false);
    assert_eq!(
        sorted(&all["severities"]).len(),
        5,
        "omitted severities mean all five"
    );
    assert_eq!(
        sorted(&all["alertTypes"]).len(),
        6,
        "omitted alert types mean all six"
    );
    assert_eq!(all["customHeaders"], json!([]));

    let state = tf.state("herald_destination.soc");
    assert_eq!(state["id"], soc["id"]);
    assert_eq!(state["signing_secret"], soc["signingSecret"]);
    assert!(
        state["signing_secret"]
            .as_str()
            .unwrap()
            .starts_with("whsec_")
    );
    assert!(state["created_at"].as_str().is_some());
    assert!(tf.state("herald_destination.all")["custom_headers"].is_null());

    tf.assert_empty_plan();
}

#[test]
fn updates_are_in_place_with_the_same_id_and_defaults_come_back() {
    let herald = Herald::start();
    let tf = Tf::new(Some(&herald));
    tf.config(TWO_DESTINATIONS);
    tf.apply();
    let before = herald.destination_named("SOC pager");
    let updated_at = tf.state("herald_destination.soc")["updated_at"].clone();

    tf.config(
        &TWO_DESTINATIONS
            .replace(
                "https://hooks.example.com/soc",
                "https://hooks.example.com/soc-v2",
            )
            .replace(r#""X-Team"        = "blue""#, r#""X-Team"        = "red""#)
            .replace(
                r#"severities   = ["HIGH", "CRITICAL"]"#,
                r#"severities   = []"#,
            )
            .replace("enabled      = false", ""),
    );
    let plan = tf.plan();
    assert_eq!(plan.code, 2);
    assert!(
        plan.stdout.contains("2 to change, 0 to destroy"),
        "{}",
        plan.stdout
    );
    assert!(plan.stdout.contains("update in-place"), "{}", plan.stdout);
    assert!(
        !plan.all().contains("red"),
        "header values are sensitive:\n{}",
        plan.stdout
    );
    tf.apply();

    let after = herald.destination_named("SOC pager");
    assert_eq!(
        after["id"], before["id"],
        "same destination, changed in place"
    );
    assert_eq!(after["url"], "https://hooks.example.com/soc-v2");
    assert_eq!(after["severities"], json!([]));
    assert_eq!(after["signingSecret"], before["signingSecret"]);
    assert!(
        after["customHeaders"]
            .as_array()
            .unwrap()
            .iter()
            .any(|h| h["value"] == "red")
    );
    assert_eq!(
        herald.destination_named("Everything")["enabled"],
        true,
        "removing `enabled` restores the default"
    );
    assert_ne!(tf.state("herald_destination.soc")["updated_at"], updated_at);
    tf.assert_empty_plan();

    // Removing every header clears them on the server.
    tf.config(&TWO_DESTINATIONS.replace(
        "  custom_headers = {\n    \"Authorization\" = \"Bearer s3cret\"\n    \"X-Team\"        = \"blue\"\n  }\n",
        "",
    ));
    tf.apply();
    assert_eq!(
        herald.destination_named("SOC pager")["customHeaders"],
        json!([])
    );
    tf.assert_empty_plan();
}

#[test]
fn out_of_band_changes_and_deletes_show_in_the_plan() {
    let herald = Herald::start();
    let tf = Tf::new(Some(&herald));
    tf.config(TWO_DESTINATIONS);
    tf.apply();
    let soc = herald.destination_named("SOC pager");
    herald.update(json!({ "id": soc["id"], "url": "https://evil.example.com/", "enabled": false }));
    let plan = tf.plan();
    assert_eq!(plan.code, 2, "{}", plan.stdout);
    assert!(
        plan.stdout
            .contains(r#""https://evil.example.com/" -> "https://hooks.example.com/soc""#),
        "{}",
        plan.stdout
    );
    let enabled_back = regex::Regex::new(r"~ enabled\s+= false -> true").unwrap();
    assert!(enabled_back.is_match(&plan.stdout), "{}", plan.stdout);

    let all = herald.destination_named("Everything");
    herald.delete(all["id"].as_str().unwrap());
    let plan = tf.plan();
    assert!(
        plan.stdout
            .contains("herald_destination.all will be created"),
        "{}",
        plan.stdout
    );
    assert!(
        plan.stdout.contains("1 to add, 1 to change"),
        "{}",
        plan.stdout
    );

    tf.apply();
    assert_eq!(
        herald.destination_named("SOC pager")["url"],
        "https://hooks.example.com/soc"
    );
    assert_eq!(herald.destinations().len(), 2);
    tf.assert_empty_plan();
}

#[test]
fn import_then_the_plan_is_empty() {
    let herald = Herald::start();
    let created = herald.create(json!({
        "displayName": "Imported",
        "url": "https://hooks.example.com/imported",
        "severities": ["LOW"],
        "customHeaders": [{ "name": "X-Api-Key", "value": "k-123" }],
    }));
    let id = created["id"].as_str().unwrap();
    let tf = Tf::new(Some(&herald));
    tf.config(
        r#"
resource "herald_destination" "imported" {
  display_name   = "Imported"
  url            = "https://hooks.example.com/imported"
  severities     = ["LOW"]
  custom_headers = { "X-Api-Key" = "k-123" }
}
"#,
    );
    let out = tf.ok(&["import", "-input=false", "herald_destination.imported", id]);
    assert!(out.stdout.contains("Import successful"), "{}", out.all());
    assert_eq!(tf.state("herald_destination.imported")["id"], id);
    tf.assert_empty_plan();

    let missing = tf.run(&[
        "import",
        "-input=false",
        "herald_destination.nope",
        "dst_missing",
    ]);
    assert_ne!(missing.code, 0);
}

#[test]
fn destroy_leaves_the_server_empty() {
    let herald = Herald::start();
    let tf = Tf::new(Some(&herald));
    tf.config(TWO_DESTINATIONS);
    tf.apply();
    assert_eq!(herald.destinations().len(), 2);
    tf.ok(&["destroy", "-auto-approve", "-input=false"]);
    assert!(herald.destinations().is_empty());
}

#[test]
fn data_sources_find_destinations() {
    let herald = Herald::start();
    let tf = Tf::new(Some(&herald));
    tf.config(&format!(
        r#"{TWO_DESTINATIONS}
data "herald_destination" "by_name" {{
  display_name = "soc pager"
  depends_on   = [herald_destination.soc]
}}
data "herald_destination" "by_id" {{
  id = herald_destination.all.id
}}
data "herald_destinations" "critical" {{
  severity   = "CRITICAL"
  depends_on = [herald_destination.soc, herald_destination.all]
}}
output "by_name_url" {{ value = data.herald_destination.by_name.url }}
output "by_id_name"  {{ value = data.herald_destination.by_id.display_name }}
output "critical"    {{ value = sort(data.herald_destinations.critical.destinations[*].display_name) }}
"#
    ));
    tf.apply();
    let out: serde_json::Value = serde_json::from_str(&tf.ok(&["output", "-json"]).stdout).unwrap();
    assert_eq!(out["by_name_url"]["value"], "https://hooks.example.com/soc");
    assert_eq!(out["by_id_name"]["value"], "Everything");
    assert_eq!(out["critical"]["value"], json!(["Everything", "SOC pager"]));
    tf.assert_empty_plan();

    tf.config(r#"data "herald_destination" "x" { display_name = "nothing here" }"#);
    let r = tf.run(&["plan", "-input=false"]);
    assert_ne!(r.code, 0);
    assert!(r.stderr.contains("Destination not found"), "{}", r.stderr);
}

#[test]
fn write_only_headers_reach_herald_but_never_the_state() {
    let herald = Herald::start();
    let tf = Tf::new(Some(&herald));
    let config = |value: &str, version: u32| {
        format!(
            r#"
resource "herald_destination" "wo" {{
  display_name              = "Write-only"
  url                       = "https://hooks.example.com/wo"
  custom_headers_wo         = {{ "Authorization" = "{value}" }}
  custom_headers_wo_version = {version}
}}
"#
        )
    };
    let header = |h: &Herald| {
        h.destination_named("Write-only")["customHeaders"][0]["value"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    tf.config(&config("Bearer wo-one", 1));
    tf.apply();
    assert_eq!(header(&herald), "Bearer wo-one");
    let state = std::fs::read_to_string(tf.dir.path().join("terraform.tfstate")).unwrap();
    assert!(
        !state.contains("wo-one"),
        "write-only values stay out of state"
    );
    tf.assert_empty_plan();

    // A new value alone is not a change: Terraform cannot see it.
    tf.config(&config("Bearer wo-two", 1));
    tf.assert_empty_plan();
    // Bumping the version sends it.
    tf.config(&config("Bearer wo-two", 2));
    let plan = tf.plan();
    assert_eq!(plan.code, 2);
    assert!(plan.stdout.contains("update in-place"), "{}", plan.stdout);
    tf.apply();
    assert_eq!(header(&herald), "Bearer wo-two");
    let state = std::fs::read_to_string(tf.dir.path().join("terraform.tfstate")).unwrap();
    assert!(!state.contains("wo-two"));
    tf.assert_empty_plan();

    // Both kinds at once is a configuration error.
    tf.config(
        r#"
resource "herald_destination" "wo" {
  display_name              = "Write-only"
  url                       = "https://hooks.example.com/wo"
  custom_headers            = { "X-A" = "1" }
  custom_headers_wo         = { "X-B" = "2" }
  custom_headers_wo_version = 3
}
"#,
    );
    let r = tf.run(&["validate"]);
    assert!(
        r.stderr.contains("Conflicting custom headers"),
        "{}",
        r.stderr
    );
}

#[test]
fn provider_logs_never_show_secrets() {
    let herald = Herald::start();
    let mut tf = Tf::new(Some(&herald));
    let log = tf.dir.path().join("tf.log");
    tf.env("TF_LOG_PROVIDER", "trace");
    tf.env("TF_LOG_PATH", log.to_str().unwrap());
    tf.config(TWO_DESTINATIONS);
    tf.apply();
    tf.assert_empty_plan();
    let text = std::fs::read_to_string(&log).unwrap();
    let ours: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("provider.terraform-provider-herald"))
        .collect();
    assert!(
        ours.iter().any(|l| l.contains("rpc ApplyResourceChange")),
        "the provider logs at all"
    );
    for line in ours {
        assert!(!line.contains("s3cret"), "{line}");
        assert!(!line.contains("whsec_"), "{line}");
        assert!(!line.contains(&herald.token), "{line}");
    }
}

#[test]
fn a_herald_refusal_points_at_the_attribute_it_names() {
    let herald = Herald::start();
    herald.create(json!({ "displayName": "Taken", "url": "https://hooks.example.com/t" }));
    let tf = Tf::new(Some(&herald));
    tf.config(
        r#"
resource "herald_destination" "dup" {
  display_name = "taken"
  url          = "https://hooks.example.com/dup"
}
"#,
    );
    let r = tf.run(&["apply", "-auto-approve", "-input=false"]);
    assert_ne!(r.code, 0);
    assert!(
        r.stderr
            .contains("Herald refused to create the destination"),
        "{}",
        r.stderr
    );
    // Herald blames `displayName`; Terraform shows the display_name line.
    assert!(
        r.stderr.contains(r#"display_name = "taken""#),
        "{}",
        r.stderr
    );
}

#[test]
fn installs_from_a_filesystem_mirror_like_a_registry_provider() {
    let herald = Herald::start();
    let tf = Tf::new(Some(&herald));
    let version = env!("CARGO_PKG_VERSION");
    let mirror = tf.dir.path().join("mirror");
    let platform = mirror.join(format!(
        "registry.terraform.io/herald/herald/{version}/linux_amd64"
    ));
    std::fs::create_dir_all(&platform).unwrap();
    std::fs::copy(
        env!("CARGO_BIN_EXE_terraform-provider-herald"),
        platform.join(format!("terraform-provider-herald_v{version}")),
    )
    .unwrap();
    // This CLI configuration replaces the dev_overrides one the harness wrote.
    std::fs::write(
        tf.dir.path().join("terraform.rc"),
        format!(
            "provider_installation {{\n  filesystem_mirror {{\n    path = \"{}\"\n    include = [\"herald/herald\"]\n  }}\n}}\ndisable_checkpoint = true\n",
            mirror.display()
        ),
    )
    .unwrap();
    tf.config(
        r#"
resource "herald_destination" "m" {
  display_name = "mirrored"
  url          = "https://hooks.example.com/m"
}
"#,
    );
    let init = tf.ok(&["init", "-input=false"]);
    assert!(
        init.stdout
            .contains(&format!("Installed herald/herald v{version}")),
        "{}",
        init.all()
    );
    assert!(tf.dir.path().join(".terraform.lock.hcl").exists());
    tf.apply();
    tf.assert_empty_plan();
    assert_eq!(
        herald.destination_named("mirrored")["url"],
        "https://hooks.example.com/m"
    );
}
