//! `dialerd webhooks test` and `dialerd webhooks retry [--all | ID]`.

use std::sync::Arc;

use super::WebhooksCmd;
use crate::clock::{Clock, SystemClock, to_db_text};
use crate::config::Settings;
use crate::error::{CliError, Exit};
use crate::webhooks::{Sender, Sent, body_for};

/// Runs one `webhooks` subcommand.
pub async fn run(settings: &Settings, cmd: WebhooksCmd) -> Result<(), CliError> {
    match cmd {
        WebhooksCmd::Test => test(settings).await,
        WebhooksCmd::Retry { all, id } => {
            let store = super::open(settings).await?;
            let id = if all { None } else { id };
            let n = store
                .webhook_requeue(id)
                .await
                .map_err(anyhow::Error::from)?;
            match (id, n) {
                (Some(id), 0) => Err(CliError::msg(
                    Exit::Failure,
                    format!("no undelivered webhook event with id {id}"),
                )),
                (_, n) => {
                    outln!(
                        "{n} undelivered webhook event(s) requeued; a running daemon sends them within seconds"
                    );
                    Ok(())
                }
            }
        }
    }
}

/// Sends one signed `webhook.test` event (delivery id 0) and prints the answer;
/// exits 1 when the receiver did not answer 2xx.
async fn test(settings: &Settings) -> Result<(), CliError> {
    let hooks = settings.webhooks.clone().ok_or_else(|| {
        CliError::msg(
            Exit::Config,
            "configuration key webhooks.url: not set, so there is nowhere to send a test event",
        )
    })?;
    let clock = Arc::new(SystemClock);
    let url = hooks.url.clone();
    let payload = serde_json::json!({
        "message": "a test event from dialerd webhooks test",
        "events": hooks.events,
    })
    .to_string();
    let body = body_for(
        0,
        "webhook.test",
        &to_db_text(clock.now()),
        payload.as_bytes(),
    );
    let sender = Sender::new(clock, hooks)?;
    outln!(
        "POST {}://{}{} (event webhook.test, delivery 0)",
        url.scheme(),
        url.host_str().unwrap_or(""),
        url.port().map(|p| format!(":{p}")).unwrap_or_default()
    );
    match sender.send(0, "webhook.test", body).await {
        Sent::Delivered { status } => {
            outln!("delivered: HTTP {status}");
            Ok(())
        }
        Sent::Failed { error, .. } => Err(CliError::msg(
            Exit::Failure,
            format!("not delivered: {error}"),
        )),
    }
}
