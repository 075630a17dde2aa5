//! [`AuthForward`]: what a connection's offloaded channel authorizations send along to the app's
//! endpoint (the upgrade request's configured headers and the connection's own query), captured
//! once at the upgrade and bounded.

use crate::app::AppConfig;
use crate::http::request::RequestHead;
use crate::limits::{AUTH_FORWARD_BYTES_MAX, AUTH_HEADERS_MAX};

/// Query parameters that belong to the Pusher protocol, not to the app.
const PUSHER_QUERY_PARAMS: [&str; 4] = ["protocol", "client", "version", "flash"];

/// What a connection's authorizations send along to the endpoint.
#[derive(Debug, Clone, Default)]
pub struct AuthForward {
    /// Upgrade request headers (name as configured, value).
    pub headers: Vec<(String, String)>,
    /// The connection's own query parameters, URL-encoded as received.
    pub form: String,
}

impl AuthForward {
    /// What to keep of an upgrade request for an app with an authorization URL (`None` for an
    /// app without one): the configured headers and, if configured, the query (bounded).
    pub fn capture(config: &AppConfig, head: &RequestHead) -> Option<AuthForward> {
        config.channel_authorization_url.as_ref()?;
        let mut bytes = 0usize;
        let mut forward = AuthForward::default();
        for name in &config.channel_authorization_headers {
            for value in head.headers_named(name) {
                bytes += name.len() + value.len();
                if bytes > AUTH_FORWARD_BYTES_MAX || forward.headers.len() >= AUTH_HEADERS_MAX {
                    break;
                }
                forward.headers.push((name.clone(), value.to_owned()));
            }
        }
        if config.channel_authorization_query {
            let own: Vec<&str> = head
                .query
                .split('&')
                .filter(|pair| {
                    let name = pair.split('=').next().unwrap_or_default();
                    !pair.is_empty() && !PUSHER_QUERY_PARAMS.contains(&name)
                })
                .collect();
            let form = own.join("&");
            if bytes + form.len() <= AUTH_FORWARD_BYTES_MAX {
                forward.form = form;
            }
        }
        Some(forward)
    }
}
