//! `rate_limit_per_minute` on `herald_destination`, through the real CLI.

use serde_json::{Value, json};

use crate::harness::{Herald, Tf, squeezed};

fn config(limit: Option<&str>) -> String {
    let attr = limit
        .map(|l| format!("  rate_limit_per_minute = {l}\n"))
        .unwrap_or_default();
    format!(
        r#"
resource "herald_destination" "slack" {{
  display_name = "Slack"
  url          = "https://hooks.example.com/slack"
{attr}}}
"#
    )
}

#[test]
fn rate_limit_applies_changes_and_clears_with_empty_second_plans() {
    let herald = Herald::start();
    let tf = Tf::new(Some(&herald));
    tf.config(&config(Some("60")));
    let plan = tf.plan();
    assert!(
        squeezed(&plan.stdout).contains("rate_limit_per_minute = 60"),
        "{}",
        plan.stdout
    );
    tf.apply();
    let slack = herald.destination_named("Slack");
    assert_eq!(slack["rateLimitPerMinute"], 60);
    assert_eq!(
        tf.state("herald_destination.slack")["rate_limit_per_minute"],
        60
    );
    tf.assert_empty_plan();

    // A new limit is an in-place update.
    tf.config(&config(Some("600")));
    let plan = tf.plan();
    assert_eq!(plan.code, 2);
    assert!(
        plan.stdout.contains("1 to change, 0 to destroy"),
        "{}",
        plan.stdout
    );
    tf.apply();
    let after = herald.destination_named("Slack");
    assert_eq!(after["id"], slack["id"]);
    assert_eq!(after["rateLimitPerMinute"], 600);
    tf.assert_empty_plan();

    // A change made outside Terraform shows in the plan, and applying puts the config back.
    herald.update(json!({"id": slack["id"], "rateLimitPerMinute": 5}));
    let plan = tf.plan();
    assert_eq!(plan.code, 2, "{}", plan.stdout);
    assert!(plan.stdout.contains("5 -> 600"), "{}", plan.stdout);
    tf.apply();
    assert_eq!(herald.destination_named("Slack")["rateLimitPerMinute"], 600);

    // Removing the attribute removes the limit.
    tf.config(&config(None));
    tf.apply();
    assert_eq!(
        herald.destination_named("Slack")["rateLimitPerMinute"],
        Value::Null
    );
    assert_eq!(
        tf.state("herald_destination.slack")["rate_limit_per_minute"],
        Value::Null
    );
    tf.assert_empty_plan();
}

#[test]
fn import_reads_the_rate_limit_and_the_plan_is_empty() {
    let herald = Herald::start();
    let created = herald.create(json!({
        "displayName": "Imported",
        "url": "https://hooks.example.com/imported",
        "rateLimitPerMinute": 120,
    }));
    let id = created["id"].as_str().unwrap();
    let tf = Tf::new(Some(&herald));
    tf.config(
        r#"
resource "herald_destination" "imported" {
  display_name          = "Imported"
  url                   = "https://hooks.example.com/imported"
  rate_limit_per_minute = 120
}
"#,
    );
    tf.ok(&["import", "-input=false", "herald_destination.imported", id]);
    assert_eq!(
        tf.state("herald_destination.imported")["rate_limit_per_minute"],
        120
    );
    tf.assert_empty_plan();
}

#[test]
fn validate_refuses_a_rate_out_of_range_naming_the_attribute() {
    let tf = Tf::new(None);
    for (value, words) in [
        ("0", "1 to 600000"),
        ("600001", "1 to 600000"),
        ("1.5", "whole number"),
    ] {
        tf.config(&config(Some(value)));
        let r = tf.run(&["validate"]);
        assert_ne!(r.code, 0, "{value}: {}", r.all());
        assert!(
            r.stderr.contains("Invalid rate_limit_per_minute"),
            "{value}: {}",
            r.stderr
        );
        assert!(
            r.stderr
                .contains(&format!("rate_limit_per_minute = {value}")),
            "names the attribute's line: {}",
            r.stderr
        );
        assert!(r.stderr.contains(words), "{value}: {}", r.stderr);
    }
    tf.config(&config(Some("600000")));
    let r = tf.run(&["validate"]);
    assert_eq!(r.code, 0, "{}", r.all());
}
