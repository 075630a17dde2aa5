//! HTTP/1.1 for the APIs served on the WebSocket port: request-head parsing (over httparse)
//! and response writing. Sans-IO: the shell feeds the bytes it has read and writes the
//! `Bytes` it gets back.
//!
//! Bodies are not parsed here: [`RequestHead::content_length`] tells the shell how many body
//! bytes follow the head, and the API handlers take the body as a byte slice.

pub mod request;
pub mod response;

pub use request::{parse_head, HttpError, ParseOutcome, RequestHead};
pub use response::{error_response, reason_phrase, response};
