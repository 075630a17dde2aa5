//! Plain HTTP requests on the engine port (not upgrades): health and readiness. The Pusher REST
//! API mounts here too.

use bytes::Bytes;

use super::Shard;
use crate::http::request::RequestHead;
use crate::http::response;

impl Shard {
    /// Answers one HTTP request.
    pub(super) fn route_http(
        &mut self,
        head: &RequestHead,
        _body: &Bytes,
        keep_alive: bool,
    ) -> Bytes {
        let json = "application/json";
        match (head.method.as_str(), head.path.as_str()) {
            ("GET" | "HEAD", "/") => {
                response::response(200, "text/plain", b"OK\n", &[], keep_alive)
            }
            ("GET" | "HEAD", "/ready") => {
                if self.draining {
                    response::response(
                        503,
                        json,
                        b"{\"ready\":false,\"reason\":\"draining\"}",
                        &[],
                        keep_alive,
                    )
                } else {
                    response::response(200, json, b"{\"ready\":true}", &[], keep_alive)
                }
            }
            _ => response::response(404, json, b"{\"error\":\"Not found\"}", &[], keep_alive),
        }
    }
}
