//! `cashout-dispatcher`: consumes the `dispatch` queue and sends approved cashouts to their
//! provider (`App::dispatcher_batch`), answering partial batch failures.

use std::sync::Arc;

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
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
    lambda_runtime::run(service_fn(move |event: LambdaEvent<SqsEvent>| async move {
        Ok::<SqsBatchResponse, Error>(app.dispatcher_batch(event.payload).await)
    }))
    .await
}
