//! The gRPC services. `tfplugin6.Provider` only converts: each RPC's module decodes the request,
//! calls the framework or the provider's code, and encodes the answer. go-plugin's controller and
//! the health service sit beside it.

mod apply;
mod configure;
mod controller;
mod health;
mod plan;
mod read;
mod schema;
mod state;
mod validate;

use std::collections::BTreeMap;
use std::sync::Arc;

use tokio::sync::RwLock;
use tonic::{Request, Response, Status};

use super::convert::diagnostics;
use super::diag::{Diagnostic, Diagnostics};
use super::framework::{DataSource, Provider, Resource};
use super::log;
use super::proto::tfplugin6 as pb;
use super::schema::Schema;
use super::types::Type;

pub use controller::Controller;
pub use health::Health;

/// A resource or data source with its schema and value type, computed once.
struct Entry<T: ?Sized> {
    imp: Arc<T>,
    schema: Schema,
    ty: Type,
}

impl<T: ?Sized> Entry<T> {
    fn new(imp: Arc<T>, schema: Schema) -> Self {
        let ty = schema.value_type();
        Entry { imp, schema, ty }
    }
}

pub struct ProviderService<P: Provider> {
    provider: P,
    provider_schema: Schema,
    resources: BTreeMap<String, Entry<dyn Resource<P::Client>>>,
    data_sources: BTreeMap<String, Entry<dyn DataSource<P::Client>>>,
    client: RwLock<Option<Arc<P::Client>>>,
}

impl<P: Provider> ProviderService<P> {
    pub fn new(provider: P) -> Self {
        let resources = provider
            .resources()
            .into_iter()
            .map(|r| (r.type_name().to_owned(), Entry::new(r.clone(), r.schema())))
            .collect();
        let data_sources = provider
            .data_sources()
            .into_iter()
            .map(|d| (d.type_name().to_owned(), Entry::new(d.clone(), d.schema())))
            .collect();
        ProviderService {
            provider_schema: provider.schema(),
            provider,
            resources,
            data_sources,
            client: RwLock::new(None),
        }
    }

    fn resource(&self, name: &str) -> Result<&Entry<dyn Resource<P::Client>>, Diagnostics> {
        self.resources.get(name).ok_or_else(|| {
            Diagnostic::error(
                "Unknown resource type",
                format!("This provider has no resource type {name:?}."),
            )
            .into()
        })
    }

    fn data_source(&self, name: &str) -> Result<&Entry<dyn DataSource<P::Client>>, Diagnostics> {
        self.data_sources.get(name).ok_or_else(|| {
            Diagnostic::error(
                "Unknown data source",
                format!("This provider has no data source {name:?}."),
            )
            .into()
        })
    }

    async fn client(&self) -> Result<Arc<P::Client>, Diagnostics> {
        self.client.read().await.clone().ok_or_else(|| {
            Diagnostic::error(
                "Provider not configured",
                "Terraform asked for an operation before configuring the provider.",
            )
            .into()
        })
    }
}

/// Splits a step's outcome into the value and the response's diagnostics list.
fn collect<T>(r: Result<T, Diagnostics>) -> (Option<T>, Vec<pb::Diagnostic>) {
    match r {
        Ok(v) => (Some(v), Vec::new()),
        Err(d) => (None, diagnostics(d)),
    }
}

fn diags_to_result(d: Diagnostics) -> Result<(), Diagnostics> {
    if d.is_empty() { Ok(()) } else { Err(d) }
}

type RpcResult<T> = Result<Response<T>, Status>;

/// Wraps an RPC's handler: logs the call (names only, never values) and answers.
macro_rules! rpc {
    ($name:literal, $call:expr) => {{
        log::debug(concat!("rpc ", $name));
        Ok(Response::new($call.await))
    }};
}

#[tonic::async_trait]
impl<P: Provider> pb::provider_server::Provider for ProviderService<P> {
    async fn get_metadata(
        &self,
        req: Request<pb::get_metadata::Request>,
    ) -> RpcResult<pb::get_metadata::Response> {
        rpc!("GetMetadata", schema::get_metadata(self, req.into_inner()))
    }

    async fn get_provider_schema(
        &self,
        req: Request<pb::get_provider_schema::Request>,
    ) -> RpcResult<pb::get_provider_schema::Response> {
        rpc!(
            "GetProviderSchema",
            schema::get_provider_schema(self, req.into_inner())
        )
    }

    async fn validate_provider_config(
        &self,
        req: Request<pb::validate_provider_config::Request>,
    ) -> RpcResult<pb::validate_provider_config::Response> {
        rpc!(
            "ValidateProviderConfig",
            validate::provider_config(self, req.into_inner())
        )
    }

    async fn validate_resource_config(
        &self,
        req: Request<pb::validate_resource_config::Request>,
    ) -> RpcResult<pb::validate_resource_config::Response> {
        rpc!(
            "ValidateResourceConfig",
            validate::resource_config(self, req.into_inner())
        )
    }

    async fn validate_data_resource_config(
        &self,
        req: Request<pb::validate_data_resource_config::Request>,
    ) -> RpcResult<pb::validate_data_resource_config::Response> {
        rpc!(
            "ValidateDataResourceConfig",
            validate::data_resource_config(self, req.into_inner())
        )
    }

    async fn upgrade_resource_state(
        &self,
        req: Request<pb::upgrade_resource_state::Request>,
    ) -> RpcResult<pb::upgrade_resource_state::Response> {
        rpc!(
            "UpgradeResourceState",
            state::upgrade(self, req.into_inner())
        )
    }

    async fn configure_provider(
        &self,
        req: Request<pb::configure_provider::Request>,
    ) -> RpcResult<pb::configure_provider::Response> {
        rpc!(
            "ConfigureProvider",
            configure::configure(self, req.into_inner())
        )
    }

    async fn read_resource(
        &self,
        req: Request<pb::read_resource::Request>,
    ) -> RpcResult<pb::read_resource::Response> {
        rpc!("ReadResource", read::resource(self, req.into_inner()))
    }

    async fn plan_resource_change(
        &self,
        req: Request<pb::plan_resource_change::Request>,
    ) -> RpcResult<pb::plan_resource_change::Response> {
        rpc!("PlanResourceChange", plan::plan(self, req.into_inner()))
    }

    async fn apply_resource_change(
        &self,
        req: Request<pb::apply_resource_change::Request>,
    ) -> RpcResult<pb::apply_resource_change::Response> {
        rpc!("ApplyResourceChange", apply::apply(self, req.into_inner()))
    }

    async fn import_resource_state(
        &self,
        req: Request<pb::import_resource_state::Request>,
    ) -> RpcResult<pb::import_resource_state::Response> {
        rpc!("ImportResourceState", state::import(self, req.into_inner()))
    }

    async fn read_data_source(
        &self,
        req: Request<pb::read_data_source::Request>,
    ) -> RpcResult<pb::read_data_source::Response> {
        rpc!("ReadDataSource", read::data_source(self, req.into_inner()))
    }

    async fn stop_provider(
        &self,
        _: Request<pb::stop_provider::Request>,
    ) -> RpcResult<pb::stop_provider::Response> {
        // Requests in flight are short HTTP calls with their own timeout; nothing to cancel.
        Ok(Response::new(pb::stop_provider::Response {
            error: String::new(),
        }))
    }
}
