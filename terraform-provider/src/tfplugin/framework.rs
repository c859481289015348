//! What a provider implements, and the rules Terraform holds every provider to, enforced here once
//! so that resources cannot get them wrong.
//!
//! Nothing in this module sees the wire format: values arrive decoded, results leave as values and
//! [`Diagnostics`].

use std::sync::Arc;

use async_trait::async_trait;

use super::diag::{AttrPath, Diagnostic, Diagnostics};
use super::schema::{Attribute, Mode, Schema};
use super::value::Value;

/// A provider: its own configuration, and the resources and data sources it offers. `Client` is
/// whatever [`Provider::configure`] builds and every resource operation receives.
#[async_trait]
pub trait Provider: Send + Sync + 'static {
    type Client: Send + Sync + 'static;

    fn schema(&self) -> Schema;

    /// Static checks on the provider block. Values may be unknown here.
    fn validate(&self, _config: &Value) -> Diagnostics {
        Diagnostics::default()
    }

    /// Called once per provider process; values may still be unknown during `plan`.
    async fn configure(&self, config: &Value) -> Result<Self::Client, Diagnostics>;

    fn resources(&self) -> Vec<Arc<dyn Resource<Self::Client>>>;

    fn data_sources(&self) -> Vec<Arc<dyn DataSource<Self::Client>>>;
}

/// A managed resource. The framework decides between create, update and delete, computes the plan
/// and checks results; the resource only talks to its API.
#[async_trait]
pub trait Resource<C>: Send + Sync {
    /// Full type name, `<provider>_<name>`.
    fn type_name(&self) -> &'static str;

    fn schema(&self) -> Schema;

    /// Checks on the configuration alone (values may be unknown: skip those).
    fn validate(&self, _config: &Value) -> Diagnostics {
        Diagnostics::default()
    }

    /// Creates from the planned value (computed attributes unknown) and returns the full state.
    /// `config` is the configuration as written: the only place write-only values appear.
    async fn create(
        &self,
        client: &C,
        planned: &Value,
        config: &Value,
    ) -> Result<Value, Diagnostics>;

    /// The current state of the remote object, or `None` when it no longer exists.
    async fn read(&self, client: &C, current: &Value) -> Result<Option<Value>, Diagnostics>;

    async fn update(
        &self,
        client: &C,
        prior: &Value,
        planned: &Value,
        config: &Value,
    ) -> Result<Value, Diagnostics>;

    async fn delete(&self, client: &C, prior: &Value) -> Result<(), Diagnostics>;

    /// Adjusts a create or update plan after the framework's rules (Terraform's ModifyPlan): marks
    /// computed values that the change will renew as unknown, or refuses a change at plan time with
    /// errors naming the attribute. `prior` is null on create. The default keeps the plan.
    fn modify_plan(&self, _prior: &Value, _config: &Value, _planned: &mut Value) -> Diagnostics {
        Diagnostics::default()
    }

    /// A state for `terraform import`; Terraform reads it right after, so only the identifying
    /// attributes need to be set. Resources that cannot be imported keep this default.
    async fn import(&self, _client: &C, _id: &str) -> Result<Value, Diagnostics> {
        Err(Diagnostic::error(
            "Import not supported",
            format!("{} cannot be imported.", self.type_name()),
        )
        .into())
    }
}

/// A data source: configuration in, a wholly known value out.
#[async_trait]
pub trait DataSource<C>: Send + Sync {
    fn type_name(&self) -> &'static str;

    fn schema(&self) -> Schema;

    fn validate(&self, _config: &Value) -> Diagnostics {
        Diagnostics::default()
    }

    async fn read(&self, client: &C, config: &Value) -> Result<Value, Diagnostics>;
}

/// A planned change, as `PlanResourceChange` returns it.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    pub planned: Value,
    pub requires_replace: Vec<AttrPath>,
}

/// Computes the planned state from Terraform's proposal.
///
/// Terraform's proposed state already holds the configuration, with prior values for computed
/// attributes the configuration leaves out. On top of that:
/// - create: computed attributes the configuration leaves out are planned as their default, or
///   unknown;
/// - update: optional + computed attributes left out of the configuration go back to their
///   default (so deleting `enabled = false` from the file re-enables), and when anything changes,
///   computed-only attributes that are not `stable` become unknown;
/// - `requires_replace` attributes whose value changes are reported;
/// - write-only attributes are planned as null: their values live in the configuration only.
pub fn plan(schema: &Schema, prior: &Value, proposed: &Value, config: &Value) -> Plan {
    if proposed.is_null() {
        return Plan {
            planned: Value::Null,
            requires_replace: Vec::new(),
        };
    }
    let mut planned = proposed.clone();
    if prior.is_null() {
        for a in schema.attributes.iter().filter(|a| a.is_computed()) {
            if config.get(&a.name).is_null() {
                let v = a.default.clone().unwrap_or_else(Value::unknown);
                planned.set_attr(&a.name, v);
            }
        }
        strip_write_only(schema, &mut planned);
        return Plan {
            planned,
            requires_replace: Vec::new(),
        };
    }

    strip_write_only(schema, &mut planned);
    for a in &schema.attributes {
        if let (Mode::OptionalComputed, Some(d)) = (a.mode, &a.default)
            && config.get(&a.name).is_null()
        {
            planned.set_attr(&a.name, d.clone());
        }
    }
    let changed = schema
        .attributes
        .iter()
        .filter(|a| a.mode != Mode::Computed)
        .any(|a| planned.get(&a.name) != prior.get(&a.name) || !planned.get(&a.name).is_known());
    if changed {
        for a in &schema.attributes {
            if a.mode == Mode::Computed && !a.stable {
                planned.set_attr(&a.name, Value::unknown());
            }
        }
    }
    let requires_replace = schema
        .attributes
        .iter()
        .filter(|a| a.requires_replace)
        .filter(|a| {
            let (p, q) = (planned.get(&a.name), prior.get(&a.name));
            !p.is_known() || p != q
        })
        .map(|a| AttrPath::root(&a.name))
        .collect();
    Plan {
        planned,
        requires_replace,
    }
}

/// [`plan`], then the resource's [`Resource::modify_plan`] for creates and updates (a delete
/// plans null: nothing to adjust). The resource may only touch computed attributes: Terraform
/// refuses a plan that differs from the configuration, so such a change is reported as the bug
/// it is rather than left to Terraform's generic message.
pub fn plan_resource<C>(
    resource: &dyn Resource<C>,
    schema: &Schema,
    prior: &Value,
    proposed: &Value,
    config: &Value,
) -> Result<Plan, Diagnostics> {
    let mut p = plan(schema, prior, proposed, config);
    if p.planned.is_null() {
        return Ok(p);
    }
    let before = p.planned.clone();
    let diags = resource.modify_plan(prior, config, &mut p.planned);
    if diags.has_errors() {
        return Err(diags);
    }
    let mut bugs = Diagnostics::default();
    let configured = |a: &&Attribute| {
        !a.is_computed() || (a.mode == Mode::OptionalComputed && !config.get(&a.name).is_null())
    };
    for a in schema.attributes.iter().filter(configured) {
        if p.planned.get(&a.name) != before.get(&a.name) {
            bugs.push(
                Diagnostic::error(
                    "Provider changed a configured value in the plan",
                    format!(
                        "{} is set by the configuration and cannot be planned otherwise; this is a bug in the provider.",
                        a.name
                    ),
                )
                .at(AttrPath::root(&a.name)),
            );
        }
    }
    if bugs.is_empty() { Ok(p) } else { Err(bugs) }
}

/// Checks a state a resource returned after create or update, and makes attributes the
/// configuration owns equal the plan, so an API that echoes a value in another form (no headers
/// as `{}` rather than null) cannot break Terraform's consistency check.
pub fn finish_apply(
    schema: &Schema,
    planned: &Value,
    mut new_state: Value,
) -> Result<Value, Diagnostics> {
    if new_state.is_null() {
        return Err(Diagnostic::error(
            "Provider returned no state",
            "The resource was written but the provider returned no state for it; this is a bug in the provider.",
        )
        .into());
    }
    for a in &schema.attributes {
        if matches!(a.mode, Mode::Required | Mode::Optional)
            && planned.get(&a.name).is_wholly_known()
        {
            new_state.set_attr(&a.name, planned.get(&a.name).clone());
        }
    }
    strip_write_only(schema, &mut new_state);
    check_wholly_known(schema, &new_state)?;
    Ok(new_state)
}

/// Write-only values never reach plan or state; Terraform rejects any that do.
pub fn strip_write_only(schema: &Schema, v: &mut Value) {
    if v.is_null() {
        return;
    }
    for a in schema.attributes.iter().filter(|a| a.write_only) {
        v.set_attr(&a.name, Value::Null);
    }
}

/// Terraform rejects states with unknowns after apply, reads and data sources; name the
/// attribute here rather than leave the user with Terraform's generic message.
pub fn check_wholly_known(schema: &Schema, v: &Value) -> Result<(), Diagnostics> {
    let mut diags = Diagnostics::default();
    for a in &schema.attributes {
        if !v.get(&a.name).is_wholly_known() {
            diags.push(
                Diagnostic::error(
                    "Provider returned an unknown value",
                    format!(
                        "{} is still unknown after the operation; this is a bug in the provider.",
                        a.name
                    ),
                )
                .at(AttrPath::root(&a.name)),
            );
        }
    }
    if diags.is_empty() { Ok(()) } else { Err(diags) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tfplugin::schema::Attribute;
    use crate::tfplugin::types::Type;

    fn schema() -> Schema {
        Schema::new(
            "test",
            vec![
                Attribute::computed("id", Type::String, "").stable(),
                Attribute::required("name", Type::String, ""),
                Attribute::optional("note", Type::String, ""),
                Attribute::optional_computed("enabled", Type::Bool, "").default(Value::Bool(true)),
                Attribute::optional_computed("tags", Type::set(Type::String), ""),
                Attribute::computed("updated_at", Type::String, ""),
                Attribute::optional("region", Type::String, "").requires_replace(),
                Attribute::optional("password", Type::String, "").write_only(),
            ],
        )
    }

    fn obj(pairs: &[(&str, Value)]) -> Value {
        Value::object(pairs.iter().map(|(k, v)| (*k, v.clone())))
    }

    fn prior() -> Value {
        obj(&[
            ("id", Value::string("d_1")),
            ("name", Value::string("a")),
            ("enabled", Value::Bool(false)),
            ("tags", Value::set_of_strings(["x"])),
            ("updated_at", Value::string("t1")),
            ("region", Value::string("eu")),
        ])
    }

    #[test]
    fn create_plans_unknown_computed_and_defaults() {
        let config = obj(&[("name", Value::string("a"))]);
        let p = plan(&schema(), &Value::Null, &config, &config);
        assert!(!p.planned.get("id").is_known());
        assert!(!p.planned.get("updated_at").is_known());
        assert!(
            !p.planned.get("tags").is_known(),
            "optional+computed without default"
        );
        assert_eq!(p.planned.get("enabled"), &Value::Bool(true));
        assert!(p.planned.get("note").is_null(), "optional stays null");
        assert!(p.requires_replace.is_empty());
    }

    #[test]
    fn create_keeps_configured_computed_values() {
        let config = obj(&[
            ("name", Value::string("a")),
            ("enabled", Value::Bool(false)),
        ]);
        let p = plan(&schema(), &Value::Null, &config, &config);
        assert_eq!(p.planned.get("enabled"), &Value::Bool(false));
    }

    #[test]
    fn no_change_plans_the_prior_state() {
        let config = obj(&[
            ("name", Value::string("a")),
            ("enabled", Value::Bool(false)),
            ("tags", Value::set_of_strings(["x"])),
            ("region", Value::string("eu")),
        ]);
        let p = plan(&schema(), &prior(), &prior(), &config);
        assert_eq!(p.planned, prior());
        assert!(p.requires_replace.is_empty());
    }

    #[test]
    fn update_keeps_stable_values_and_unknowns_the_rest() {
        let config = obj(&[
            ("name", Value::string("b")),
            ("enabled", Value::Bool(false)),
            ("region", Value::string("eu")),
        ]);
        let mut proposed = prior();
        proposed.set_attr("name", Value::string("b"));
        let p = plan(&schema(), &prior(), &proposed, &config);
        assert_eq!(p.planned.get("id").as_str(), Some("d_1"));
        assert!(!p.planned.get("updated_at").is_known());
        // Optional + computed without a default keeps the prior value when left out.
        assert_eq!(p.planned.get("tags"), &Value::set_of_strings(["x"]));
        assert!(p.requires_replace.is_empty());
    }

    #[test]
    fn removing_an_attribute_with_a_default_plans_the_default() {
        let config = obj(&[
            ("name", Value::string("a")),
            ("tags", Value::set_of_strings(["x"])),
            ("region", Value::string("eu")),
        ]);
        let p = plan(&schema(), &prior(), &prior(), &config);
        assert_eq!(p.planned.get("enabled"), &Value::Bool(true));
        assert!(!p.planned.get("updated_at").is_known());
    }

    #[test]
    fn requires_replace_is_reported_only_on_change() {
        let config = obj(&[
            ("name", Value::string("a")),
            ("region", Value::string("us")),
        ]);
        let mut proposed = prior();
        proposed.set_attr("region", Value::string("us"));
        let p = plan(&schema(), &prior(), &proposed, &config);
        assert_eq!(p.requires_replace, vec![AttrPath::root("region")]);
    }

    #[test]
    fn unknown_config_counts_as_a_change() {
        let config = obj(&[("name", Value::unknown()), ("enabled", Value::Bool(false))]);
        let mut proposed = prior();
        proposed.set_attr("name", Value::unknown());
        let p = plan(&schema(), &prior(), &proposed, &config);
        assert!(!p.planned.get("updated_at").is_known());
        assert_eq!(p.planned.get("id").as_str(), Some("d_1"));
    }

    #[test]
    fn write_only_values_are_never_planned_nor_stored() {
        let config = obj(&[
            ("name", Value::string("a")),
            ("password", Value::string("pw")),
        ]);
        let p = plan(&schema(), &Value::Null, &config, &config);
        assert!(p.planned.get("password").is_null());

        let mut proposed = prior();
        proposed.set_attr("password", Value::string("pw2"));
        let config = obj(&[
            ("name", Value::string("a")),
            ("enabled", Value::Bool(false)),
            ("tags", Value::set_of_strings(["x"])),
            ("region", Value::string("eu")),
            ("password", Value::string("pw2")),
        ]);
        let p = plan(&schema(), &prior(), &proposed, &config);
        assert_eq!(p.planned, prior(), "a write-only value alone is no change");

        let mut returned = prior();
        returned.set_attr("password", Value::string("pw2"));
        let done = finish_apply(&schema(), &prior(), returned).unwrap();
        assert!(done.get("password").is_null());
    }

    #[test]
    fn destroy_plans_null() {
        let p = plan(&schema(), &prior(), &Value::Null, &Value::Null);
        assert!(p.planned.is_null());
    }

    #[test]
    fn apply_results_take_config_owned_values_from_the_plan_and_must_be_known() {
        let mut planned = prior();
        planned.set_attr("note", Value::Null);
        let mut returned = prior();
        returned.set_attr("note", Value::string(""));
        let done = finish_apply(&schema(), &planned, returned).unwrap();
        assert!(done.get("note").is_null());

        let mut bad = prior();
        bad.set_attr("updated_at", Value::unknown());
        let err = finish_apply(&schema(), &planned, bad).unwrap_err();
        assert_eq!(err.0[0].path, Some(AttrPath::root("updated_at")));
        assert!(finish_apply(&schema(), &planned, Value::Null).is_err());
    }

    /// A resource that renews `id` in every plan, refuses, or (a bug) rewrites a configured value.
    struct Modifying {
        refuse: bool,
        rewrite_config: bool,
    }

    #[async_trait]
    impl Resource<()> for Modifying {
        fn type_name(&self) -> &'static str {
            "test_thing"
        }
        fn schema(&self) -> Schema {
            schema()
        }
        async fn create(&self, _: &(), p: &Value, _: &Value) -> Result<Value, Diagnostics> {
            Ok(p.clone())
        }
        async fn read(&self, _: &(), c: &Value) -> Result<Option<Value>, Diagnostics> {
            Ok(Some(c.clone()))
        }
        async fn update(
            &self,
            _: &(),
            _: &Value,
            p: &Value,
            _: &Value,
        ) -> Result<Value, Diagnostics> {
            Ok(p.clone())
        }
        async fn delete(&self, _: &(), _: &Value) -> Result<(), Diagnostics> {
            Ok(())
        }
        fn modify_plan(&self, _: &Value, _: &Value, planned: &mut Value) -> Diagnostics {
            if self.refuse {
                return Diagnostic::error("No", "refused")
                    .at(AttrPath::root("name"))
                    .into();
            }
            planned.set_attr("id", Value::unknown());
            if self.rewrite_config {
                planned.set_attr("name", Value::string("other"));
            }
            Diagnostics::default()
        }
    }

    #[test]
    fn modify_plan_may_renew_computed_values_refuse_or_nothing_else() {
        let config = obj(&[
            ("name", Value::string("b")),
            ("enabled", Value::Bool(false)),
            ("region", Value::string("eu")),
        ]);
        let mut proposed = prior();
        proposed.set_attr("name", Value::string("b"));
        let ok = Modifying {
            refuse: false,
            rewrite_config: false,
        };
        let p = plan_resource(&ok, &schema(), &prior(), &proposed, &config).unwrap();
        assert!(!p.planned.get("id").is_known(), "a stable value renewed");

        let refusing = Modifying {
            refuse: true,
            rewrite_config: false,
        };
        let err = plan_resource(&refusing, &schema(), &prior(), &proposed, &config).unwrap_err();
        assert_eq!(err.0[0].path, Some(AttrPath::root("name")));

        let buggy = Modifying {
            refuse: false,
            rewrite_config: true,
        };
        let err = plan_resource(&buggy, &schema(), &prior(), &proposed, &config).unwrap_err();
        assert_eq!(err.0[0].path, Some(AttrPath::root("name")));
        assert!(err.0[0].detail.contains("bug in the provider"));

        // A delete plans null and is not the resource's to adjust.
        let p = plan_resource(&refusing, &schema(), &prior(), &Value::Null, &Value::Null).unwrap();
        assert!(p.planned.is_null());
    }
}
