//! `cashout-api`: the merchant and operator API (the `cashout_app::http::api_router` router)
//! behind API Gateway HTTP API v2.

use std::sync::Arc;

use cashout_app::http::limit::ClientAddr;
use cashout_app::sender::HttpWebhookSender;
use cashout_app::{App, AppConfig, http};
use cashout_core::ports::{Clock, SystemClock};
use cashout_providers::{Providers, ProvidersConfig};
use cashout_store::aws::Deployment;
use lambda_http::request::RequestContext;
use lambda_http::tower::ServiceExt;
use lambda_http::{Request, RequestExt};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    cashout_app::telemetry::init_lambda();
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let deployment = Deployment::from_env(clock.clone()).await?;
    let providers_config = ProvidersConfig::from_json(&deployment.provider_settings().await?)?;
    let coverage = providers_config.coverage();
    let providers = Providers::new(providers_config)?;
    let config = AppConfig::from_env()?.with_coverage(coverage);
    // The endpoint test (`POST /v1/webhook-endpoints/{id}/test`) sends from this function.
    let sender = HttpWebhookSender::new(config.allow_private_webhooks)?;
    let app = App::deployed(deployment.store, deployment.queue, providers, sender, clock, config);
    let router = http::finish(
        http::api_router(app.clone())
            .merge(http::console_router(app.clone()))
            .merge(http::portal_router(app)),
    );
    lambda_http::run(router.map_request(with_client_addr)).await
}

/// The caller's address as API Gateway saw it, for the limit of failed authentications per
/// address (a header would be the client's word).
fn with_client_addr(mut request: Request) -> Request {
    let address = match request.request_context_ref() {
        Some(RequestContext::ApiGatewayV2(context)) => context.http.source_ip.as_deref().and_then(|ip| ip.parse().ok()),
        _ => None,
    };
    if let Some(address) = address {
        request.extensions_mut().insert(ClientAddr(address));
    }
    request
}
