//! Wall time of `terraform apply` for 100 destinations next to 100 `terraform_data` resources of
//! the same shape. Ignored by default; run with
//! `cargo test --test it bench -- --ignored --nocapture`.

use std::time::Instant;

use crate::harness::{Herald, Tf};

const N: usize = 100;

fn timed_apply(tf: &Tf) -> f64 {
    let start = Instant::now();
    let out = tf.apply();
    let secs = start.elapsed().as_secs_f64();
    assert!(out.stdout.contains(&format!("{N} added")), "{}", out.stdout);
    secs
}

#[test]
#[ignore = "benchmark: run with --ignored --nocapture; speed figures stay out of the suite"]
fn bench_apply_100_destinations_vs_terraform_data() {
    let herald = Herald::start();
    let tf = Tf::new(Some(&herald));
    tf.config(&format!(
        r#"
resource "herald_destination" "d" {{
  count          = {N}
  display_name   = "dest-${{count.index}}"
  url            = "https://hooks.example.com/${{count.index}}"
  severities     = ["HIGH", "CRITICAL"]
  custom_headers = {{ "X-Api-Key" = "key-${{count.index}}" }}
}}
"#
    ));
    let herald_secs = timed_apply(&tf);
    assert_eq!(herald.destinations().len(), N.min(100));
    tf.assert_empty_plan();
    let start = Instant::now();
    tf.ok(&["destroy", "-auto-approve", "-input=false"]);
    let destroy_secs = start.elapsed().as_secs_f64();
    assert!(herald.destinations().is_empty());

    let tf_data = Tf::new(None);
    tf_data.file(
        "main.tf",
        &format!(
            r#"
resource "terraform_data" "d" {{
  count = {N}
  input = {{
    display_name   = "dest-${{count.index}}"
    url            = "https://hooks.example.com/${{count.index}}"
    severities     = ["HIGH", "CRITICAL"]
    custom_headers = {{ "X-Api-Key" = "key-${{count.index}}" }}
  }}
}}
"#
        ),
    );
    let data_secs = timed_apply(&tf_data);
    println!(
        "terraform apply, {N} resources: herald_destination {herald_secs:.2} s, terraform_data {data_secs:.2} s (herald destroy {destroy_secs:.2} s)"
    );
}
