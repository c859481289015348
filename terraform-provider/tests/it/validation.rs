//! Every rule fails at `terraform validate`, pointing at the offending line.

use crate::harness::{Herald, Tf};

/// Validates `attrs` inside a resource block and returns the error output.
fn validate(attrs: &str) -> String {
    let tf = Tf::new(None);
    tf.config(&format!(
        "resource \"herald_destination\" \"x\" {{\n  display_name = \"ok\"\n  url = \"https://ok.example.com/\"\n{attrs}\n}}\n"
    ));
    let r = tf.run(&["validate"]);
    assert_ne!(r.code, 0, "validate should fail for {attrs}:\n{}", r.all());
    r.stderr
}

#[test]
fn unknown_severity_and_alert_type() {
    let err = validate(r#"  severities = ["HIGH", "SEVERE"]"#);
    assert!(err.contains("Invalid severities value"), "{err}");
    assert!(
        err.contains(r#"severities = ["HIGH", "SEVERE"]"#),
        "names the line: {err}"
    );
    assert!(err.contains("unknown value \"SEVERE\""), "{err}");

    let err = validate(r#"  alert_types = ["RULE", "ALARM"]"#);
    assert!(err.contains("Invalid alert_types value"), "{err}");
    let err = validate("  alert_types = []");
    assert!(
        err.contains("alertTypes must not be empty") || err.contains("must not be empty"),
        "{err}"
    );
}

#[test]
fn bad_urls() {
    for url in [
        "hooks.example.com/x",
        "ftp://example.com/",
        "https://user:pw@example.com/",
    ] {
        let tf = Tf::new(None);
        tf.config(&format!(
            "resource \"herald_destination\" \"x\" {{\n  display_name = \"ok\"\n  url = \"{url}\"\n}}\n"
        ));
        let r = tf.run(&["validate"]);
        assert_ne!(r.code, 0);
        assert!(r.stderr.contains("Invalid url"), "{url}: {}", r.stderr);
        assert!(
            r.stderr.contains(&format!("url = \"{url}\"")),
            "{}",
            r.stderr
        );
    }
}

#[test]
fn reserved_and_malformed_header_names_and_values_with_newlines() {
    let err = validate("  custom_headers = {\n    \"Content-Type\" = \"text/plain\"\n  }");
    assert!(err.contains("Invalid custom header name"), "{err}");
    assert!(err.contains("is reserved"), "{err}");
    assert!(err.contains(r#""Content-Type" = "text/plain""#), "{err}");

    let err = validate("  custom_headers = {\n    \"webhook-id\" = \"1\"\n  }");
    assert!(err.contains("is reserved"), "{err}");

    let err = validate("  custom_headers = {\n    \"X Bad\" = \"1\"\n  }");
    assert!(err.contains("RFC 9110 token"), "{err}");

    let err = validate("  custom_headers = {\n    \"X-Key\" = \"line1\\nline2\"\n  }");
    assert!(err.contains("Invalid custom header value"), "{err}");
    assert!(err.contains("'\\n'"), "{err}");
    assert!(
        !err.contains("line2\n") || err.contains(r#""X-Key" = "line1\nline2""#),
        "{err}"
    );
}

#[test]
fn blank_display_name_and_data_source_lookup_keys() {
    let tf = Tf::new(None);
    tf.config("resource \"herald_destination\" \"x\" {\n  display_name = \"   \"\n  url = \"https://ok.example.com/\"\n}\n");
    let r = tf.run(&["validate"]);
    assert!(r.stderr.contains("Invalid display_name"), "{}", r.stderr);

    tf.config("data \"herald_destination\" \"x\" {\n  id = \"a\"\n  display_name = \"b\"\n}\n");
    let r = tf.run(&["validate"]);
    assert!(r.stderr.contains("Conflicting lookup keys"), "{}", r.stderr);

    tf.config("data \"herald_destinations\" \"x\" {\n  severity = \"URGENT\"\n}\n");
    let r = tf.run(&["validate"]);
    assert!(r.stderr.contains("Invalid severity"), "{}", r.stderr);
}

#[test]
fn unknown_values_are_not_errors_at_validate() {
    let tf = Tf::new(None);
    tf.config(
        r#"
variable "url" { type = string }
variable "sev" { type = list(string) }
resource "herald_destination" "x" {
  display_name = "ok"
  url          = var.url
  severities   = var.sev
  custom_headers = { "X-Key" = var.url }
}
"#,
    );
    tf.ok(&["validate"]);
}

#[test]
fn a_missing_endpoint_or_token_names_the_attribute_and_the_variable() {
    let herald = Herald::start();
    let tf = Tf::new(None);
    tf.config("resource \"herald_destination\" \"x\" {\n  display_name = \"ok\"\n  url = \"https://ok.example.com/\"\n}\n");
    let r = tf.run(&["plan", "-input=false"]);
    assert_ne!(r.code, 0);
    assert!(r.stderr.contains("Missing Herald endpoint"), "{}", r.stderr);
    assert!(r.stderr.contains("HERALD_ENDPOINT"), "{}", r.stderr);
    assert!(r.stderr.contains("HERALD_API_TOKEN"), "{}", r.stderr);

    // A wrong token reaches the user as Herald's refusal.
    std::fs::write(
        tf.dir.path().join("main.tf"),
        format!(
            "terraform {{\n  required_providers {{\n    herald = {{ source = \"herald/herald\" }}\n  }}\n}}\nprovider \"herald\" {{\n  endpoint = \"{}\"\n  api_token = \"hrld_wrong\"\n}}\nresource \"herald_destination\" \"x\" {{\n  display_name = \"ok\"\n  url = \"https://ok.example.com/\"\n}}\n",
            herald.endpoint
        ),
    )
    .unwrap();
    let r = tf.run(&["apply", "-auto-approve", "-input=false"]);
    assert_ne!(r.code, 0);
    assert!(
        r.stderr.contains("Herald rejected the API token") || r.stderr.contains("401"),
        "{}",
        r.stderr
    );
    assert!(
        !r.all().contains("hrld_wrong"),
        "the token must not be echoed"
    );
}

#[test]
fn a_provider_configuration_unknown_until_apply_is_not_an_error() {
    let herald = Herald::start();
    let mut tf = Tf::new(None);
    tf.env("TF_VAR_herald_token", &herald.token);
    tf.file(
        "main.tf",
        &format!(
            r#"
terraform {{
  required_providers {{
    herald = {{ source = "herald/herald" }}
  }}
}}
variable "herald_token" {{
  type      = string
  sensitive = true
}}
# Known only once applied.
resource "terraform_data" "endpoint" {{
  input = "{}"
}}
provider "herald" {{
  endpoint  = terraform_data.endpoint.output
  api_token = var.herald_token
}}
resource "herald_destination" "d" {{
  display_name = "late"
  url          = "https://hooks.example.com/late"
}}
"#,
            herald.endpoint
        ),
    );
    tf.ok(&["validate"]);
    let plan = tf.plan();
    assert_eq!(plan.code, 2, "{}", plan.all());
    tf.apply();
    assert_eq!(herald.destinations().len(), 1);
}
