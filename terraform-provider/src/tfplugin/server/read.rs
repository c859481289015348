//! ReadResource (refresh) and ReadDataSource.

use super::{ProviderService, collect, pb};
use crate::tfplugin::convert::{decode, encode};
use crate::tfplugin::framework::{self, Provider};
use crate::tfplugin::value::Value;

pub(super) async fn resource<P: Provider>(
    svc: &ProviderService<P>,
    req: pb::read_resource::Request,
) -> pb::read_resource::Response {
    let r = async {
        let e = svc.resource(&req.type_name)?;
        let current = decode(req.current_state.as_ref(), &e.ty)?;
        if current.is_null() {
            return Ok(encode(&Value::Null, &e.ty));
        }
        let client = svc.client().await?;
        // None: the object is gone, and a null state makes Terraform plan to create it again.
        let new = match e.imp.read(&client, &current).await? {
            Some(mut v) => {
                framework::strip_write_only(&e.schema, &mut v);
                framework::check_wholly_known(&e.schema, &v)?;
                v
            }
            None => Value::Null,
        };
        Ok(encode(&new, &e.ty))
    }
    .await;
    let (new_state, diagnostics) = collect(r);
    pb::read_resource::Response {
        new_state,
        diagnostics,
        private: req.private,
        deferred: None,
    }
}

pub(super) async fn data_source<P: Provider>(
    svc: &ProviderService<P>,
    req: pb::read_data_source::Request,
) -> pb::read_data_source::Response {
    let r = async {
        let e = svc.data_source(&req.type_name)?;
        let config = decode(req.config.as_ref(), &e.ty)?;
        let client = svc.client().await?;
        let state = e.imp.read(&client, &config).await?;
        framework::check_wholly_known(&e.schema, &state)?;
        Ok(encode(&state, &e.ty))
    }
    .await;
    let (state, diagnostics) = collect(r);
    pb::read_data_source::Response {
        state,
        diagnostics,
        deferred: None,
    }
}
