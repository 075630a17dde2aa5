//! How the bridge reaches the engine's shards, the leaf every task shares: a link's id, its
//! writer queue (the reply handle), and [`HubInput`], the inbox of the hub task that the link
//! readers, the Redis subscriber and the stats task feed.

use bytes::Bytes;
use ringcast_core::link::{BridgeStats, LinkMessage};
use tokio::sync::mpsc;

/// Tells the links of one shard apart: a reconnecting shard gets a new id, so messages still in
/// flight from its old link cannot touch the new link's state.
pub type LinkId = u64;

/// How the bridge reaches one engine shard: the queue of its link's writer task.
pub type LinkWriter = mpsc::Sender<LinkMessage>;

/// Everything the hub task reacts to.
#[derive(Debug)]
pub enum HubInput {
    /// A link said a valid Hello.
    Attach {
        /// Shard index from the Hello.
        shard: u16,
        /// The link's id.
        link_id: LinkId,
        /// The link's writer queue.
        writer: LinkWriter,
    },
    /// A link closed.
    Detach {
        /// Shard index from the link's Hello.
        shard: u16,
        /// The link's id.
        link_id: LinkId,
    },
    /// `Subscribe` from a link.
    Subscribe {
        /// Shard index from the link's Hello.
        shard: u16,
        /// The link's id.
        link_id: LinkId,
        /// App id.
        app_id: String,
        /// Channel name.
        channel: String,
        /// Echoed in the answer.
        seq: u32,
    },
    /// `Unsubscribe` from a link.
    Unsubscribe {
        /// Shard index from the link's Hello.
        shard: u16,
        /// The link's id.
        link_id: LinkId,
        /// App id.
        app_id: String,
        /// Channel name.
        channel: String,
    },
    /// The payload of a message Redis delivered on a subscribed channel.
    Remote(Bytes),
    /// A message for every linked shard.
    ToAllLinks(LinkMessage),
    /// The bridge's counters, for every link. `links` is replaced by the hub's own count, which
    /// is exact at this point of the queue (the snapshot may predate an attach queued before).
    Stats(BridgeStats),
}
