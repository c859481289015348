//! ValidateProviderConfig, ValidateResourceConfig and ValidateDataResourceConfig: static checks,
//! on configurations whose values may still be unknown.

use super::{ProviderService, collect, diags_to_result, pb};
use crate::tfplugin::convert::decode;
use crate::tfplugin::framework::Provider;

pub(super) async fn provider_config<P: Provider>(
    svc: &ProviderService<P>,
    req: pb::validate_provider_config::Request,
) -> pb::validate_provider_config::Response {
    let r = decode(req.config.as_ref(), &svc.provider_schema.value_type())
        .and_then(|c| diags_to_result(svc.provider.validate(&c)));
    pb::validate_provider_config::Response {
        diagnostics: collect(r).1,
    }
}

pub(super) async fn resource_config<P: Provider>(
    svc: &ProviderService<P>,
    req: pb::validate_resource_config::Request,
) -> pb::validate_resource_config::Response {
    let r = svc.resource(&req.type_name).and_then(|e| {
        let c = decode(req.config.as_ref(), &e.ty)?;
        diags_to_result(e.imp.validate(&c))
    });
    pb::validate_resource_config::Response {
        diagnostics: collect(r).1,
    }
}

pub(super) async fn data_resource_config<P: Provider>(
    svc: &ProviderService<P>,
    req: pb::validate_data_resource_config::Request,
) -> pb::validate_data_resource_config::Response {
    let r = svc.data_source(&req.type_name).and_then(|e| {
        let c = decode(req.config.as_ref(), &e.ty)?;
        diags_to_result(e.imp.validate(&c))
    });
    pb::validate_data_resource_config::Response {
        diagnostics: collect(r).1,
    }
}
