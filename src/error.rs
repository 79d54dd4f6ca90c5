//! Exit statuses of the command line (sysexits.h, as `interface.md` fixes them)
//! and the error that carries one up to `main`.

use std::fmt;

/// A documented exit status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// 1: anything else.
    Failure = 1,
    /// 64: the command line was wrong.
    Usage = 64,
    /// 65: the input data was unusable (not one row could be imported).
    DataErr = 65,
    /// 66: an input file was missing or unreadable.
    NoInput = 66,
    /// 78: the configuration was invalid.
    Config = 78,
}

/// An error that ends a command with a specific exit status.
#[derive(Debug)]
pub struct CliError {
    /// The exit status to end with.
    pub exit: Exit,
    /// The error, with its cause chain.
    pub error: anyhow::Error,
}

impl CliError {
    /// Wraps `error` with exit status `exit`.
    pub fn new(exit: Exit, error: impl Into<anyhow::Error>) -> Self {
        Self {
            exit,
            error: error.into(),
        }
    }

    /// A one-off error message with exit status `exit`.
    pub fn msg(exit: Exit, msg: impl fmt::Display) -> Self {
        Self::new(exit, anyhow::anyhow!("{msg}"))
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#}", self.error)
    }
}

impl From<anyhow::Error> for CliError {
    fn from(error: anyhow::Error) -> Self {
        // A configuration error anywhere in the chain keeps its own status.
        if error
            .chain()
            .any(|e| e.downcast_ref::<crate::config::ConfigError>().is_some())
        {
            return Self::new(Exit::Config, error);
        }
        Self::new(Exit::Failure, error)
    }
}

impl From<crate::config::ConfigError> for CliError {
    fn from(error: crate::config::ConfigError) -> Self {
        Self::new(Exit::Config, error)
    }
}
