//! [`ConfigError`], the one error type of configuration: every reader and check of this folder
//! returns it, so it sits below all of them.

use std::fmt;

/// A configuration error: one line naming the option, ready to print before exiting with 2.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError(pub String);

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ConfigError {}
