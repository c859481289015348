//! `log_types` on `herald_destination` and the `log_type` filter of `herald_destinations`,
//! through the real CLI.

use serde_json::json;

use crate::harness::{Herald, Tf, sorted};

fn config(log_types: Option<&str>) -> String {
    let attr = log_types
        .map(|l| format!("  log_types    = {l}\n"))
        .unwrap_or_default();
    format!(
        r#"
resource "herald_destination" "cloud" {{
  display_name = "Cloud"
  url          = "https://hooks.example.com/cloud"
{attr}}}

resource "herald_destination" "any" {{
  display_name = "Any"
  url          = "https://hooks.example.com/any"
}}
"#
    )
}

#[test]
fn log_types_apply_update_and_clear_with_empty_second_plans() {
    let herald = Herald::start();
    let tf = Tf::new(Some(&herald));
    tf.config(&config(Some(r#"["Okta.SystemLog", "AWS.CloudTrail"]"#)));
    let plan = tf.plan();
    assert!(plan.stdout.contains("AWS.CloudTrail"), "{}", plan.stdout);
    tf.apply();
    let cloud = herald.destination_named("Cloud");
    assert_eq!(
        sorted(&cloud["logTypes"]),
        ["AWS.CloudTrail", "Okta.SystemLog"]
    );
    assert_eq!(
        herald.destination_named("Any")["logTypes"],
        json!([]),
        "omitted: every log type"
    );
    assert_eq!(
        sorted(&tf.state("herald_destination.cloud")["log_types"]),
        ["AWS.CloudTrail", "Okta.SystemLog"]
    );
    assert_eq!(tf.state("herald_destination.any")["log_types"], json!([]));
    tf.assert_empty_plan();

    // A changed set is an in-place update of that one attribute.
    tf.config(&config(Some(r#"["AWS.S3ServerAccess", "AWS.CloudTrail"]"#)));
    let plan = tf.plan();
    assert_eq!(plan.code, 2);
    assert!(
        plan.stdout.contains("1 to change, 0 to destroy"),
        "{}",
        plan.stdout
    );
    tf.apply();
    let after = herald.destination_named("Cloud");
    assert_eq!(after["id"], cloud["id"]);
    assert_eq!(
        sorted(&after["logTypes"]),
        ["AWS.CloudTrail", "AWS.S3ServerAccess"]
    );
    tf.assert_empty_plan();

    // A change made outside Terraform shows in the plan, and applying puts the config back.
    herald.update(json!({"id": cloud["id"], "logTypes": ["GitHub.Audit"]}));
    let plan = tf.plan();
    assert_eq!(plan.code, 2, "{}", plan.stdout);
    assert!(plan.stdout.contains("GitHub.Audit"), "{}", plan.stdout);
    tf.apply();
    assert_eq!(
        sorted(&herald.destination_named("Cloud")["logTypes"]),
        ["AWS.CloudTrail", "AWS.S3ServerAccess"]
    );

    // Removing the attribute means every log type again.
    tf.config(&config(None));
    tf.apply();
    assert_eq!(herald.destination_named("Cloud")["logTypes"], json!([]));
    tf.assert_empty_plan();
}

#[test]
fn import_reads_log_types_and_the_plan_is_empty() {
    let herald = Herald::start();
    let created = herald.create(json!({
        "displayName": "Imported",
        "url": "https://hooks.example.com/imported",
        "logTypes": ["AWS.CloudTrail", "Okta.SystemLog"],
    }));
    let id = created["id"].as_str().unwrap();
    let tf = Tf::new(Some(&herald));
    tf.config(
        r#"
resource "herald_destination" "imported" {
  display_name = "Imported"
  url          = "https://hooks.example.com/imported"
  log_types    = ["AWS.CloudTrail", "Okta.SystemLog"]
}
"#,
    );
    tf.ok(&["import", "-input=false", "herald_destination.imported", id]);
    assert_eq!(
        sorted(&tf.state("herald_destination.imported")["log_types"]),
        ["AWS.CloudTrail", "Okta.SystemLog"]
    );
    tf.assert_empty_plan();
}

#[test]
fn the_destinations_data_source_filters_by_log_type() {
    let herald = Herald::start();
    herald.create(json!({"displayName": "Okta only", "url": "https://hooks.example.com/o", "logTypes": ["Okta.SystemLog"]}));
    let tf = Tf::new(Some(&herald));
    tf.config(&format!(
        r#"{}
data "herald_destinations" "cloudtrail" {{
  log_type   = "AWS.CloudTrail"
  depends_on = [herald_destination.cloud, herald_destination.any]
}}
data "herald_destinations" "okta" {{
  log_type   = "Okta.SystemLog"
  depends_on = [herald_destination.cloud, herald_destination.any]
}}
output "cloudtrail" {{ value = sort(data.herald_destinations.cloudtrail.destinations[*].display_name) }}
output "okta"       {{ value = sort(data.herald_destinations.okta.destinations[*].display_name) }}
output "log_types"  {{ value = data.herald_destinations.okta.destinations[*].log_types }}
"#,
        config(Some(r#"["AWS.CloudTrail"]"#))
    ));
    tf.apply();
    let out: serde_json::Value = serde_json::from_str(&tf.ok(&["output", "-json"]).stdout).unwrap();
    // Destinations that list the log type, and those without log types (every log type).
    assert_eq!(out["cloudtrail"]["value"], json!(["Any", "Cloud"]));
    assert_eq!(out["okta"]["value"], json!(["Any", "Okta only"]));
    assert!(
        out["log_types"]["value"]
            .as_array()
            .unwrap()
            .contains(&json!(["Okta.SystemLog"])),
        "{out}"
    );
    tf.assert_empty_plan();
}

#[test]
fn validate_refuses_a_bad_log_type_naming_the_attribute() {
    let tf = Tf::new(None);
    tf.config(
        r#"
resource "herald_destination" "x" {
  display_name = "ok"
  url          = "https://ok.example.com/"
  log_types    = ["AWS.CloudTrail", "AWS CloudTrail"]
}
"#,
    );
    let r = tf.run(&["validate"]);
    assert_ne!(r.code, 0, "{}", r.all());
    assert!(r.stderr.contains("Invalid log_types value"), "{}", r.stderr);
    assert!(
        r.stderr
            .contains(r#"log_types    = ["AWS.CloudTrail", "AWS CloudTrail"]"#),
        "names the attribute's line: {}",
        r.stderr
    );
    assert!(r.stderr.contains(r#""AWS CloudTrail""#), "{}", r.stderr);
    assert!(r.stderr.contains("letters, digits"), "{}", r.stderr);

    let too_many: Vec<String> = (0..101).map(|i| format!("\"Custom.T{i}\"")).collect();
    tf.config(&format!(
        "resource \"herald_destination\" \"x\" {{\n  display_name = \"ok\"\n  url = \"https://ok.example.com/\"\n  log_types = [{}]\n}}\n",
        too_many.join(", ")
    ));
    let r = tf.run(&["validate"]);
    assert_ne!(r.code, 0);
    assert!(r.stderr.contains("Invalid log_types"), "{}", r.stderr);
    assert!(r.stderr.contains("at most 100 log types"), "{}", r.stderr);

    tf.config(r#"data "herald_destinations" "x" { log_type = "Okta/SystemLog" }"#);
    let r = tf.run(&["validate"]);
    assert_ne!(r.code, 0);
    assert!(r.stderr.contains("Invalid log_type"), "{}", r.stderr);
    assert!(
        r.stderr.contains(r#"log_type = "Okta/SystemLog""#),
        "{}",
        r.stderr
    );
}
