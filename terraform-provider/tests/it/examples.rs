//! The example configurations work as written.

use std::path::Path;

use crate::harness::{Herald, PROVIDER_HEADER, Tf};

fn read(rel: &str) -> String {
    std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("examples")
            .join(rel),
    )
    .unwrap()
}

#[test]
fn the_complete_example_applies_and_destroys() {
    let herald = Herald::start();
    let tf = Tf::new(Some(&herald));
    // The complete configuration lives in the repository's examples/terraform/.
    let complete = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/terraform/main.tf");
    tf.file("main.tf", &std::fs::read_to_string(complete).unwrap());
    let out = tf.apply();
    assert!(out.stdout.contains("5 added"), "{}", out.stdout);
    assert!(
        !out.all().contains("change-me"),
        "header values stay hidden"
    );
    let names: Vec<String> = herald
        .destinations()
        .iter()
        .map(|d| d["displayName"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(names.len(), 5, "{names:?}");
    let team = herald.destination_named("Team cloud");
    assert!(
        team["customHeaders"]
            .as_array()
            .unwrap()
            .iter()
            .any(|h| h["name"] == "X-Team" && h["value"] == "cloud")
    );
    let outputs: serde_json::Value =
        serde_json::from_str(&tf.ok(&["output", "-json"]).stdout).unwrap();
    assert_eq!(
        outputs["critical_destinations"]["value"],
        serde_json::json!([
            "Detection platform errors",
            "SOC pager",
            "Team cloud",
            "Team detection",
            "Team identity"
        ])
    );
    let mut cloud_logs: Vec<&str> = team["logTypes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l.as_str().unwrap())
        .collect();
    cloud_logs.sort();
    assert_eq!(
        cloud_logs,
        ["AWS.CloudTrail", "AWS.S3ServerAccess", "AWS.VPCFlow"]
    );
    assert_eq!(
        outputs["cloudtrail_destinations"]["value"],
        serde_json::json!([
            "Detection platform errors",
            "SOC pager",
            "Team cloud",
            "Team detection"
        ])
    );
    assert_eq!(
        herald.destination_named("SOC pager")["autoDisableAfterFailures"],
        50
    );
    tf.assert_empty_plan();
    tf.ok(&["destroy", "-auto-approve", "-input=false"]);
    assert!(herald.destinations().is_empty());
}

#[test]
fn the_doc_snippets_validate() {
    for rel in [
        "provider/provider.tf",
        "resources/herald_destination/resource.tf",
        "data-sources/herald_destination/data-source.tf",
        "data-sources/herald_destinations/data-source.tf",
    ] {
        let tf = Tf::new(None);
        let body = read(rel);
        let content = if body.contains("required_providers") {
            body
        } else {
            format!("{PROVIDER_HEADER}\n{body}")
        };
        tf.file("main.tf", &content);
        let r = tf.run(&["validate"]);
        assert_eq!(r.code, 0, "{rel}:\n{}", r.all());
    }
}
