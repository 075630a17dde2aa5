//! [`LinkError`]: why a link frame could not be encoded or decoded; every one ends the link.

use super::message::VERSION;

/// Why a frame could not be encoded or decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinkError {
    /// The length prefix announces more than [`LINK_FRAME_BYTES_MAX`](crate::limits::LINK_FRAME_BYTES_MAX) (or nothing at all).
    FrameLength(usize),
    /// Unknown message kind.
    UnknownKind(u8),
    /// A field runs past the end of its frame.
    Truncated,
    /// Bytes left over after the last field.
    TrailingBytes,
    /// A name longer than [`LINK_NAME_BYTES_MAX`](crate::limits::LINK_NAME_BYTES_MAX).
    NameTooLong(usize),
    /// A name that is not UTF-8.
    NotUtf8,
    /// More members than [`LINK_MEMBERS_MAX`](crate::limits::LINK_MEMBERS_MAX) in one message.
    TooManyMembers(usize),
    /// The peer speaks another protocol version.
    Version(u16),
    /// A well-formed message that only the other side may send.
    WrongDirection,
}

impl std::fmt::Display for LinkError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LinkError::FrameLength(n) => write!(f, "link frame length {n} out of bounds"),
            LinkError::UnknownKind(k) => write!(f, "unknown link message kind {k}"),
            LinkError::Truncated => write!(f, "link frame truncated"),
            LinkError::TrailingBytes => write!(f, "trailing bytes in link frame"),
            LinkError::NameTooLong(n) => write!(f, "name of {n} bytes on the link"),
            LinkError::NotUtf8 => write!(f, "name on the link is not UTF-8"),
            LinkError::TooManyMembers(n) => {
                write!(f, "{n} members or headers in one link message")
            }
            LinkError::Version(v) => write!(f, "link protocol version {v}, expected {VERSION}"),
            LinkError::WrongDirection => write!(f, "link message sent in the wrong direction"),
        }
    }
}

impl std::error::Error for LinkError {}
