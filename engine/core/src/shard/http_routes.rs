//! Plain HTTP requests on the engine port (not upgrades): health, readiness, metrics, the
//! channel functions' `PUT /associations`, and the Pusher REST API under `/apps/`. A request is answered at once or parked while other shards
//! answer a question (see `query`).

use bytes::Bytes;

use super::http_reply::{json, HttpOutcome, Reply};
use super::message::Query;
use super::query_state::Purpose;
use super::Shard;
use crate::http::request::RequestHead;

impl Shard {
    /// Answers one HTTP request (or parks it).
    pub(super) fn route_http(
        &mut self,
        key: u32,
        head: &RequestHead,
        body: &Bytes,
        keep_alive: bool,
    ) -> HttpOutcome {
        let metrics_only = self.conns[key as usize].metrics_only;
        let method = head.method.as_str();
        let path = head.path.as_str();
        if path == "/metrics" && (metrics_only || !self.settings.metrics_port_separate) {
            if method != "GET" {
                return json("metrics", 405, &b"{\"error\":\"Method not allowed\"}"[..]);
            }
            if !self.start_query(
                key,
                Query::Stats,
                None,
                Purpose::Metrics,
                keep_alive,
                "metrics",
            ) {
                return json(
                    "metrics",
                    503,
                    &b"{\"error\":\"Too many requests in flight\"}"[..],
                );
            }
            return HttpOutcome::Waiting;
        }
        if metrics_only {
            return json(
                "other",
                404,
                &b"{\"error\":\"Only /metrics is served on this port\"}"[..],
            );
        }
        match (method, path) {
            ("GET" | "HEAD", "/") => HttpOutcome::Reply(Reply {
                route: "health",
                status: 200,
                content_type: "text/plain",
                body: b"OK\n".to_vec(),
            }),
            ("GET" | "HEAD", "/ready") => {
                if self.draining {
                    json(
                        "ready",
                        503,
                        &b"{\"ready\":false,\"reason\":\"draining\"}"[..],
                    )
                } else if !self.node_running {
                    let body = &b"{\"ready\":false,\"reason\":\"a shard is not running\"}"[..];
                    json("ready", 503, body)
                } else {
                    json("ready", 200, &b"{\"ready\":true}"[..])
                }
            }
            _ if crate::socketio::is_mount(path) => {
                // Long-polling, or a WebSocket request without its upgrade headers.
                let refusal = crate::socketio::check_handshake(
                    head.query_param("EIO").as_deref(),
                    head.query_param("transport").as_deref(),
                )
                .err()
                .unwrap_or(crate::socketio::HandshakeRefusal::TransportUnknown);
                json("socketio", 400, refusal.body().as_bytes())
            }
            ("PUT", crate::functions::UPDATE_PATH) => self.put_associations(body),
            _ if crate::slip::control_app_key_of(path).is_some() => self.slip_control(head, body),
            (_, crate::functions::UPDATE_PATH) => json(
                "associations",
                405,
                &b"{\"error\":\"Method not allowed\"}"[..],
            ),
            _ if path.starts_with("/apps/") || path.starts_with("/users/") => {
                self.route_rest(key, head, body, keep_alive)
            }
            _ => json("other", 404, &b"{\"error\":\"Not found\"}"[..]),
        }
    }
}
