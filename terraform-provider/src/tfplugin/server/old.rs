//! The gRPC services: `tfplugin6.Provider` (decoding requests, calling the framework, encoding
//! answers), go-plugin's controller and the health service.

use std::collections::BTreeMap;
use std::pin::Pin;
use std::sync::Arc;

use tokio::sync::{RwLock, watch};
use tonic::{Request, Response, Status};

use super::convert::{self, decode, diagnostics, encode};
use super::diag::{Diagnostic, Diagnostics};
use super::framework::{self, DataSource, Provider, Resource};
use super::log;
use super::proto::health as hpb;
use super::proto::plugin as cpb;
use super::proto::tfplugin6 as pb;
use super::schema::Schema;
use super::types::Type;
use super::value::Value;

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

type RpcResult<T> = Result<Response<T>, Status>;

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

    fn server_capabilities() -> pb::ServerCapabilities {
        pb::ServerCapabilities {
            plan_destroy: false,
            get_provider_schema_optional: true,
            move_resource_state: false,
        }
    }
}

/// Runs a fallible step and turns its diagnostics into the response's list.
fn collect<T>(r: Result<T, Diagnostics>) -> (Option<T>, Vec<pb::Diagnostic>) {
    match r {
        Ok(v) => (Some(v), Vec::new()),
        Err(d) => (None, diagnostics(d)),
    }
}

#[tonic::async_trait]
impl<P: Provider> pb::provider_server::Provider for ProviderService<P> {
    async fn get_metadata(
        &self,
        _: Request<pb::get_metadata::Request>,
    ) -> RpcResult<pb::get_metadata::Response> {
        Ok(Response::new(pb::get_metadata::Response {
            server_capabilities: Some(Self::server_capabilities()),
            diagnostics: Vec::new(),
            data_sources: self
                .data_sources
                .keys()
                .map(|k| pb::get_metadata::DataSourceMetadata {
                    type_name: k.clone(),
                })
                .collect(),
            resources: self
                .resources
                .keys()
                .map(|k| pb::get_metadata::ResourceMetadata {
                    type_name: k.clone(),
                })
                .collect(),
        }))
    }

    async fn get_provider_schema(
        &self,
        _: Request<pb::get_provider_schema::Request>,
    ) -> RpcResult<pb::get_provider_schema::Response> {
        Ok(Response::new(pb::get_provider_schema::Response {
            provider: Some(convert::schema(&self.provider_schema)),
            resource_schemas: self
                .resources
                .iter()
                .map(|(k, e)| (k.clone(), convert::schema(&e.schema)))
                .collect(),
            data_source_schemas: self
                .data_sources
                .iter()
                .map(|(k, e)| (k.clone(), convert::schema(&e.schema)))
                .collect(),
            diagnostics: Vec::new(),
            provider_meta: None,
            server_capabilities: Some(Self::server_capabilities()),
        }))
    }

    async fn validate_provider_config(
        &self,
        req: Request<pb::validate_provider_config::Request>,
    ) -> RpcResult<pb::validate_provider_config::Response> {
        let req = req.into_inner();
        let r = decode(req.config.as_ref(), &self.provider_schema.value_type())
            .and_then(|c| diags_to_result(self.provider.validate(&c)));
        Ok(Response::new(pb::validate_provider_config::Response {
            diagnostics: collect(r).1,
        }))
    }

    async fn validate_resource_config(
        &self,
        req: Request<pb::validate_resource_config::Request>,
    ) -> RpcResult<pb::validate_resource_config::Response> {
        let req = req.into_inner();
        let r = self.resource(&req.type_name).and_then(|e| {
            let c = decode(req.config.as_ref(), &e.ty)?;
            diags_to_result(e.imp.validate(&c))
        });
        Ok(Response::new(pb::validate_resource_config::Response {
            diagnostics: collect(r).1,
        }))
    }

    async fn validate_data_resource_config(
        &self,
        req: Request<pb::validate_data_resource_config::Request>,
    ) -> RpcResult<pb::validate_data_resource_config::Response> {
        let req = req.into_inner();
        let r = self.data_source(&req.type_name).and_then(|e| {
            let c = decode(req.config.as_ref(), &e.ty)?;
            diags_to_result(e.imp.validate(&c))
        });
        Ok(Response::new(pb::validate_data_resource_config::Response {
            diagnostics: collect(r).1,
        }))
    }

    async fn upgrade_resource_state(
        &self,
        req: Request<pb::upgrade_resource_state::Request>,
    ) -> RpcResult<pb::upgrade_resource_state::Response> {
        let req = req.into_inner();
        // One schema version so far: re-reading the stored JSON with the current schema fills
        // attributes it lacks with null and drops ones it no longer has.
        let r = self.resource(&req.type_name).and_then(|e| {
            let raw = req
                .raw_state
                .as_ref()
                .map(|r| r.json.as_slice())
                .unwrap_or_default();
            let v = if raw.is_empty() {
                Value::Null
            } else {
                Value::from_json(raw, &e.ty).map_err(convert::value_error)?
            };
            Ok(encode(&v, &e.ty))
        });
        let (state, diagnostics) = collect(r);
        Ok(Response::new(pb::upgrade_resource_state::Response {
            upgraded_state: state,
            diagnostics,
        }))
    }

    async fn configure_provider(
        &self,
        req: Request<pb::configure_provider::Request>,
    ) -> RpcResult<pb::configure_provider::Response> {
        let req = req.into_inner();
        let config = match decode(req.config.as_ref(), &self.provider_schema.value_type()) {
            Ok(c) => c,
            Err(d) => {
                return Ok(Response::new(pb::configure_provider::Response {
                    diagnostics: diagnostics(d),
                }));
            }
        };
        let r = self.provider.configure(&config).await;
        let diags = match r {
            Ok(client) => {
                *self.client.write().await = Some(Arc::new(client));
                Vec::new()
            }
            Err(d) => diagnostics(d),
        };
        Ok(Response::new(pb::configure_provider::Response {
            diagnostics: diags,
        }))
    }

    async fn read_resource(
        &self,
        req: Request<pb::read_resource::Request>,
    ) -> RpcResult<pb::read_resource::Response> {
        let req = req.into_inner();
        let r = async {
            let e = self.resource(&req.type_name)?;
            let current = decode(req.current_state.as_ref(), &e.ty)?;
            if current.is_null() {
                return Ok(encode(&Value::Null, &e.ty));
            }
            let client = self.client().await?;
            let new = e.imp.read(&client, &current).await?;
            let new = match new {
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
        Ok(Response::new(pb::read_resource::Response {
            new_state,
            diagnostics,
            private: req.private,
            deferred: None,
        }))
    }

    async fn plan_resource_change(
        &self,
        req: Request<pb::plan_resource_change::Request>,
    ) -> RpcResult<pb::plan_resource_change::Response> {
        let req = req.into_inner();
        let r = (|| {
            let e = self.resource(&req.type_name)?;
            let prior = decode(req.prior_state.as_ref(), &e.ty)?;
            let proposed = decode(req.proposed_new_state.as_ref(), &e.ty)?;
            let config = decode(req.config.as_ref(), &e.ty)?;
            let plan = framework::plan(&e.schema, &prior, &proposed, &config);
            Ok((encode(&plan.planned, &e.ty), plan.requires_replace))
        })();
        let (out, diagnostics) = collect(r);
        let (planned_state, requires_replace) = match out {
            Some((s, rr)) => (Some(s), rr.iter().map(convert::path).collect()),
            None => (None, Vec::new()),
        };
        Ok(Response::new(pb::plan_resource_change::Response {
            planned_state,
            requires_replace,
            planned_private: req.prior_private,
            diagnostics,
            legacy_type_system: false,
            deferred: None,
        }))
    }

    async fn apply_resource_change(
        &self,
        req: Request<pb::apply_resource_change::Request>,
    ) -> RpcResult<pb::apply_resource_change::Response> {
        let req = req.into_inner();
        let r = async {
            let e = self.resource(&req.type_name)?;
            let prior = decode(req.prior_state.as_ref(), &e.ty)?;
            let planned = decode(req.planned_state.as_ref(), &e.ty)?;
            let config = decode(req.config.as_ref(), &e.ty)?;
            let client = self.client().await?;
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
        Ok(Response::new(pb::apply_resource_change::Response {
            new_state,
            private: req.planned_private,
            diagnostics,
            legacy_type_system: false,
        }))
    }

    async fn import_resource_state(
        &self,
        req: Request<pb::import_resource_state::Request>,
    ) -> RpcResult<pb::import_resource_state::Response> {
        let req = req.into_inner();
        let r = async {
            let e = self.resource(&req.type_name)?;
            let client = self.client().await?;
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
        Ok(Response::new(pb::import_resource_state::Response {
            imported_resources: imported.into_iter().collect(),
            diagnostics,
            deferred: None,
        }))
    }

    async fn read_data_source(
        &self,
        req: Request<pb::read_data_source::Request>,
    ) -> RpcResult<pb::read_data_source::Response> {
        let req = req.into_inner();
        let r = async {
            let e = self.data_source(&req.type_name)?;
            let config = decode(req.config.as_ref(), &e.ty)?;
            let client = self.client().await?;
            let state = e.imp.read(&client, &config).await?;
            framework::check_wholly_known(&e.schema, &state)?;
            Ok(encode(&state, &e.ty))
        }
        .await;
        let (state, diagnostics) = collect(r);
        Ok(Response::new(pb::read_data_source::Response {
            state,
            diagnostics,
            deferred: None,
        }))
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

fn diags_to_result(d: Diagnostics) -> Result<(), Diagnostics> {
    if d.is_empty() { Ok(()) } else { Err(d) }
}

/// go-plugin's `Shutdown`: Terraform calls it when done with the provider and kills the process
/// two seconds later, so it only signals the serve loop to stop.
pub struct Controller {
    pub shutdown: watch::Sender<bool>,
    /// Debug mode: the process belongs to the developer, not to Terraform.
    pub ignore: bool,
}

#[tonic::async_trait]
impl cpb::grpc_controller_server::GrpcController for Controller {
    async fn shutdown(&self, _: Request<cpb::Empty>) -> RpcResult<cpb::Empty> {
        log::debug("shutdown requested");
        if !self.ignore {
            let _ = self.shutdown.send(true);
        }
        Ok(Response::new(cpb::Empty {}))
    }
}

/// Reports `plugin` (and the server as a whole) as serving.
pub struct Health;

type WatchStream =
    Pin<Box<dyn tokio_stream::Stream<Item = Result<hpb::HealthCheckResponse, Status>> + Send>>;

fn health_status(service: &str) -> Result<hpb::HealthCheckResponse, Status> {
    if service.is_empty() || service == "plugin" {
        Ok(hpb::HealthCheckResponse {
            status: hpb::health_check_response::ServingStatus::Serving as i32,
        })
    } else {
        Err(Status::not_found(format!("unknown service {service:?}")))
    }
}

#[tonic::async_trait]
impl hpb::health_server::Health for Health {
    async fn check(
        &self,
        req: Request<hpb::HealthCheckRequest>,
    ) -> RpcResult<hpb::HealthCheckResponse> {
        health_status(&req.into_inner().service).map(Response::new)
    }

    type WatchStream = WatchStream;

    async fn watch(&self, req: Request<hpb::HealthCheckRequest>) -> RpcResult<Self::WatchStream> {
        let first = health_status(&req.into_inner().service)?;
        // The status never changes while the process lives: send it once and keep the stream open.
        let stream =
            tokio_stream::StreamExt::chain(tokio_stream::once(Ok(first)), tokio_stream::pending());
        Ok(Response::new(Box::pin(stream)))
    }
}
