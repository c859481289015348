//! Conversions between the framework's types and the generated protocol messages.

use super::diag::{AttrPath, Diagnostic, Diagnostics, Severity, Step};
use super::proto::tfplugin6 as pb;
use super::schema::{Attribute, Mode, Schema};
use super::types::Type;
use super::value::{Value, ValueError};

fn attributes(attrs: &[Attribute]) -> Vec<pb::schema::Attribute> {
    attrs
        .iter()
        .map(|a| pb::schema::Attribute {
            name: a.name.clone(),
            // A nested attribute is typed by its nested_type alone.
            r#type: if a.nested.is_some() {
                Vec::new()
            } else {
                a.ty.to_json_bytes()
            },
            nested_type: a.nested.as_ref().map(|inner| pb::schema::Object {
                attributes: attributes(inner),
                nesting: pb::schema::object::NestingMode::List as i32,
            }),
            description: a.description.clone(),
            required: a.mode == Mode::Required,
            optional: matches!(a.mode, Mode::Optional | Mode::OptionalComputed),
            computed: a.is_computed(),
            sensitive: a.sensitive,
            description_kind: pb::StringKind::Markdown as i32,
            deprecated: false,
            write_only: a.write_only,
        })
        .collect()
}

pub fn schema(s: &Schema) -> pb::Schema {
    let attributes = attributes(&s.attributes);
    pb::Schema {
        version: s.version,
        block: Some(pb::schema::Block {
            version: s.version,
            attributes,
            block_types: Vec::new(),
            description: s.description.clone(),
            description_kind: pb::StringKind::Markdown as i32,
            deprecated: false,
        }),
    }
}

pub fn path(p: &AttrPath) -> pb::AttributePath {
    use pb::attribute_path::step::Selector;
    pb::AttributePath {
        steps: p
            .0
            .iter()
            .map(|s| pb::attribute_path::Step {
                selector: Some(match s {
                    Step::Attr(a) => Selector::AttributeName(a.clone()),
                    Step::Key(k) => Selector::ElementKeyString(k.clone()),
                    Step::Index(i) => Selector::ElementKeyInt(*i),
                }),
            })
            .collect(),
    }
}

pub fn diagnostics(d: Diagnostics) -> Vec<pb::Diagnostic> {
    d.0.into_iter()
        .map(|d| pb::Diagnostic {
            severity: match d.severity {
                Severity::Error => pb::diagnostic::Severity::Error,
                Severity::Warning => pb::diagnostic::Severity::Warning,
            } as i32,
            summary: d.summary,
            detail: d.detail,
            attribute: d.path.as_ref().map(path),
        })
        .collect()
}

/// Terraform sends msgpack; JSON is accepted too because the message allows either.
pub fn decode(dv: Option<&pb::DynamicValue>, ty: &Type) -> Result<Value, Diagnostics> {
    let Some(dv) = dv else {
        return Ok(Value::Null);
    };
    let result = if !dv.msgpack.is_empty() {
        Value::from_msgpack(&dv.msgpack, ty)
    } else if !dv.json.is_empty() {
        Value::from_json(&dv.json, ty)
    } else {
        Ok(Value::Null)
    };
    result.map_err(value_error)
}

pub fn value_error(e: ValueError) -> Diagnostics {
    Diagnostic::error(
        "Invalid value from Terraform",
        format!("The provider could not decode a value Terraform sent: {e}"),
    )
    .into()
}

pub fn encode(v: &Value, ty: &Type) -> pb::DynamicValue {
    pb::DynamicValue {
        msgpack: v.to_msgpack(ty),
        json: Vec::new(),
    }
}
