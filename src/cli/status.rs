//! `dialerd status`.

use crate::error::CliError;
use crate::store::Store;

/// Prints the progress of every campaign.
pub async fn run(_store: &Store, _json: bool) -> Result<(), CliError> {
    Err(CliError::msg(crate::error::Exit::Failure, "status: not available yet"))
}
