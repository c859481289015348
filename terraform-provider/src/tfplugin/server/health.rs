//! The standard gRPC health service.

use std::pin::Pin;

use tonic::{Request, Response, Status};

use crate::tfplugin::proto::health as hpb;

type RpcResult<T> = Result<Response<T>, Status>;

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
