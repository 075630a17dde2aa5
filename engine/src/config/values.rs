//! Interpreting one option value: numbers with bounds, booleans, ports, addresses, drivers,
//! log levels, paths, ids and URLs. Each returns the reason a value is wrong; the caller adds
//! the option's name and where the value came from.

use std::fmt;
use std::net::IpAddr;

use super::{Driver, LogLevel};

/// The integer types options use.
pub(crate) trait Number: Copy + PartialOrd + fmt::Display + std::str::FromStr {}
impl Number for u16 {}
impl Number for u32 {}
impl Number for u64 {}
impl Number for usize {}

pub(crate) fn parse_num<T: Number>(s: &str, min: T, max: T) -> Result<T, String> {
    let n: T = s
        .trim()
        .parse()
        .map_err(|_| format!("{s:?} is not a whole number"))?;
    if n < min || n > max {
        return Err(format!("{n} is out of range ({min}-{max})"));
    }
    Ok(n)
}

pub(crate) fn parse_bool(s: &str) -> Result<bool, String> {
    match s.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" => Ok(true),
        "false" | "0" | "no" => Ok(false),
        _ => Err(format!("{s:?} is not a boolean (true/false, 1/0, yes/no)")),
    }
}

/// A TCP port; 0 asks the kernel for any free port (the log says which one was bound).
pub(crate) fn parse_port(s: &str) -> Result<u16, String> {
    s.trim()
        .parse::<u16>()
        .map_err(|_| format!("{s:?} is not a port number (0-65535, 0 = any free port)"))
}

pub(crate) fn parse_ip(s: &str) -> Result<IpAddr, String> {
    let t = s.trim();
    // "[::]" is how IPv6 addresses are often written next to a port.
    let t = t
        .strip_prefix('[')
        .and_then(|t| t.strip_suffix(']'))
        .unwrap_or(t);
    t.parse()
        .map_err(|_| format!("{s:?} is not an IP address (e.g. 0.0.0.0, 127.0.0.1, ::)"))
}

pub(crate) fn parse_driver(s: &str) -> Result<Driver, String> {
    match s.trim().to_ascii_lowercase().as_str() {
        "local" => Ok(Driver::Local),
        "redis" => Ok(Driver::Redis),
        _ => Err(format!("{s:?} is not a driver (expected local or redis)")),
    }
}

pub(crate) fn parse_log_level(s: &str) -> Result<LogLevel, String> {
    match s.trim().to_ascii_lowercase().as_str() {
        "trace" => Ok(LogLevel::Trace),
        "debug" => Ok(LogLevel::Debug),
        "info" => Ok(LogLevel::Info),
        "warn" => Ok(LogLevel::Warn),
        "error" => Ok(LogLevel::Error),
        _ => Err(format!(
            "{s:?} is not a log level (expected trace, debug, info, warn or error)"
        )),
    }
}

pub(crate) fn parse_app_manager(s: &str) -> Result<String, String> {
    match s.trim().to_ascii_lowercase().as_str() {
        "array" => Ok(String::from("array")),
        _ => Err(format!("{s:?} is not an app manager (expected array)")),
    }
}

pub(crate) fn parse_echo_path(s: &str) -> Result<String, String> {
    if !s.starts_with('/') {
        return Err(format!("{s:?} must start with '/'"));
    }
    if let Some(c) = s
        .chars()
        .find(|c| c.is_whitespace() || c.is_control() || matches!(c, '?' | '#'))
    {
        return Err(format!(
            "{s:?} contains {c:?}, which cannot be in a URL path"
        ));
    }
    Ok(s.to_owned())
}

pub(crate) fn not_empty(s: &str) -> Result<String, String> {
    if s.trim().is_empty() {
        Err(String::from("must not be empty"))
    } else {
        Ok(s.to_owned())
    }
}

/// App ids and keys appear in URL paths (`/apps/{id}`, `/app/{key}`) and auth strings
/// (`key:signature`), so characters that would split those are refused up front.
pub(crate) fn parse_ident(s: &str) -> Result<String, String> {
    if s.is_empty() {
        return Err(String::from("must not be empty"));
    }
    if let Some(c) = s
        .chars()
        .find(|c| c.is_whitespace() || c.is_control() || matches!(c, '/' | '?' | '#' | ':' | '%'))
    {
        return Err(format!(
            "{s:?} contains {c:?}, which cannot be in a URL path or auth string"
        ));
    }
    Ok(s.to_owned())
}

pub(crate) fn parse_url(s: &str) -> Result<String, String> {
    let rest = s
        .strip_prefix("http://")
        .or_else(|| s.strip_prefix("https://"));
    match rest {
        Some(rest)
            if !rest.is_empty() && !rest.starts_with('/') && !s.contains(char::is_whitespace) =>
        {
            Ok(s.to_owned())
        }
        _ => Err(format!("{s:?} is not an http:// or https:// URL")),
    }
}
