//! `cashout-api`: the merchant and operator API (the `cashout_app::http::api_router` router)
//! behind API Gateway HTTP API v2.

use std::sync::Arc;

use cashout_app::{App, AppConfig, http};
use cashout_core::ports::{Clock, SystemClock};
use cashout_providers::{Providers, ProvidersConfig};
use cashout_store::aws::Deployment;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    cashout_app::telemetry::init_lambda();
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let deployment = Deployment::from_env(clock.clone()).await?;
    let providers_config = ProvidersConfig::from_json(&deployment.provider_settings().await?)?;
    let coverage = providers_config.coverage();
    let providers = Providers::new(providers_config)?;
    let app = App::deployed(
        deployment.store,
        deployment.queue,
        providers,
        (),
        clock,
        AppConfig::from_env()?.with_coverage(coverage),
    );
    lambda_http::run(http::finish(
        http::api_router(app.clone()).merge(http::console_router(app)),
    ))
    .await
}
