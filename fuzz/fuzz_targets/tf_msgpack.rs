//! The Terraform provider's msgpack decoder (`tfplugin::value`), directed by the types the
//! provider's schemas use. A value it decodes re-encodes to bytes that decode to the same value
//! (unknowns with the same refinements) and re-encode to the same bytes; JSON state decodes
//! without panicking. `dynamic` carries its own type, so it is only required not to panic.
#![no_main]

use std::collections::BTreeMap;

use herald_fuzz::tfplugin::types::Type;
use herald_fuzz::tfplugin::value::{Number, Refinements, Value};
use libfuzzer_sys::fuzz_target;

fn types() -> Vec<Type> {
    let destination = Type::Object(BTreeMap::from([
        ("id".to_string(), Type::String),
        ("display_name".to_string(), Type::String),
        ("url".to_string(), Type::String),
        ("severities".to_string(), Type::set(Type::String)),
        ("alert_types".to_string(), Type::set(Type::String)),
        ("custom_headers".to_string(), Type::map(Type::String)),
        ("custom_headers_wo".to_string(), Type::map(Type::String)),
        ("custom_headers_wo_version".to_string(), Type::Number),
        ("enabled".to_string(), Type::Bool),
        ("signing_secret".to_string(), Type::String),
        ("created_at".to_string(), Type::String),
        ("updated_at".to_string(), Type::String),
    ]));
    let data_source = Type::Object(BTreeMap::from([
        ("severity".to_string(), Type::String),
        ("destinations".to_string(), Type::list(destination.clone())),
    ]));
    vec![
        Type::String,
        Type::Number,
        Type::Bool,
        Type::set(Type::String),
        Type::map(Type::String),
        Type::list(Type::Number),
        destination,
        data_source,
        Type::Dynamic,
    ]
}

fn has_dynamic(t: &Type) -> bool {
    match t {
        Type::Dynamic => true,
        Type::List(t) | Type::Set(t) | Type::Map(t) => has_dynamic(t),
        Type::Object(attrs) => attrs.values().any(has_dynamic),
        _ => false,
    }
}

fn same_number(a: &Number, b: &Number) -> bool {
    match (a, b) {
        (Number::Int(x), Number::Int(y)) => x == y,
        (Number::Float(x), Number::Float(y)) => x == y || (x.is_nan() && y.is_nan()),
        _ => false,
    }
}

fn same_bound(a: &Option<(Number, bool)>, b: &Option<(Number, bool)>) -> bool {
    match (a, b) {
        (None, None) => true,
        (Some((x, i)), Some((y, j))) => i == j && same_number(x, y),
        _ => false,
    }
}

fn same_refinements(a: &Refinements, b: &Refinements) -> bool {
    a.not_null == b.not_null
        && a.string_prefix == b.string_prefix
        && same_bound(&a.number_lower, &b.number_lower)
        && same_bound(&a.number_upper, &b.number_upper)
        && a.length_lower == b.length_lower
        && a.length_upper == b.length_upper
}

/// Like `Value`'s equality, but strict about numbers (NaN equals NaN, an int is not a float) and
/// about refinements, and order-sensitive for sets (a re-encoding keeps the order).
fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Null, Value::Null) => true,
        (Value::Unknown(x), Value::Unknown(y)) => same_refinements(x, y),
        (Value::Bool(x), Value::Bool(y)) => x == y,
        (Value::Number(x), Value::Number(y)) => same_number(x, y),
        (Value::String(x), Value::String(y)) => x == y,
        (Value::List(x), Value::List(y)) | (Value::Set(x), Value::Set(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| same(p, q))
        }
        (Value::Map(x), Value::Map(y)) | (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|((k, p), (l, q))| k == l && same(p, q))
        }
        _ => false,
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((selector, bytes)) = data.split_first() else {
        return;
    };
    let types = types();
    let ty = &types[usize::from(*selector) % types.len()];
    let _ = Value::from_json(bytes, ty);
    let Ok(v) = Value::from_msgpack(bytes, ty) else {
        return;
    };
    let _ = v.is_wholly_known();
    let encoded = v.to_msgpack(ty);
    if has_dynamic(ty) {
        let _ = Value::from_msgpack(&encoded, ty);
        return;
    }
    let again = Value::from_msgpack(&encoded, ty).expect("a re-encoded value decodes");
    assert!(same(&v, &again), "{v:?} came back as {again:?}");
    assert_eq!(again.to_msgpack(ty), encoded, "encoding is not stable");
});
