//! UpgradeResourceState and ImportResourceState: states that do not come from a plan.

use super::{ProviderService, collect, pb};
use crate::tfplugin::convert::{self, encode};
use crate::tfplugin::framework::{self, Provider};
use crate::tfplugin::value::Value;

/// Terraform calls this on every refresh, even when the schema version did not change. With one
/// schema version so far, re-reading the stored JSON with the current schema is the whole
/// upgrade: attributes the state lacks become null, ones the schema dropped disappear.
pub(super) async fn upgrade<P: Provider>(
    svc: &ProviderService<P>,
    req: pb::upgrade_resource_state::Request,
) -> pb::upgrade_resource_state::Response {
    let r = svc.resource(&req.type_name).and_then(|e| {
        let raw = req
            .raw_state
            .as_ref()
            .map(|r| r.json.as_slice())
            .unwrap_or_default();
        let mut v = if raw.is_empty() {
            Value::Null
        } else {
            Value::from_json(raw, &e.ty).map_err(convert::value_error)?
        };
        framework::strip_write_only(&e.schema, &mut v);
        Ok(encode(&v, &e.ty))
    });
    let (upgraded_state, diagnostics) = collect(r);
    pb::upgrade_resource_state::Response {
        upgraded_state,
        diagnostics,
    }
}

pub(super) async fn import<P: Provider>(
    svc: &ProviderService<P>,
    req: pb::import_resource_state::Request,
) -> pb::import_resource_state::Response {
    let r = async {
        let e = svc.resource(&req.type_name)?;
        let client = svc.client().await?;
        let mut state = e.imp.import(&client, &req.id).await?;
        framework::strip_write_only(&e.schema, &mut state);
        Ok(pb::import_resource_state::ImportedResource {
            type_name: req.type_name.clone(),
            state: Some(encode(&state, &e.ty)),
            private: Vec::new(),
        })
    }
    .await;
    let (imported, diagnostics) = collect(r);
    pb::import_resource_state::Response {
        imported_resources: imported.into_iter().collect(),
        diagnostics,
        deferred: None,
    }
}
