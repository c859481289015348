//! ApplyResourceChange: the framework picks create, update or delete from null prior or planned
//! state, then checks what the resource returned.

use super::{ProviderService, collect, pb};
use crate::tfplugin::convert::{decode, encode};
use crate::tfplugin::framework::{self, Provider};
use crate::tfplugin::value::Value;

pub(super) async fn apply<P: Provider>(
    svc: &ProviderService<P>,
    req: pb::apply_resource_change::Request,
) -> pb::apply_resource_change::Response {
    let r = async {
        let e = svc.resource(&req.type_name)?;
        let prior = decode(req.prior_state.as_ref(), &e.ty)?;
        let planned = decode(req.planned_state.as_ref(), &e.ty)?;
        let config = decode(req.config.as_ref(), &e.ty)?;
        let client = svc.client().await?;
        let new = if planned.is_null() {
            e.imp.delete(&client, &prior).await?;
            Value::Null
        } else if prior.is_null() {
            let created = e.imp.create(&client, &planned, &config).await?;
            framework::finish_apply(&e.schema, &planned, created)?
        } else {
            let updated = e.imp.update(&client, &prior, &planned, &config).await?;
            framework::finish_apply(&e.schema, &planned, updated)?
        };
        Ok(encode(&new, &e.ty))
    }
    .await;
    let (new_state, diagnostics) = collect(r);
    pb::apply_resource_change::Response {
        new_state,
        private: req.planned_private,
        diagnostics,
        legacy_type_system: false,
    }
}
