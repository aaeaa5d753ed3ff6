//! `cashout-poller`: consumes the `poll` and `provider-events` queues (`App::poller_event`,
//! answering partial batch failures) and runs the scheduled sweep for due work and the outbox.

use std::sync::Arc;

use cashout_app::sqs::PollerEvent;
use cashout_app::{App, AppConfig};
use cashout_core::ports::{Clock, SystemClock};
use cashout_providers::{Providers, ProvidersConfig};
use cashout_store::aws::Deployment;
use lambda_runtime::{Error, LambdaEvent, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
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
    let app = &app;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<PollerEvent>| async move {
        // Boxed: the sweep's future is large, and the runtime holds the handler's future inline.
        Box::pin(app.poller_event(event.payload)).await.map_err(Error::from)
    }))
    .await
}
