//! `dialerd dnc ...`.

use super::DncCmd;
use crate::config::Settings;
use crate::error::CliError;
use crate::store::Store;

/// Runs a `dnc` subcommand.
pub async fn run(_store: &Store, _settings: &Settings, _cmd: DncCmd) -> Result<(), CliError> {
    Err(CliError::msg(crate::error::Exit::Failure, "dnc: not available yet"))
}
