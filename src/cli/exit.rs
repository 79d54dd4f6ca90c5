//! Which exit status each lower-level error ends a command with. The store
//! and the import know nothing of exit statuses; the command line maps their
//! errors here, in one place.

use crate::error::{CliError, Exit};
use crate::import::ImportError;
use crate::store::OpenError;

impl ImportError {
    /// The exit status this error ends the `import` command with.
    pub fn exit(&self) -> Exit {
        match self {
            Self::Usage(_) => Exit::Usage,
            Self::NoInput(_) => Exit::NoInput,
            Self::DataErr { .. } => Exit::DataErr,
            Self::Other(_) => Exit::Failure,
        }
    }
}

impl From<ImportError> for CliError {
    fn from(e: ImportError) -> Self {
        match e {
            ImportError::Other(err) => CliError::new(Exit::Failure, err),
            other => CliError::msg(other.exit(), other),
        }
    }
}

impl From<OpenError> for CliError {
    fn from(e: OpenError) -> Self {
        CliError::new(Exit::Failure, e)
    }
}
