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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tfplugin::schema::Attribute;

    #[test]
    fn schemas_carry_modes_types_and_nesting() {
        let s = Schema::new(
            "doc",
            vec![
                Attribute::computed("id", Type::String, "the id"),
                Attribute::optional_computed("tags", Type::set(Type::String), ""),
                Attribute::optional("secret", Type::String, "")
                    .sensitive()
                    .write_only(),
                Attribute::nested_list(
                    "items",
                    Mode::Computed,
                    vec![Attribute::computed("n", Type::Number, "")],
                    "",
                ),
            ],
        );
        let block = schema(&s).block.unwrap();
        let by_name = |n: &str| {
            block
                .attributes
                .iter()
                .find(|a| a.name == n)
                .unwrap()
                .clone()
        };
        let id = by_name("id");
        assert!(id.computed && !id.optional && !id.required);
        assert_eq!(id.r#type, br#""string""#);
        let tags = by_name("tags");
        assert!(tags.computed && tags.optional);
        assert_eq!(tags.r#type, br#"["set","string"]"#);
        let secret = by_name("secret");
        assert!(secret.sensitive && secret.write_only);
        let items = by_name("items");
        assert!(
            items.r#type.is_empty(),
            "nested attributes are typed by nested_type alone"
        );
        let nested = items.nested_type.unwrap();
        assert_eq!(nested.nesting, pb::schema::object::NestingMode::List as i32);
        assert_eq!(nested.attributes[0].name, "n");
        assert_eq!(block.description_kind, pb::StringKind::Markdown as i32);
    }

    #[test]
    fn diagnostics_carry_severity_and_path_steps() {
        use pb::attribute_path::step::Selector;
        let d = Diagnostics::from(
            Diagnostic::warning("w", "detail")
                .at(AttrPath::root("custom_headers").key("X-A").index(2)),
        );
        let out = diagnostics(d);
        assert_eq!(out[0].severity, pb::diagnostic::Severity::Warning as i32);
        let steps: Vec<_> = out[0]
            .attribute
            .as_ref()
            .unwrap()
            .steps
            .iter()
            .map(|s| s.selector.clone().unwrap())
            .collect();
        assert_eq!(
            steps,
            vec![
                Selector::AttributeName("custom_headers".into()),
                Selector::ElementKeyString("X-A".into()),
                Selector::ElementKeyInt(2),
            ]
        );
    }

    #[test]
    fn dynamic_values_decode_from_msgpack_or_json() {
        let ty = Type::Object([("a".to_string(), Type::String)].into());
        let v = Value::object([("a", Value::string("x"))]);
        let from_mp = decode(Some(&encode(&v, &ty)), &ty).unwrap();
        assert_eq!(from_mp, v);
        let json = pb::DynamicValue {
            msgpack: Vec::new(),
            json: br#"{"a":"x"}"#.to_vec(),
        };
        assert_eq!(decode(Some(&json), &ty).unwrap(), v);
        assert!(decode(None, &ty).unwrap().is_null());
    }
}
