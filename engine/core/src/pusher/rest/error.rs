//! [`RestError`], the one error type every REST rejection is expressed as (HTTP status +
//! `{"error":"…"}`). The signature check and the body parsers both return it, so it sits below
//! them.

use crate::pusher::json_escape::push_json_string;

/// Why a REST request is refused; maps to the HTTP status and the JSON body
/// `{"error": message}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestError {
    /// HTTP status: 400 bad request, 401 bad auth, 413 over a limit (others come from the
    /// shard: 403, 404, 429).
    pub status: u16,
    /// Human-readable cause, sent as the `error` field.
    pub message: String,
}

impl RestError {
    /// An error with `status` and `message`.
    pub fn new(status: u16, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
        }
    }

    /// 400: malformed request.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(400, message)
    }

    /// 401: missing or wrong authentication.
    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(401, message)
    }

    /// 413: a name, a list or a payload over the app's limit.
    pub fn too_large(message: impl Into<String>) -> Self {
        Self::new(413, message)
    }

    /// The JSON response body `{"error":"…"}` (the message JSON-escaped).
    pub fn body(&self) -> String {
        let mut out = String::with_capacity(self.message.len() + 16);
        out.push_str("{\"error\":");
        push_json_string(&mut out, &self.message);
        out.push('}');
        out
    }

    /// The same error with `context: ` put in front of the message (`batch[3]: …`).
    pub(crate) fn in_context(mut self, context: &str) -> Self {
        self.message = format!("{context}: {}", self.message);
        self
    }
}

impl core::fmt::Display for RestError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "{} {}", self.status, self.message)
    }
}

impl std::error::Error for RestError {}
