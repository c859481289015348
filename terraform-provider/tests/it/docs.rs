//! Registry-style docs generated from `terraform providers schema -json` and the example files;
//! the test fails when docs/ is stale. Regenerate with `HERALD_UPDATE_DOCS=1 cargo test --test it docs`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::PathBuf;

use serde_json::Value;

use crate::harness::Tf;

const PROVIDER: &str = "registry.terraform.io/herald/herald";

fn manifest() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn example(rel: &str) -> Option<String> {
    std::fs::read_to_string(manifest().join("examples").join(rel)).ok()
}

fn type_name(t: &Value) -> String {
    match t {
        Value::String(s) => match s.as_str() {
            "string" => "String".into(),
            "number" => "Number".into(),
            "bool" => "Boolean".into(),
            "dynamic" => "Dynamic".into(),
            other => other.into(),
        },
        Value::Array(a) if a.len() == 2 => {
            let kind = match a[0].as_str().unwrap_or_default() {
                "list" => "List",
                "set" => "Set",
                "map" => "Map",
                "object" => return "Object".into(),
                other => other,
            };
            format!("{kind} of {}", type_name(&a[1]))
        }
        _ => "Unknown".into(),
    }
}

/// One attribute's bullet; nested attributes are queued for their own section.
fn bullet(name: &str, a: &Value, parent: &str, nested: &mut Vec<(String, Value)>) -> String {
    let mut kind = match a.get("nested_type") {
        Some(n) => {
            let anchor = format!("{parent}{name}");
            nested.push((anchor.clone(), n.clone()));
            let mode = n["nesting_mode"].as_str().unwrap_or("single");
            let mode = match mode {
                "list" => "List of Object",
                "set" => "Set of Object",
                "map" => "Map of Object",
                _ => "Object",
            };
            format!("{mode}, see [below for nested schema](#nestedatt--{anchor})")
        }
        None => type_name(&a["type"]),
    };
    if a["sensitive"] == true {
        kind.push_str(", Sensitive");
    }
    let desc = a["description"].as_str().unwrap_or_default();
    format!("- `{name}` ({kind}) {desc}\n")
}

fn attribute_sections(
    attrs: &Value,
    parent: &str,
    out: &mut String,
    nested: &mut Vec<(String, Value)>,
) {
    let attrs: BTreeMap<String, Value> = attrs
        .as_object()
        .map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
        .unwrap_or_default();
    type Pick = fn(&Value) -> bool;
    let groups: [(&str, Pick); 3] = [
        ("Required", |a| a["required"] == true),
        ("Optional", |a| a["optional"] == true),
        ("Read-Only", |a| {
            a["computed"] == true && a["optional"] != true
        }),
    ];
    for (title, pick) in groups {
        let items: Vec<_> = attrs.iter().filter(|(_, a)| pick(a)).collect();
        if items.is_empty() {
            continue;
        }
        writeln!(out, "### {title}\n").unwrap();
        for (name, a) in items {
            out.push_str(&bullet(name, a, parent, nested));
        }
        out.push('\n');
    }
}

fn schema_section(block: &Value, out: &mut String) {
    out.push_str("## Schema\n\n");
    let mut nested = Vec::new();
    attribute_sections(&block["attributes"], "", out, &mut nested);
    while !nested.is_empty() {
        let (anchor, n) = nested.remove(0);
        writeln!(
            out,
            "<a id=\"nestedatt--{anchor}\"></a>\n### Nested Schema for `{}`\n",
            anchor.replace("--", ".")
        )
        .unwrap();
        let mut more = Vec::new();
        let mut body = String::new();
        attribute_sections(
            &n["attributes"],
            &format!("{anchor}--"),
            &mut body,
            &mut more,
        );
        // Inside a nested schema every attribute sits under one heading level deeper.
        out.push_str(&body.replace("### ", "#### "));
        nested.extend(more);
    }
}

fn page(
    kind: &str,
    name: &str,
    schema: &Value,
    example_path: &str,
    import: Option<String>,
) -> String {
    let block = &schema["block"];
    let description = block["description"].as_str().unwrap_or_default();
    let mut out = String::new();
    let title = match kind {
        "Provider" => "Herald Provider".to_string(),
        _ => format!("{name} ({kind})"),
    };
    let page_title = match kind {
        "Provider" => "Provider: Herald".to_string(),
        _ => format!("{name} {kind} - herald"),
    };
    writeln!(
        out,
        "---\npage_title: \"{page_title}\"\ndescription: |-\n  {description}\n---\n"
    )
    .unwrap();
    writeln!(out, "# {title}\n\n{description}\n").unwrap();
    if let Some(ex) = example(example_path) {
        writeln!(
            out,
            "## Example Usage\n\n```terraform\n{}\n```\n",
            ex.trim_end()
        )
        .unwrap();
    }
    schema_section(block, &mut out);
    if let Some(imp) = import {
        writeln!(
            out,
            "## Import\n\nImport is supported using the following syntax:\n\n```shell\n{}\n```\n",
            imp.trim_end()
        )
        .unwrap();
    }
    format!("{}\n", out.trim_end())
}

fn generate() -> BTreeMap<String, String> {
    let tf = Tf::new(None);
    tf.config("");
    let r = tf.ok(&["providers", "schema", "-json"]);
    let doc: Value = serde_json::from_str(&r.stdout).expect("schema JSON");
    let p = &doc["provider_schemas"][PROVIDER];
    let mut pages = BTreeMap::new();
    pages.insert(
        "index.md".into(),
        page(
            "Provider",
            "herald",
            &p["provider"],
            "provider/provider.tf",
            None,
        ),
    );
    for (name, schema) in p["resource_schemas"].as_object().unwrap() {
        let short = name.trim_start_matches("herald_");
        pages.insert(
            format!("resources/{short}.md"),
            page(
                "Resource",
                name,
                schema,
                &format!("resources/{name}/resource.tf"),
                example(&format!("resources/{name}/import.sh")),
            ),
        );
    }
    for (name, schema) in p["data_source_schemas"].as_object().unwrap() {
        let short = name.trim_start_matches("herald_");
        pages.insert(
            format!("data-sources/{short}.md"),
            page(
                "Data Source",
                name,
                schema,
                &format!("data-sources/{name}/data-source.tf"),
                None,
            ),
        );
    }
    pages
}

#[test]
fn docs_are_generated_from_the_schema_and_up_to_date() {
    let docs = manifest().join("docs");
    let pages = generate();
    let update = std::env::var_os("HERALD_UPDATE_DOCS").is_some();
    let mut stale = Vec::new();
    for (rel, content) in &pages {
        let path: PathBuf = docs.join(rel);
        if update {
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, content).unwrap();
        } else if std::fs::read_to_string(&path).ok().as_deref() != Some(content.as_str()) {
            stale.push(rel.clone());
        }
    }
    assert!(
        stale.is_empty(),
        "docs are stale: {stale:?}; run `HERALD_UPDATE_DOCS=1 cargo test --test it docs` in terraform-provider/"
    );
    for required in [
        "index.md",
        "resources/destination.md",
        "data-sources/destination.md",
        "data-sources/destinations.md",
    ] {
        assert!(pages.contains_key(required), "{required}");
    }
    // Every attribute is documented.
    for content in pages.values() {
        assert!(
            !content.contains(") \n"),
            "an attribute without a description:\n{content}"
        );
    }
}
