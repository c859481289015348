//! go-plugin's controller service.

use tokio::sync::watch;
use tonic::{Request, Response, Status};

use crate::tfplugin::log;
use crate::tfplugin::proto::plugin as cpb;

/// go-plugin's `Shutdown`: Terraform calls it when done with the provider and kills the process
/// two seconds later, so it only signals the serve loop to stop.
pub struct Controller {
    pub shutdown: watch::Sender<bool>,
    /// Debug mode: the process belongs to the developer, not to Terraform.
    pub ignore: bool,
}

#[tonic::async_trait]
impl cpb::grpc_controller_server::GrpcController for Controller {
    async fn shutdown(&self, _: Request<cpb::Empty>) -> Result<Response<cpb::Empty>, Status> {
        log::debug("shutdown requested");
        if !self.ignore {
            let _ = self.shutdown.send(true);
        }
        Ok(Response::new(cpb::Empty {}))
    }
}
