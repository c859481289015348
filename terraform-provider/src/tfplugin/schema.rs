//! Schemas as resources declare them, with the plan behaviour the framework enforces per attribute.

use std::collections::BTreeMap;

use super::types::Type;
use super::value::Value;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Required,
    Optional,
    /// Optional, and the provider fills it in when the configuration leaves it out.
    OptionalComputed,
    Computed,
}

#[derive(Debug, Clone)]
pub struct Attribute {
    pub name: String,
    pub ty: Type,
    pub mode: Mode,
    pub description: String,
    pub sensitive: bool,
    /// Planned when the configuration leaves the attribute out (optional + computed only).
    pub default: Option<Value>,
    /// A computed value that never changes once set (an id, a creation time): plans keep the prior
    /// value instead of marking it unknown on update.
    pub stable: bool,
    /// A change cannot be applied in place.
    pub requires_replace: bool,
    /// Sent to the provider from the configuration but never kept in plan or state (Terraform
    /// 1.11+, protocol 6.8). Such attributes must be optional and not computed.
    pub write_only: bool,
    /// A list of objects declared attribute by attribute (protocol 6 nested attributes), so that
    /// each inner attribute keeps its own description and sensitivity.
    pub nested: Option<Vec<Attribute>>,
}

impl Attribute {
    pub fn new(name: &str, ty: Type, mode: Mode, description: &str) -> Self {
        Attribute {
            name: name.to_owned(),
            ty,
            mode,
            description: description.to_owned(),
            sensitive: false,
            default: None,
            stable: false,
            requires_replace: false,
            write_only: false,
            nested: None,
        }
    }

    /// A list of objects with the given attributes.
    pub fn nested_list(
        name: &str,
        mode: Mode,
        attributes: Vec<Attribute>,
        description: &str,
    ) -> Self {
        let ty = Type::list(object_type(&attributes));
        Attribute {
            nested: Some(attributes),
            ..Self::new(name, ty, mode, description)
        }
    }
    pub fn required(name: &str, ty: Type, description: &str) -> Self {
        Self::new(name, ty, Mode::Required, description)
    }
    pub fn optional(name: &str, ty: Type, description: &str) -> Self {
        Self::new(name, ty, Mode::Optional, description)
    }
    pub fn optional_computed(name: &str, ty: Type, description: &str) -> Self {
        Self::new(name, ty, Mode::OptionalComputed, description)
    }
    pub fn computed(name: &str, ty: Type, description: &str) -> Self {
        Self::new(name, ty, Mode::Computed, description)
    }
    pub fn sensitive(mut self) -> Self {
        self.sensitive = true;
        self
    }
    pub fn default(mut self, v: Value) -> Self {
        self.default = Some(v);
        self
    }
    pub fn stable(mut self) -> Self {
        self.stable = true;
        self
    }
    pub fn requires_replace(mut self) -> Self {
        self.requires_replace = true;
        self
    }
    pub fn write_only(mut self) -> Self {
        self.write_only = true;
        self
    }
    pub fn is_computed(&self) -> bool {
        matches!(self.mode, Mode::Computed | Mode::OptionalComputed)
    }
}

#[derive(Debug, Clone, Default)]
pub struct Schema {
    pub version: i64,
    pub description: String,
    pub attributes: Vec<Attribute>,
}

impl Schema {
    pub fn new(description: &str, attributes: Vec<Attribute>) -> Self {
        Schema {
            version: 0,
            description: description.to_owned(),
            attributes,
        }
    }

    /// The object type of a whole value under this schema.
    pub fn value_type(&self) -> Type {
        object_type(&self.attributes)
    }

    pub fn attribute(&self, name: &str) -> Option<&Attribute> {
        self.attributes.iter().find(|a| a.name == name)
    }
}

fn object_type(attributes: &[Attribute]) -> Type {
    Type::Object(
        attributes
            .iter()
            .map(|a| (a.name.clone(), a.ty.clone()))
            .collect::<BTreeMap<_, _>>(),
    )
}
