//! The option values that are one of a fixed set of words: [`Driver`] and [`LogLevel`], with
//! their configuration spellings. The parsers in `values` produce them; `mod.rs` stores them.

/// A cache, queue or adapter driver.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Driver {
    /// In this process only.
    Local,
    /// Through Redis (via the bridge), shared by every node.
    Redis,
}

impl Driver {
    /// The configuration spelling (the tests compare configurations by it).
    #[cfg(test)]
    pub fn as_str(self) -> &'static str {
        match self {
            Driver::Local => "local",
            Driver::Redis => "redis",
        }
    }
}

/// `--log-level`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogLevel {
    /// Everything.
    Trace,
    /// Debugging detail.
    Debug,
    /// Normal operation.
    Info,
    /// Problems the server survives.
    Warn,
    /// Failures.
    Error,
}

impl LogLevel {
    /// The configuration spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            LogLevel::Trace => "trace",
            LogLevel::Debug => "debug",
            LogLevel::Info => "info",
            LogLevel::Warn => "warn",
            LogLevel::Error => "error",
        }
    }
}
