//! `dialerd campaigns ...`.

use super::CampaignsCmd;
use crate::error::CliError;
use crate::store::Store;

/// Runs a `campaigns` subcommand.
pub async fn run(_store: &Store, _cmd: CampaignsCmd) -> Result<(), CliError> {
    Err(CliError::msg(crate::error::Exit::Failure, "campaigns: not available yet"))
}
