//! [`HttpOutcome`]: what routing a plain HTTP request produced (a [`Reply`] to send now, or a
//! wait for other shards), and the JSON reply helper every route uses.

/// An answer ready to send.
pub struct Reply {
    /// Route label for metrics.
    pub route: &'static str,
    /// HTTP status.
    pub status: u16,
    /// Content type.
    pub content_type: &'static str,
    /// Body.
    pub body: Vec<u8>,
}

/// What routing a request produced.
pub enum HttpOutcome {
    /// Send this now.
    Reply(Reply),
    /// The connection waits for other shards; the answer comes later.
    Waiting,
}

/// A JSON reply.
pub fn json(route: &'static str, status: u16, body: impl Into<Vec<u8>>) -> HttpOutcome {
    HttpOutcome::Reply(Reply {
        route,
        status,
        content_type: "application/json",
        body: body.into(),
    })
}
