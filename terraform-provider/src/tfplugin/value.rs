//! Terraform values and their two wire encodings: msgpack (everything Terraform sends and receives)
//! and JSON (stored state handed to `UpgradeResourceState`).
//!
//! Neither encoding says whether an array is a list or a set, or a map an object or a map, so
//! decoding is always directed by the [`Type`] from the schema.

use std::collections::BTreeMap;
use std::io::Cursor;

use rmpv::Value as Mp;

use super::diag::{AttrPath, Diagnostic, Diagnostics};
use super::types::Type;

/// cty's extension code for an unknown value with refinements; any other code is a plain unknown.
const REFINED_UNKNOWN_EXT: i8 = 12;
const REFINE_NULLNESS: i64 = 1;
const REFINE_STRING_PREFIX: i64 = 2;
const REFINE_NUMBER_LOWER: i64 = 3;
const REFINE_NUMBER_UPPER: i64 = 4;
const REFINE_LENGTH_LOWER: i64 = 5;
const REFINE_LENGTH_UPPER: i64 = 6;

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Number {
    Int(i64),
    Float(f64),
}

impl Number {
    fn parse(s: &str) -> Option<Number> {
        s.parse::<i64>()
            .map(Number::Int)
            .ok()
            .or_else(|| s.parse::<f64>().ok().map(Number::Float))
    }

    fn to_mp(self) -> Mp {
        match self {
            Number::Int(i) => Mp::from(i),
            Number::Float(f) => Mp::F64(f),
        }
    }

    fn from_mp(v: &Mp) -> Option<Number> {
        match v {
            Mp::Integer(i) => i
                .as_i64()
                .map(Number::Int)
                .or_else(|| i.as_f64().map(Number::Float)),
            Mp::F32(f) => Some(Number::Float(f64::from(*f))),
            Mp::F64(f) => Some(Number::Float(*f)),
            // Terraform sends numbers beyond 64 bits as decimal strings.
            Mp::String(s) => s.as_str().and_then(Number::parse),
            _ => None,
        }
    }
}

/// What Terraform already knows about an unknown value. Carried through unchanged so that a
/// provider that echoes an unknown does not lose information Terraform gave it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Refinements {
    pub not_null: bool,
    pub string_prefix: Option<String>,
    /// Bound and whether it is inclusive.
    pub number_lower: Option<(Number, bool)>,
    pub number_upper: Option<(Number, bool)>,
    pub length_lower: Option<u64>,
    pub length_upper: Option<u64>,
}

impl Refinements {
    fn is_empty(&self) -> bool {
        *self == Refinements::default()
    }

    fn decode(payload: &[u8]) -> Result<Self, ValueError> {
        let mut r = Refinements::default();
        if payload.is_empty() {
            return Ok(r);
        }
        let map = rmpv::decode::read_value(&mut Cursor::new(payload))
            .map_err(|e| ValueError::Msgpack(format!("refined unknown payload: {e}")))?;
        let Mp::Map(entries) = map else {
            // A payload we cannot read still means "unknown"; the refinements are only hints.
            return Ok(r);
        };
        for (k, v) in entries {
            let bound = |v: &Mp| match v {
                Mp::Array(a) if a.len() == 2 => {
                    Some((Number::from_mp(&a[0])?, a[1].as_bool().unwrap_or(false)))
                }
                _ => None,
            };
            match k.as_i64() {
                Some(REFINE_NULLNESS) => r.not_null = v.as_bool() == Some(false),
                Some(REFINE_STRING_PREFIX) => r.string_prefix = v.as_str().map(str::to_owned),
                Some(REFINE_NUMBER_LOWER) => r.number_lower = bound(&v),
                Some(REFINE_NUMBER_UPPER) => r.number_upper = bound(&v),
                Some(REFINE_LENGTH_LOWER) => r.length_lower = v.as_u64(),
                Some(REFINE_LENGTH_UPPER) => r.length_upper = v.as_u64(),
                _ => {}
            }
        }
        Ok(r)
    }

    fn encode(&self) -> Vec<u8> {
        let mut entries = Vec::new();
        if self.not_null {
            entries.push((Mp::from(REFINE_NULLNESS), Mp::Boolean(false)));
        }
        if let Some(p) = &self.string_prefix {
            entries.push((Mp::from(REFINE_STRING_PREFIX), Mp::from(p.as_str())));
        }
        for (key, bound) in [
            (REFINE_NUMBER_LOWER, self.number_lower),
            (REFINE_NUMBER_UPPER, self.number_upper),
        ] {
            if let Some((n, inclusive)) = bound {
                entries.push((
                    Mp::from(key),
                    Mp::Array(vec![n.to_mp(), Mp::Boolean(inclusive)]),
                ));
            }
        }
        for (key, len) in [
            (REFINE_LENGTH_LOWER, self.length_lower),
            (REFINE_LENGTH_UPPER, self.length_upper),
        ] {
            if let Some(n) = len {
                entries.push((Mp::from(key), Mp::from(n)));
            }
        }
        let mut out = Vec::new();
        rmpv::encode::write_value(&mut out, &Mp::Map(entries)).expect("writing to a Vec");
        out
    }
}

/// A value of some [`Type`]. Objects hold every attribute of their type (absent ones are `Null`).
#[derive(Debug, Clone)]
pub enum Value {
    Null,
    Unknown(Refinements),
    Bool(bool),
    Number(Number),
    String(String),
    List(Vec<Value>),
    /// Order carries no meaning; equality ignores it.
    Set(Vec<Value>),
    Map(BTreeMap<String, Value>),
    Object(BTreeMap<String, Value>),
}

static NULL: Value = Value::Null;

impl PartialEq for Value {
    fn eq(&self, other: &Self) -> bool {
        use Value::*;
        match (self, other) {
            (Null, Null) => true,
            // Two unknowns are the same plan as far as a provider can tell.
            (Unknown(_), Unknown(_)) => true,
            (Bool(a), Bool(b)) => a == b,
            (Number(a), Number(b)) => match (a, b) {
                (self::Number::Int(x), self::Number::Int(y)) => x == y,
                _ => as_f64(*a) == as_f64(*b),
            },
            (String(a), String(b)) => a == b,
            (List(a), List(b)) => a == b,
            (Set(a), Set(b)) => {
                a.len() == b.len()
                    && a.iter().all(|x| b.contains(x))
                    && b.iter().all(|y| a.contains(y))
            }
            (Map(a), Map(b)) => a == b,
            // An attribute an object lacks is null: decoded objects always hold every
            // attribute, values built by hand may not.
            (Object(a), Object(b)) => a
                .keys()
                .chain(b.keys())
                .all(|k| a.get(k).unwrap_or(&NULL) == b.get(k).unwrap_or(&NULL)),
            _ => false,
        }
    }
}

fn as_f64(n: Number) -> f64 {
    match n {
        Number::Int(i) => i as f64,
        Number::Float(f) => f,
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValueError {
    #[error("invalid msgpack: {0}")]
    Msgpack(String),
    #[error("invalid JSON: {0}")]
    Json(String),
    #[error("at {path}: expected {expected}")]
    Mismatch { path: String, expected: String },
}

fn mismatch(path: &str, ty: &Type) -> ValueError {
    ValueError::Mismatch {
        path: if path.is_empty() {
            "(root)".into()
        } else {
            path.into()
        },
        expected: String::from_utf8_lossy(&ty.to_json_bytes()).into_owned(),
    }
}

impl Value {
    pub fn unknown() -> Self {
        Value::Unknown(Refinements::default())
    }

    pub fn string(s: impl Into<String>) -> Self {
        Value::String(s.into())
    }

    pub fn set_of_strings<I, S>(items: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Value::Set(items.into_iter().map(|s| Value::String(s.into())).collect())
    }

    pub fn object<I, K>(attrs: I) -> Self
    where
        I: IntoIterator<Item = (K, Value)>,
        K: Into<String>,
    {
        Value::Object(attrs.into_iter().map(|(k, v)| (k.into(), v)).collect())
    }

    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }

    /// Known at the top level (its elements may still be unknown).
    pub fn is_known(&self) -> bool {
        !matches!(self, Value::Unknown(_))
    }

    pub fn is_wholly_known(&self) -> bool {
        match self {
            Value::Unknown(_) => false,
            Value::List(v) | Value::Set(v) => v.iter().all(Value::is_wholly_known),
            Value::Map(m) | Value::Object(m) => m.values().all(Value::is_wholly_known),
            _ => true,
        }
    }

    /// An object's attribute; `Null` for anything that is not an object or lacks it.
    pub fn get(&self, name: &str) -> &Value {
        match self {
            Value::Object(m) => m.get(name).unwrap_or(&NULL),
            _ => &NULL,
        }
    }

    /// Replaces an object attribute; does nothing to other values.
    pub fn set_attr(&mut self, name: &str, v: Value) {
        if let Value::Object(m) = self {
            m.insert(name.to_owned(), v);
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Value::Bool(b) => Some(*b),
            _ => None,
        }
    }

    /// Elements of a list or set.
    pub fn as_elements(&self) -> Option<&[Value]> {
        match self {
            Value::List(v) | Value::Set(v) => Some(v),
            _ => None,
        }
    }

    pub fn as_map(&self) -> Option<&BTreeMap<String, Value>> {
        match self {
            Value::Map(m) => Some(m),
            _ => None,
        }
    }

    /// An object attribute as a Rust value. Errors (unknown, wrong type) point at the attribute,
    /// so a resource can use `?` on values Terraform guarantees known, such as configuration
    /// values at apply time.
    pub fn attr<T: FromValue>(&self, name: &str) -> Result<T, Diagnostics> {
        T::from_value(self.get(name)).map_err(|why| {
            Diagnostic::error(
                format!("Unexpected value for {name}"),
                format!("{why}; this is a bug in the provider."),
            )
            .at(AttrPath::root(name))
            .into()
        })
    }

    pub fn from_msgpack(bytes: &[u8], ty: &Type) -> Result<Value, ValueError> {
        let mp = rmpv::decode::read_value(&mut Cursor::new(bytes))
            .map_err(|e| ValueError::Msgpack(e.to_string()))?;
        Value::from_mp(&mp, ty, "")
    }

    fn from_mp(mp: &Mp, ty: &Type, path: &str) -> Result<Value, ValueError> {
        match mp {
            Mp::Nil => return Ok(Value::Null),
            Mp::Ext(code, payload) => {
                let refinements = if *code == REFINED_UNKNOWN_EXT {
                    Refinements::decode(payload)?
                } else {
                    Refinements::default()
                };
                return Ok(Value::Unknown(refinements));
            }
            _ => {}
        }
        let elements = |items: &[Mp], of: &Type| -> Result<Vec<Value>, ValueError> {
            items
                .iter()
                .enumerate()
                .map(|(i, v)| Value::from_mp(v, of, &format!("{path}[{i}]")))
                .collect()
        };
        fn entries<'a>(
            items: &'a [(Mp, Mp)],
            path: &str,
            ty: &Type,
        ) -> Result<Vec<(String, &'a Mp)>, ValueError> {
            items
                .iter()
                .map(|(k, v)| {
                    k.as_str()
                        .map(|k| (k.to_owned(), v))
                        .ok_or_else(|| mismatch(path, ty))
                })
                .collect()
        }
        match (ty, mp) {
            (Type::String, Mp::String(s)) => s
                .as_str()
                .map(Value::string)
                .ok_or_else(|| ValueError::Msgpack(format!("at {path}: string is not UTF-8"))),
            (Type::Number, v) => Number::from_mp(v)
                .map(Value::Number)
                .ok_or_else(|| mismatch(path, ty)),
            (Type::Bool, Mp::Boolean(b)) => Ok(Value::Bool(*b)),
            (Type::List(of), Mp::Array(items)) => Ok(Value::List(elements(items, of)?)),
            (Type::Set(of), Mp::Array(items)) => Ok(Value::Set(elements(items, of)?)),
            (Type::Map(of), Mp::Map(items)) => {
                let mut out = BTreeMap::new();
                for (k, v) in entries(items, path, ty)? {
                    let child = Value::from_mp(v, of, &format!("{path}[{k:?}]"))?;
                    out.insert(k, child);
                }
                Ok(Value::Map(out))
            }
            (Type::Object(attrs), Mp::Map(items)) => {
                let given: BTreeMap<String, &Mp> = entries(items, path, ty)?.into_iter().collect();
                let mut out = BTreeMap::new();
                for (name, aty) in attrs {
                    let child = match given.get(name) {
                        Some(v) => Value::from_mp(v, aty, &format!("{path}.{name}"))?,
                        None => Value::Null,
                    };
                    out.insert(name.clone(), child);
                }
                Ok(Value::Object(out))
            }
            (Type::Dynamic, Mp::Array(pair)) if pair.len() == 2 => {
                let type_json = match &pair[0] {
                    Mp::Binary(b) => b.clone(),
                    Mp::String(s) => s.as_bytes().to_vec(),
                    _ => return Err(mismatch(path, ty)),
                };
                let inner: serde_json::Value = serde_json::from_slice(&type_json)
                    .map_err(|e| ValueError::Json(e.to_string()))?;
                let inner_ty = Type::from_json(&inner).ok_or_else(|| mismatch(path, ty))?;
                Value::from_mp(&pair[1], &inner_ty, path)
            }
            _ => Err(mismatch(path, ty)),
        }
    }

    pub fn to_msgpack(&self, ty: &Type) -> Vec<u8> {
        let mut out = Vec::new();
        rmpv::encode::write_value(&mut out, &self.to_mp(ty)).expect("writing to a Vec");
        out
    }

    fn to_mp(&self, ty: &Type) -> Mp {
        match (self, ty) {
            (Value::Null, _) => Mp::Nil,
            (Value::Unknown(r), _) if r.is_empty() => Mp::Ext(0, vec![0]),
            (Value::Unknown(r), _) => Mp::Ext(REFINED_UNKNOWN_EXT, r.encode()),
            (v, Type::Dynamic) => {
                let inner = v.infer_type();
                Mp::Array(vec![Mp::Binary(inner.to_json_bytes()), v.to_mp(&inner)])
            }
            (Value::Bool(b), _) => Mp::Boolean(*b),
            (Value::Number(n), _) => n.to_mp(),
            (Value::String(s), _) => Mp::from(s.as_str()),
            (Value::List(items), Type::List(of)) | (Value::Set(items), Type::Set(of)) => {
                Mp::Array(items.iter().map(|v| v.to_mp(of)).collect())
            }
            (Value::Map(m), Type::Map(of)) => Mp::Map(
                m.iter()
                    .map(|(k, v)| (Mp::from(k.as_str()), v.to_mp(of)))
                    .collect(),
            ),
            (Value::Object(m), Type::Object(attrs)) => Mp::Map(
                attrs
                    .iter()
                    .map(|(name, aty)| {
                        let v = m.get(name).unwrap_or(&NULL);
                        (Mp::from(name.as_str()), v.to_mp(aty))
                    })
                    .collect(),
            ),
            // A value that does not fit its type is a provider bug; encoding it as its own shape
            // lets Terraform report the mismatch with the attribute it concerns.
            (v, _) => v.to_mp(&v.infer_type()),
        }
    }

    /// The type a value would have on its own, for `dynamic` attributes.
    fn infer_type(&self) -> Type {
        let of = |items: &[Value]| items.first().map_or(Type::Dynamic, Value::infer_type);
        match self {
            Value::Null | Value::Unknown(_) => Type::Dynamic,
            Value::Bool(_) => Type::Bool,
            Value::Number(_) => Type::Number,
            Value::String(_) => Type::String,
            Value::List(v) => Type::list(of(v)),
            Value::Set(v) => Type::set(of(v)),
            Value::Map(m) => Type::map(m.values().next().map_or(Type::Dynamic, Value::infer_type)),
            Value::Object(m) => {
                Type::Object(m.iter().map(|(k, v)| (k.clone(), v.infer_type())).collect())
            }
        }
    }

    /// Decodes stored state: JSON, with absent attributes as null.
    pub fn from_json(bytes: &[u8], ty: &Type) -> Result<Value, ValueError> {
        let json: serde_json::Value =
            serde_json::from_slice(bytes).map_err(|e| ValueError::Json(e.to_string()))?;
        Value::from_json_value(&json, ty, "")
    }

    fn from_json_value(j: &serde_json::Value, ty: &Type, path: &str) -> Result<Value, ValueError> {
        use serde_json::Value as J;
        match (ty, j) {
            (_, J::Null) => Ok(Value::Null),
            (Type::String, J::String(s)) => Ok(Value::string(s.clone())),
            (Type::Number, J::Number(n)) => Ok(Value::Number(match n.as_i64() {
                Some(i) => Number::Int(i),
                None => Number::Float(n.as_f64().unwrap_or(f64::NAN)),
            })),
            (Type::Number, J::String(s)) => Number::parse(s)
                .map(Value::Number)
                .ok_or_else(|| mismatch(path, ty)),
            (Type::Bool, J::Bool(b)) => Ok(Value::Bool(*b)),
            (Type::List(of), J::Array(items)) | (Type::Set(of), J::Array(items)) => {
                let vals = items
                    .iter()
                    .enumerate()
                    .map(|(i, v)| Value::from_json_value(v, of, &format!("{path}[{i}]")))
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(if matches!(ty, Type::Set(_)) {
                    Value::Set(vals)
                } else {
                    Value::List(vals)
                })
            }
            (Type::Map(of), J::Object(m)) => Ok(Value::Map(
                m.iter()
                    .map(|(k, v)| {
                        Ok((
                            k.clone(),
                            Value::from_json_value(v, of, &format!("{path}[{k:?}]"))?,
                        ))
                    })
                    .collect::<Result<_, ValueError>>()?,
            )),
            (Type::Object(attrs), J::Object(m)) => {
                let mut out = BTreeMap::new();
                for (name, aty) in attrs {
                    let v = match m.get(name) {
                        Some(v) => Value::from_json_value(v, aty, &format!("{path}.{name}"))?,
                        None => Value::Null,
                    };
                    out.insert(name.clone(), v);
                }
                Ok(Value::Object(out))
            }
            (Type::Dynamic, J::Object(m)) if m.contains_key("type") && m.contains_key("value") => {
                let inner = Type::from_json(&m["type"]).ok_or_else(|| mismatch(path, ty))?;
                Value::from_json_value(&m["value"], &inner, path)
            }
            _ => Err(mismatch(path, ty)),
        }
    }
}

/// Conversion from a known [`Value`]. `Option` maps null to `None`; unknown is always an error.
pub trait FromValue: Sized {
    fn from_value(v: &Value) -> Result<Self, String>;
}

fn expected<T>(what: &str, v: &Value) -> Result<T, String> {
    Err(match v {
        Value::Unknown(_) => format!("expected {what}, got a value not known yet"),
        Value::Null => format!("expected {what}, got null"),
        _ => format!("expected {what}"),
    })
}

impl FromValue for String {
    fn from_value(v: &Value) -> Result<Self, String> {
        v.as_str()
            .map(str::to_owned)
            .map_or_else(|| expected("a string", v), Ok)
    }
}

impl FromValue for bool {
    fn from_value(v: &Value) -> Result<Self, String> {
        v.as_bool().map_or_else(|| expected("a bool", v), Ok)
    }
}

impl FromValue for f64 {
    fn from_value(v: &Value) -> Result<Self, String> {
        match v {
            Value::Number(n) => Ok(as_f64(*n)),
            _ => expected("a number", v),
        }
    }
}

impl<T: FromValue> FromValue for Option<T> {
    fn from_value(v: &Value) -> Result<Self, String> {
        match v {
            Value::Null => Ok(None),
            v => T::from_value(v).map(Some),
        }
    }
}

/// Lists and sets.
impl<T: FromValue> FromValue for Vec<T> {
    fn from_value(v: &Value) -> Result<Self, String> {
        match v.as_elements() {
            Some(items) => items.iter().map(T::from_value).collect(),
            None => expected("a list or set", v),
        }
    }
}

impl<T: FromValue> FromValue for BTreeMap<String, T> {
    fn from_value(v: &Value) -> Result<Self, String> {
        match v.as_map() {
            Some(m) => m
                .iter()
                .map(|(k, v)| {
                    Ok((
                        k.clone(),
                        T::from_value(v).map_err(|e| format!("[{k:?}]: {e}"))?,
                    ))
                })
                .collect(),
            None => expected("a map", v),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obj_type() -> Type {
        Type::Object(BTreeMap::from([
            ("id".to_string(), Type::String),
            ("n".to_string(), Type::Number),
            ("on".to_string(), Type::Bool),
            ("tags".to_string(), Type::set(Type::String)),
            ("headers".to_string(), Type::map(Type::String)),
            ("seq".to_string(), Type::list(Type::Number)),
        ]))
    }

    #[test]
    fn objects_round_trip_with_every_attribute_present() {
        let ty = obj_type();
        let v = Value::object([
            ("id", Value::string("d_1")),
            ("n", Value::Number(Number::Int(-3))),
            ("on", Value::Bool(true)),
            ("tags", Value::set_of_strings(["b", "a"])),
            (
                "headers",
                Value::Map(BTreeMap::from([("X".into(), Value::string("1"))])),
            ),
            ("seq", Value::List(vec![Value::Number(Number::Float(1.5))])),
        ]);
        let bytes = v.to_msgpack(&ty);
        assert_eq!(Value::from_msgpack(&bytes, &ty).unwrap(), v);

        // An attribute the value lacks is written as nil, so Terraform sees the whole object.
        let partial = Value::object([("id", Value::string("x"))]);
        let back = Value::from_msgpack(&partial.to_msgpack(&ty), &ty).unwrap();
        assert_eq!(back.get("id").as_str(), Some("x"));
        assert!(back.get("tags").is_null());
        let Value::Object(m) = back else { panic!() };
        assert_eq!(m.len(), 6);
    }

    #[test]
    fn sets_compare_without_order() {
        assert_eq!(
            Value::set_of_strings(["a", "b"]),
            Value::set_of_strings(["b", "a"])
        );
        assert_ne!(
            Value::set_of_strings(["a"]),
            Value::set_of_strings(["a", "b"])
        );
        assert_ne!(Value::set_of_strings(["a"]), Value::Null);
    }

    #[test]
    fn plain_unknown_is_cty_fixext1() {
        let bytes = Value::unknown().to_msgpack(&Type::String);
        assert_eq!(bytes, vec![0xd4, 0x00, 0x00]);
        assert!(
            !Value::from_msgpack(&bytes, &Type::String)
                .unwrap()
                .is_known()
        );
        // Any extension code is an unknown, whatever its payload.
        let other = [0xd4, 0x05, 0x07];
        assert!(
            !Value::from_msgpack(&other, &Type::Number)
                .unwrap()
                .is_known()
        );
    }

    #[test]
    fn refined_unknowns_decode_and_survive_a_round_trip() {
        // ext 12 carrying {1: false, 2: "https://"}: not null, known prefix.
        let mut payload = Vec::new();
        rmpv::encode::write_value(
            &mut payload,
            &Mp::Map(vec![
                (Mp::from(1), Mp::Boolean(false)),
                (Mp::from(2), Mp::from("https://")),
                (Mp::from(5), Mp::from(1)),
            ]),
        )
        .unwrap();
        let mut bytes = Vec::new();
        rmpv::encode::write_value(&mut bytes, &Mp::Ext(12, payload)).unwrap();
        let v = Value::from_msgpack(&bytes, &Type::String).unwrap();
        let Value::Unknown(r) = &v else {
            panic!("{v:?}")
        };
        assert!(r.not_null);
        assert_eq!(r.string_prefix.as_deref(), Some("https://"));
        assert_eq!(r.length_lower, Some(1));
        let again = Value::from_msgpack(&v.to_msgpack(&Type::String), &Type::String).unwrap();
        let Value::Unknown(r2) = again else { panic!() };
        assert_eq!(&r2, r);
    }

    #[test]
    fn unknowns_nest_inside_collections() {
        let ty = obj_type();
        let v = Value::object([
            (
                "tags",
                Value::Set(vec![Value::string("a"), Value::unknown()]),
            ),
            ("headers", Value::unknown()),
        ]);
        let back = Value::from_msgpack(&v.to_msgpack(&ty), &ty).unwrap();
        assert!(!back.get("headers").is_null() && !back.get("headers").is_known());
        assert!(back.get("tags").is_known());
        assert!(!back.is_wholly_known());
    }

    #[test]
    fn numbers_arrive_as_int_float_or_string() {
        for (mp, want) in [
            (Mp::from(7), Number::Int(7)),
            (Mp::F64(2.5), Number::Float(2.5)),
            (
                Mp::from("12345678901234567890123"),
                Number::Float(1.2345678901234568e22),
            ),
            (Mp::from("42"), Number::Int(42)),
        ] {
            let mut b = Vec::new();
            rmpv::encode::write_value(&mut b, &mp).unwrap();
            assert_eq!(
                Value::from_msgpack(&b, &Type::Number).unwrap(),
                Value::Number(want)
            );
        }
    }

    #[test]
    fn dynamic_values_carry_their_type() {
        let v = Value::List(vec![Value::string("x")]);
        let bytes = v.to_msgpack(&Type::Dynamic);
        assert_eq!(Value::from_msgpack(&bytes, &Type::Dynamic).unwrap(), v);
    }

    #[test]
    fn type_mismatches_name_the_path() {
        let ty = obj_type();
        let bad = Value::object([("on", Value::string("yes"))]).to_msgpack(&Type::Object(
            BTreeMap::from([("on".to_string(), Type::String)]),
        ));
        let err = Value::from_msgpack(&bad, &ty).unwrap_err();
        assert_eq!(
            err,
            ValueError::Mismatch {
                path: ".on".into(),
                expected: "\"bool\"".into()
            }
        );
    }

    #[test]
    fn typed_attributes() {
        let v = Value::object([
            ("name", Value::string("a")),
            ("tags", Value::set_of_strings(["x", "y"])),
            ("note", Value::Null),
            ("later", Value::unknown()),
            (
                "headers",
                Value::Map(BTreeMap::from([("K".into(), Value::string("v"))])),
            ),
        ]);
        assert_eq!(v.attr::<String>("name").unwrap(), "a");
        assert_eq!(v.attr::<Vec<String>>("tags").unwrap().len(), 2);
        assert_eq!(v.attr::<Option<String>>("note").unwrap(), None);
        assert_eq!(
            v.attr::<BTreeMap<String, String>>("headers").unwrap()["K"],
            "v"
        );
        let err = v.attr::<String>("later").unwrap_err();
        assert_eq!(err.0[0].path, Some(AttrPath::root("later")));
        assert!(err.0[0].detail.contains("not known yet"));
        assert!(v.attr::<bool>("name").is_err());
    }

    #[test]
    fn json_state_decodes_with_missing_attributes_as_null() {
        let ty = obj_type();
        let v = Value::from_json(br#"{"id":"d_1","tags":["a"],"n":3,"extra":1}"#, &ty).unwrap();
        assert_eq!(v.get("id").as_str(), Some("d_1"));
        assert_eq!(v.get("tags"), &Value::set_of_strings(["a"]));
        assert!(v.get("headers").is_null());
        assert_eq!(v.get("n"), &Value::Number(Number::Int(3)));
    }
}
