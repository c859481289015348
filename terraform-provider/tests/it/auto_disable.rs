//! `auto_disable_after_failures` and the computed `disabled_reason` on `herald_destination`,
//! through the real CLI, and the GitOps answer to an auto-disable: the next plan shows
//! `enabled: false -> true`, and applying it enables the destination again.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::harness::{Herald, Tf, free_port, squeezed};

fn config(url: &str, threshold: Option<&str>) -> String {
    let attr = threshold
        .map(|t| format!("  auto_disable_after_failures = {t}\n"))
        .unwrap_or_default();
    format!(
        r#"
resource "herald_destination" "pager" {{
  display_name = "Pager"
  url          = "{url}"
{attr}}}
"#
    )
}

/// Polls Herald until the destination matches; panics after 20 s.
fn wait_for(herald: &Herald, name: &str, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let d = herald.destination_named(name);
        if done(&d) {
            return d;
        }
        assert!(
            Instant::now() < deadline,
            "destination never changed: {d:#}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn an_auto_disable_shows_in_the_plan_and_apply_enables_again() {
    // Ten quick retries, so a delivery to a closed port ends FAILED in well under a second.
    let herald = Herald::start_with(&[("HERALD_RETRY_SCHEDULE", &["10ms"; 10].join(","))]);
    // Nothing listens on this port: every attempt is a refused connection.
    let url = format!("http://127.0.0.1:{}/hook", free_port());
    let tf = Tf::new(Some(&herald));
    tf.config(&config(&url, Some("1")));
    let plan = tf.plan();
    assert!(
        squeezed(&plan.stdout).contains("auto_disable_after_failures = 1"),
        "{}",
        plan.stdout
    );
    assert!(
        squeezed(&plan.stdout).contains("disabled_reason = (known after apply)"),
        "{}",
        plan.stdout
    );
    tf.apply();
    let created = herald.destination_named("Pager");
    assert_eq!(created["autoDisableAfterFailures"], 1);
    let state = tf.state("herald_destination.pager");
    assert_eq!(state["auto_disable_after_failures"], 1);
    assert_eq!(state["disabled_reason"], Value::Null);
    tf.assert_empty_plan();

    herald.graphql(
        "mutation { sendAlert(input: {detectionId: \"d\", title: \"t\", severity: \"HIGH\"}) { deliveries { id } } }",
        json!({}),
    );
    let disabled = wait_for(&herald, "Pager", |d| d["enabled"] == false);
    let reason = disabled["disabledReason"].as_str().unwrap().to_owned();
    assert!(
        reason.starts_with(
            "auto-disabled after 1 consecutive failed deliveries; last: network error"
        ),
        "{reason}"
    );

    // The GitOps answer: the configuration says enabled (by default), so the plan puts it back.
    let plan = tf.plan();
    assert_eq!(plan.code, 2, "{}", plan.all());
    assert!(plan.stdout.contains("~ enabled"), "{}", plan.stdout);
    assert!(plan.stdout.contains("false -> true"), "{}", plan.stdout);
    assert!(
        plan.stdout
            .contains("auto-disabled after 1 consecutive failed deliveries"),
        "the plan shows why: {}",
        plan.stdout
    );
    tf.apply();
    let enabled = herald.destination_named("Pager");
    assert_eq!(enabled["enabled"], true);
    assert_eq!(enabled["disabledReason"], Value::Null);
    assert_eq!(
        tf.state("herald_destination.pager")["disabled_reason"],
        Value::Null
    );
    tf.assert_empty_plan();

    // Changed in place, then removed: removing the attribute clears the threshold in Herald.
    tf.config(&config(&url, Some("25")));
    let plan = tf.plan();
    assert!(
        plan.stdout.contains("1 to change, 0 to destroy"),
        "{}",
        plan.stdout
    );
    tf.apply();
    assert_eq!(
        herald.destination_named("Pager")["autoDisableAfterFailures"],
        25
    );
    tf.assert_empty_plan();
    tf.config(&config(&url, None));
    tf.apply();
    let cleared = herald.destination_named("Pager");
    assert_eq!(cleared["autoDisableAfterFailures"], Value::Null);
    assert_eq!(cleared["id"], created["id"]);
    tf.assert_empty_plan();
}

#[test]
fn import_reads_the_threshold_and_the_plan_is_empty() {
    let herald = Herald::start();
    let created = herald.create(json!({
        "displayName": "Imported",
        "url": "https://hooks.example.com/imported",
        "autoDisableAfterFailures": 7,
    }));
    let id = created["id"].as_str().unwrap();
    let tf = Tf::new(Some(&herald));
    tf.config(
        &config("https://hooks.example.com/imported", Some("7")).replace("Pager", "Imported"),
    );
    tf.ok(&["import", "-input=false", "herald_destination.pager", id]);
    let state = tf.state("herald_destination.pager");
    assert_eq!(state["auto_disable_after_failures"], 7);
    assert_eq!(state["disabled_reason"], Value::Null);
    tf.assert_empty_plan();
}

#[test]
fn validate_refuses_a_threshold_out_of_range_naming_the_attribute() {
    let tf = Tf::new(None);
    for (bad, rule) in [
        ("0", "between 1 and 10000"),
        ("10001", "between 1 and 10000"),
        ("2.5", "whole number"),
    ] {
        tf.config(&config("https://ok.example.com/", Some(bad)));
        let r = tf.run(&["validate"]);
        assert_ne!(r.code, 0, "{bad}: {}", r.all());
        assert!(
            r.stderr.contains("Invalid auto_disable_after_failures"),
            "{}",
            r.stderr
        );
        assert!(
            r.stderr
                .contains(&format!("auto_disable_after_failures = {bad}")),
            "names the attribute's line: {}",
            r.stderr
        );
        assert!(r.stderr.contains(rule), "{bad}: {}", r.stderr);
    }
}
