//! What the fuzz targets share: JSON values built from fuzzer bytes, and the Terraform provider's
//! value codec.
#![forbid(unsafe_code)]

pub mod tfplugin;

use arbitrary::{Result, Unstructured};
use serde_json::{Map, Number, Value};

/// A JSON value of at most `depth` levels, with every kind of scalar (finite floats included).
pub fn json_value(u: &mut Unstructured, depth: u32) -> Result<Value> {
    let kinds = if depth == 0 { 5 } else { 7 };
    Ok(match u.choose_index(kinds)? {
        0 => Value::Null,
        1 => Value::Bool(u.arbitrary()?),
        2 => Value::Number(Number::from(u.arbitrary::<i64>()?)),
        3 => Number::from_f64(u.arbitrary()?).map_or(Value::Null, Value::Number),
        4 => Value::String(u.arbitrary()?),
        5 => {
            let n = u.int_in_range(0..=4)?;
            Value::Array(
                (0..n)
                    .map(|_| json_value(u, depth - 1))
                    .collect::<Result<_>>()?,
            )
        }
        _ => Value::Object(json_object(u, depth - 1)?),
    })
}

/// A JSON object of at most `depth` levels below it.
pub fn json_object(u: &mut Unstructured, depth: u32) -> Result<Map<String, Value>> {
    let n = u.int_in_range(0..=4)?;
    let mut m = Map::new();
    for _ in 0..n {
        m.insert(u.arbitrary()?, json_value(u, depth)?);
    }
    Ok(m)
}
