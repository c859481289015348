//! PlanResourceChange: decoding, then [`framework::plan_resource`].

use super::{ProviderService, collect, pb};
use crate::tfplugin::convert::{self, decode, encode};
use crate::tfplugin::diag::{AttrPath, Diagnostic, Diagnostics};
use crate::tfplugin::framework::{self, Provider};

pub(super) async fn plan<P: Provider>(
    svc: &ProviderService<P>,
    req: pb::plan_resource_change::Request,
) -> pb::plan_resource_change::Response {
    let write_only_allowed = req
        .client_capabilities
        .as_ref()
        .is_some_and(|c| c.write_only_attributes_allowed);
    let r = (|| {
        let e = svc.resource(&req.type_name)?;
        let prior = decode(req.prior_state.as_ref(), &e.ty)?;
        let proposed = decode(req.proposed_new_state.as_ref(), &e.ty)?;
        let config = decode(req.config.as_ref(), &e.ty)?;
        // A Terraform that does not know write-only attributes would store their values in
        // plan and state, which is what the user chose write-only to avoid.
        if !write_only_allowed {
            let used: Diagnostics = Diagnostics(
                e.schema
                    .attributes
                    .iter()
                    .filter(|a| a.write_only && !config.get(&a.name).is_null())
                    .map(|a| {
                        Diagnostic::error(
                            "Write-only attribute not supported",
                            format!(
                                "{} is write-only, which needs Terraform 1.11 or later.",
                                a.name
                            ),
                        )
                        .at(AttrPath::root(&a.name))
                    })
                    .collect(),
            );
            if !used.is_empty() {
                return Err(used);
            }
        }
        let plan = framework::plan_resource(&*e.imp, &e.schema, &prior, &proposed, &config)?;
        Ok((encode(&plan.planned, &e.ty), plan.requires_replace))
    })();
    let (out, diagnostics) = collect(r);
    let (planned_state, requires_replace) = match out {
        Some((s, rr)) => (Some(s), rr.iter().map(convert::path).collect()),
        None => (None, Vec::new()),
    };
    pb::plan_resource_change::Response {
        planned_state,
        requires_replace,
        planned_private: req.prior_private,
        diagnostics,
        legacy_type_system: false,
        deferred: None,
    }
}
