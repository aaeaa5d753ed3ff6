//! `cashout-callbacks`: consumes the `callbacks` queue and delivers signed webhooks to merchant
//! endpoints (`App::callbacks_batch`), answering partial batch failures.

use std::sync::Arc;

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use cashout_app::sender::HttpWebhookSender;
use cashout_app::{App, AppConfig};
use cashout_core::ports::{Clock, SystemClock};
use cashout_store::aws::Deployment;
use lambda_runtime::{Error, LambdaEvent, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    cashout_app::telemetry::init_lambda();
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let deployment = Deployment::from_env(clock.clone()).await?;
    let config = AppConfig::from_env()?;
    let sender = HttpWebhookSender::new(config.allow_private_webhooks)?;
    let app = App::deployed(deployment.store, deployment.queue, (), sender, clock, config);
    let app = &app;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<SqsEvent>| async move {
        Ok::<SqsBatchResponse, Error>(app.callbacks_batch(event.payload).await)
    }))
    .await
}
