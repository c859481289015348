//! GetMetadata and GetProviderSchema.

use super::{ProviderService, pb};
use crate::tfplugin::convert;
use crate::tfplugin::framework::Provider;

fn capabilities() -> pb::ServerCapabilities {
    pb::ServerCapabilities {
        plan_destroy: false,
        // Schemas never change within a build, so Terraform may reuse a cached copy instead of
        // asking each of the provider processes it starts per run.
        get_provider_schema_optional: true,
        move_resource_state: false,
    }
}

pub(super) async fn get_metadata<P: Provider>(
    svc: &ProviderService<P>,
    _: pb::get_metadata::Request,
) -> pb::get_metadata::Response {
    pb::get_metadata::Response {
        server_capabilities: Some(capabilities()),
        diagnostics: Vec::new(),
        data_sources: svc
            .data_sources
            .keys()
            .map(|k| pb::get_metadata::DataSourceMetadata {
                type_name: k.clone(),
            })
            .collect(),
        resources: svc
            .resources
            .keys()
            .map(|k| pb::get_metadata::ResourceMetadata {
                type_name: k.clone(),
            })
            .collect(),
    }
}

pub(super) async fn get_provider_schema<P: Provider>(
    svc: &ProviderService<P>,
    _: pb::get_provider_schema::Request,
) -> pb::get_provider_schema::Response {
    pb::get_provider_schema::Response {
        provider: Some(convert::schema(&svc.provider_schema)),
        resource_schemas: svc
            .resources
            .iter()
            .map(|(k, e)| (k.clone(), convert::schema(&e.schema)))
            .collect(),
        data_source_schemas: svc
            .data_sources
            .iter()
            .map(|(k, e)| (k.clone(), convert::schema(&e.schema)))
            .collect(),
        diagnostics: Vec::new(),
        provider_meta: None,
        server_capabilities: Some(capabilities()),
    }
}
