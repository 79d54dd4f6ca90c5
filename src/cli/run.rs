//! `dialerd run` and `dialerd simulate`: the two long-running commands.

use std::sync::Arc;

use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::mpsc;

use super::{RunArgs, SimulateArgs};
use crate::clock::SystemClock;
use crate::config::Settings;
use crate::daemon::{self, Control, RunOptions};
use crate::error::{CliError, Exit};

/// Runs the daemon; SIGTERM/SIGINT stop it cleanly, SIGHUP reloads.
pub async fn run(
    settings: Settings,
    config_file: Option<std::path::PathBuf>,
    args: RunArgs,
) -> Result<(), CliError> {
    let (tx, rx) = mpsc::channel(8);
    let mut term = signal(SignalKind::terminate()).map_err(anyhow::Error::from)?;
    let mut int = signal(SignalKind::interrupt()).map_err(anyhow::Error::from)?;
    let mut hup = signal(SignalKind::hangup()).map_err(anyhow::Error::from)?;
    tokio::spawn(async move {
        loop {
            let msg = tokio::select! {
                _ = term.recv() => Control::Stop,
                _ = int.recv() => Control::Stop,
                _ = hup.recv() => Control::Reload,
            };
            if tx.send(msg).await.is_err() {
                return;
            }
        }
    });
    let opts = RunOptions {
        until_idle: args.until_idle,
        config_file,
    };
    daemon::run(settings, Arc::new(SystemClock), opts, rx).await?;
    Ok(())
}

/// Serves the simulator until SIGTERM/SIGINT.
pub async fn simulate(args: SimulateArgs) -> Result<(), CliError> {
    let listener = tokio::net::TcpListener::bind(&args.listen)
        .await
        .map_err(|e| {
            CliError::msg(
                Exit::Usage,
                format!("cannot listen on {}: {e}", args.listen),
            )
        })?;
    let addr = listener.local_addr().map_err(anyhow::Error::from)?;
    errln!(
        "dialerd simulate: OmniDimension-compatible API at http://{addr}/api/v1 (api key {:?})",
        args.sim.api_key
    );
    let mut term = signal(SignalKind::terminate()).map_err(anyhow::Error::from)?;
    let stop = async move {
        tokio::select! {
            _ = term.recv() => {}
            _ = tokio::signal::ctrl_c() => {}
        }
    };
    crate::sim::serve(listener, args.sim, stop).await?;
    Ok(())
}
