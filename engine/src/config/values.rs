//! Interpreting one option value: numbers with bounds, booleans, ports, addresses, drivers,
//! log levels, paths, ids, URLs and the `app_webhooks` list. Each returns the reason a value
//! is wrong; the caller adds the option's name and where the value came from.

use std::fmt;
use std::net::IpAddr;

use ringcast_core::app::{WebhookEventType, WebhookTarget};
use ringcast_core::origin::AllowedOrigins;
use serde_json::Value;

use super::choices::{Driver, LogLevel};
use ringcast_core::limits::{APP_WEBHOOKS_MAX, WEBHOOK_HEADERS_MAX};

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

/// A comma-separated list of HTTP header names, lower-cased (empty entries ignored).
pub(crate) fn parse_header_names(s: &str) -> Result<Vec<String>, String> {
    let mut names = Vec::new();
    for name in s.split(',').map(str::trim).filter(|n| !n.is_empty()) {
        let token = name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
        if !token {
            return Err(format!("{name:?} is not an HTTP header name"));
        }
        if names.len() >= ringcast_core::link::AUTH_HEADERS_MAX {
            return Err(format!(
                "more than {} header names",
                ringcast_core::link::AUTH_HEADERS_MAX
            ));
        }
        names.push(name.to_ascii_lowercase());
    }
    Ok(names)
}

/// `app_allowed_origins`: a JSON array of origin strings (the file's form) or a comma-separated
/// list (a flag's or variable's).
pub(crate) fn parse_allowed_origins(s: &str) -> Result<AllowedOrigins, String> {
    let text = s.trim();
    if text.starts_with('[') {
        let items: Vec<String> = serde_json::from_str(text)
            .map_err(|e| format!("expected a JSON array of origin strings: {e}"))?;
        AllowedOrigins::parse(items.iter().map(String::as_str))
    } else {
        AllowedOrigins::parse(text.split(','))
    }
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

/// Headers the bridge sets itself; a configured value would break the receiver's signature
/// check or body parsing.
const RESERVED_HEADERS: [&str; 3] = ["X-Pusher-Key", "X-Pusher-Signature", "Content-Type"];

const WEBHOOK_KEYS: [&str; 4] = ["url", "event_types", "filter", "headers"];
const FILTER_KEYS: [&str; 2] = ["channel_name_starts_with", "channel_name_ends_with"];

/// `app_webhooks`: a JSON array of webhook objects (see the README). Every error says where in
/// the array it is (`app_webhooks[1].headers`), since the value can be long.
pub(crate) fn parse_webhooks(s: &str) -> Result<Vec<WebhookTarget>, String> {
    let value = super::json::parse_strict(s).map_err(|e| format!("not valid JSON: {e}"))?;
    let Value::Array(items) = value else {
        return Err(format!(
            "expected a JSON array of webhook objects, got {}",
            json_type(&value)
        ));
    };
    if items.len() > APP_WEBHOOKS_MAX {
        return Err(format!(
            "{} webhooks listed, at most {APP_WEBHOOKS_MAX} are allowed per app",
            items.len()
        ));
    }
    items
        .iter()
        .enumerate()
        .map(|(i, item)| parse_webhook(item, &format!("app_webhooks[{i}]")))
        .collect()
}

/// One webhook object of `app_webhooks`; `at` is its place in the array. Each key has its own
/// reader below, run in the order of [`WEBHOOK_KEYS`].
fn parse_webhook(item: &Value, at: &str) -> Result<WebhookTarget, String> {
    let object = json_object(item, at, "a webhook object")?;
    check_keys(object, at, &WEBHOOK_KEYS)?;
    let url = webhook_url(object, at)?;
    let event_types = webhook_event_types(object, at)?;
    let (starts_with, ends_with) = webhook_filter(object, at)?;
    let headers = webhook_headers(object, at)?;
    Ok(WebhookTarget {
        url,
        event_types,
        channel_name_starts_with: starts_with,
        channel_name_ends_with: ends_with,
        headers,
    })
}

/// The webhook's required `url`, an http:// or https:// URL.
fn webhook_url(object: &serde_json::Map<String, Value>, at: &str) -> Result<String, String> {
    match object.get("url") {
        None => Err(format!("{at}: missing \"url\"")),
        Some(Value::String(url)) => parse_url(url).map_err(|why| format!("{at}.url: {why}")),
        Some(other) => Err(format!(
            "{at}.url: expected a string, got {}",
            json_type(other)
        )),
    }
}

/// The webhook's required `event_types`: a non-empty array of distinct event type names.
/// Its own piece because it checks the array and then each name, with errors that list the
/// valid names.
fn webhook_event_types(
    object: &serde_json::Map<String, Value>,
    at: &str,
) -> Result<Vec<WebhookEventType>, String> {
    let valid = || {
        let names: Vec<&str> = WebhookEventType::ALL.iter().map(|k| k.name()).collect();
        names.join(", ")
    };
    let names = match object.get("event_types") {
        None => {
            return Err(format!(
                "{at}: missing \"event_types\" (an array of: {})",
                valid()
            ))
        }
        Some(Value::Array(names)) if names.is_empty() => {
            return Err(format!(
                "{at}.event_types: must not be empty (an array of: {})",
                valid()
            ))
        }
        Some(Value::Array(names)) => names,
        Some(other) => {
            return Err(format!(
                "{at}.event_types: expected an array of event type names, got {}",
                json_type(other)
            ))
        }
    };
    let mut kinds: Vec<WebhookEventType> = Vec::with_capacity(names.len());
    for (j, name) in names.iter().enumerate() {
        let Value::String(name) = name else {
            return Err(format!(
                "{at}.event_types[{j}]: expected a string, got {}",
                json_type(name)
            ));
        };
        let kind = WebhookEventType::from_name(name).ok_or_else(|| {
            format!(
                "{at}.event_types[{j}]: {name:?} is not a webhook event type \
                 (expected one of: {})",
                valid()
            )
        })?;
        if kinds.contains(&kind) {
            return Err(format!("{at}.event_types: {name:?} is listed twice"));
        }
        kinds.push(kind);
    }
    Ok(kinds)
}

/// The webhook's optional `filter`: the channel name prefix and suffix it matches, each
/// `None` when not given.
fn webhook_filter(
    object: &serde_json::Map<String, Value>,
    at: &str,
) -> Result<(Option<String>, Option<String>), String> {
    let Some(filter) = object.get("filter") else {
        return Ok((None, None));
    };
    let at = format!("{at}.filter");
    let filter = json_object(filter, &at, "an object")?;
    check_keys(filter, &at, &FILTER_KEYS)?;
    let starts_with = filter_text(filter, &at, "channel_name_starts_with")?;
    let ends_with = filter_text(filter, &at, "channel_name_ends_with")?;
    Ok((starts_with, ends_with))
}

/// The webhook's optional `headers`: extra request headers, at most
/// [`WEBHOOK_HEADERS_MAX`], each checked by [`parse_header`] against the ones before it.
fn webhook_headers(
    object: &serde_json::Map<String, Value>,
    at: &str,
) -> Result<Vec<(String, String)>, String> {
    let Some(given) = object.get("headers") else {
        return Ok(Vec::new());
    };
    let at = format!("{at}.headers");
    let given = json_object(given, &at, "an object of header name to value")?;
    if given.len() > WEBHOOK_HEADERS_MAX {
        return Err(format!(
            "{at}: {} headers given, at most {WEBHOOK_HEADERS_MAX} are allowed per webhook",
            given.len()
        ));
    }
    let mut headers: Vec<(String, String)> = Vec::new();
    for (name, value) in given {
        headers.push(parse_header(name, value, &at, &headers)?);
    }
    Ok(headers)
}

fn parse_header(
    name: &str,
    value: &Value,
    at: &str,
    earlier: &[(String, String)],
) -> Result<(String, String), String> {
    // RFC 9110 token: what a header name may be made of, so it cannot end the header early.
    let is_tchar = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c);
    if name.is_empty() || !name.chars().all(is_tchar) {
        return Err(format!(
            "{at}: {name:?} is not an HTTP header name (letters, digits and !#$%&'*+-.^_`|~)"
        ));
    }
    if let Some(reserved) = RESERVED_HEADERS
        .iter()
        .find(|r| r.eq_ignore_ascii_case(name))
    {
        return Err(format!(
            "{at}: {name:?} may not be set: the server sends {reserved} itself"
        ));
    }
    // Header names are case-insensitive, so these would be the same header twice.
    if let Some((first, _)) = earlier.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)) {
        return Err(format!("{at}: {first:?} and {name:?} are the same header"));
    }
    let Value::String(text) = value else {
        return Err(format!(
            "{at}.{name}: expected a string, got {}",
            json_type(value)
        ));
    };
    // CR and LF would start a new header (request smuggling); NUL is refused by HTTP stacks.
    if let Some(c) = text.chars().find(|c| matches!(c, '\r' | '\n' | '\0')) {
        return Err(format!(
            "{at}.{name}: the value contains {c:?}, which cannot be in a header"
        ));
    }
    Ok((name.to_owned(), text.clone()))
}

fn filter_text(
    filter: &serde_json::Map<String, Value>,
    at: &str,
    key: &str,
) -> Result<Option<String>, String> {
    match filter.get(key) {
        None => Ok(None),
        Some(Value::String(text)) if text.is_empty() => Err(format!(
            "{at}.{key}: must not be empty (leave it out to match every channel)"
        )),
        Some(Value::String(text)) => Ok(Some(text.clone())),
        Some(other) => Err(format!(
            "{at}.{key}: expected a string, got {}",
            json_type(other)
        )),
    }
}

fn json_object<'a>(
    value: &'a Value,
    at: &str,
    what: &str,
) -> Result<&'a serde_json::Map<String, Value>, String> {
    match value {
        Value::Object(object) => Ok(object),
        other => Err(format!("{at}: expected {what}, got {}", json_type(other))),
    }
}

/// Unknown keys are refused like everywhere else in the config: a typo must not turn a
/// filter or a header off silently.
fn check_keys(
    object: &serde_json::Map<String, Value>,
    at: &str,
    known: &[&str],
) -> Result<(), String> {
    let Some(key) = object.keys().find(|k| !known.contains(&k.as_str())) else {
        return Ok(());
    };
    let hint = match super::json::closest(key, known) {
        Some(near) => format!("did you mean \"{near}\"?"),
        None => format!("expected {}", known.join(", ")),
    };
    Err(format!("{at}: unknown key \"{key}\" ({hint})"))
}

fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}
