//! ConfigureProvider: builds the client every later operation uses.

use std::sync::Arc;

use super::{ProviderService, pb};
use crate::tfplugin::convert::{decode, diagnostics};
use crate::tfplugin::framework::Provider;

pub(super) async fn configure<P: Provider>(
    svc: &ProviderService<P>,
    req: pb::configure_provider::Request,
) -> pb::configure_provider::Response {
    let config = match decode(req.config.as_ref(), &svc.provider_schema.value_type()) {
        Ok(c) => c,
        Err(d) => {
            return pb::configure_provider::Response {
                diagnostics: diagnostics(d),
            };
        }
    };
    let diagnostics = match svc.provider.configure(&config).await {
        Ok(client) => {
            *svc.client.write().await = Some(Arc::new(client));
            Vec::new()
        }
        Err(d) => diagnostics(d),
    };
    pb::configure_provider::Response { diagnostics }
}
