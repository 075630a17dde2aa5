//! The link server: accepts the engine shards' Unix-socket links, checks each one's Hello,
//! answers Welcome, then runs a reader (decodes frames, sends subscriptions to the hub and
//! publishes to the publisher) and a writer (drains the link's bounded queue, one `write_all`
//! per batch). Presence messages go to the presence task, webhook settings and events to the
//! webhook task, auth requests to the auth offload task, function requests to the channel
//! functions task, WebSocket-over-HTTP calls to the SLIP task; user commands and associations documents are published for the other nodes.
//! When a link ends, its shard's interest goes with it (its presence members stay: the engine's
//! resync after a new Hello settles them). Without Redis (a node alone that only sends
//! webhooks) there is no publisher and no presence task.

use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use ringcast_core::app::WebhookEventType;
use ringcast_core::limits::SHARD_COUNT_MAX;
use ringcast_core::link::{
    self, ChannelEvent, ChannelFilter, HookEvent, LinkMessage, PresenceChannel, VERSION,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::mpsc;

use crate::cluster::connections::ReportedCounts;
use crate::cluster::count_task::CountInput;
use crate::cluster::presence::{occupancy_member, PresenceInput, Tracked};
use crate::cluster::query::QueryInput;
use crate::cluster::repair::PresenceRepair;
use crate::counters::{add, BridgeCounters};
use crate::limits::{
    LINK_ACCEPT_RETRY_DELAY_MS, LINK_HELLO_TIMEOUT_MS, LINK_QUEUE_MESSAGES_MAX,
    LINK_READ_CHUNK_BYTES, LINK_WRITE_BATCH_BYTES_MAX,
};
use crate::links::{HubInput, LinkId, LinkWriter};
use crate::outbound::auth::AuthQueue;
use crate::outbound::functions::FunctionQueue;
use crate::outbound::slip::SlipQueue;
use crate::redis::envelope::{encode_envelope, encode_user_command};
use crate::redis::layout::{cache_key, redis_channel_name, user_command_channel};
use crate::redis::publish::Outbound;
use crate::webhooks::task::{InboxRefused, WebhookInbox, WebhookInput};

/// What every link needs to know about the node.
#[derive(Debug, Clone)]
pub struct LinkContext {
    /// This node's id (Welcome, and the envelope of every publish).
    pub node_id: u64,
    /// Prefix of the Redis channel names.
    pub redis_prefix: Arc<str>,
    /// The hub task's queue.
    pub hub: mpsc::Sender<HubInput>,
    /// The publisher task's queue (with Redis).
    pub publisher: Option<mpsc::Sender<Outbound>>,
    /// The presence task's queue (with Redis).
    pub presence: Option<mpsc::Sender<PresenceInput>>,
    /// The webhook task's queue.
    pub webhooks: WebhookInbox,
    /// The subscription count task's queue.
    pub subscription_counts: mpsc::Sender<CountInput>,
    /// The channels query task's queue (with Redis).
    pub queries: Option<mpsc::Sender<QueryInput>>,
    /// The engine's latest connection counts per app (with Redis).
    pub connection_counts: Option<ReportedCounts>,
    /// The auth offload task's queue.
    pub auth: AuthQueue,
    /// The channel functions task's queue.
    pub functions: FunctionQueue,
    /// The WebSocket-over-HTTP task's queue.
    pub slip: SlipQueue,
    /// The bridge's counters.
    pub counters: Arc<BridgeCounters>,
    /// Shards that must restate their presence (their link is ended for that).
    pub presence_repair: Arc<PresenceRepair>,
}

/// Accepts links forever.
pub async fn serve_links(listener: UnixListener, context: LinkContext) {
    let mut link_id_next: LinkId = 1;
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                let link_id = link_id_next;
                link_id_next += 1;
                tokio::spawn(run_link(stream, link_id, context.clone()));
            }
            Err(err) => {
                tracing::warn!("accepting a link failed: {err}");
                tokio::time::sleep(Duration::from_millis(LINK_ACCEPT_RETRY_DELAY_MS)).await;
            }
        }
    }
}

/// Why a link ended (for the log).
enum LinkEnd {
    PeerClosed,
    Io(std::io::Error),
    Corrupt(link::LinkError),
    Unexpected(&'static str),
    BridgeStopping,
    /// A presence change of the shard did not reach Redis; Redis is back: the engine links
    /// again and restates everything (see `cluster::repair`).
    Resync,
}

impl std::fmt::Display for LinkEnd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LinkEnd::PeerClosed => write!(f, "closed by the engine"),
            LinkEnd::Io(err) => write!(f, "{err}"),
            LinkEnd::Corrupt(err) => write!(f, "{err}"),
            LinkEnd::Unexpected(kind) => write!(f, "unexpected {kind} from the engine"),
            LinkEnd::BridgeStopping => write!(f, "bridge stopping"),
            LinkEnd::Resync => write!(
                f,
                "a presence change was lost: the engine restates its state"
            ),
        }
    }
}

async fn run_link(stream: UnixStream, link_id: LinkId, context: LinkContext) {
    let (mut reader, writer_half) = stream.into_split();
    let mut buffer = BytesMut::with_capacity(LINK_READ_CHUNK_BYTES);
    let hello = match tokio::time::timeout(
        Duration::from_millis(LINK_HELLO_TIMEOUT_MS),
        next_message(&mut reader, &mut buffer),
    )
    .await
    {
        Ok(Ok(hello)) => hello,
        Ok(Err(end)) => {
            tracing::warn!(link_id, "link closed before a valid Hello: {end}");
            return;
        }
        Err(_) => {
            tracing::warn!(link_id, "link sent no Hello in time; closing it");
            return;
        }
    };
    let LinkMessage::Hello {
        version,
        shard,
        shard_count,
        cluster,
    } = hello
    else {
        tracing::warn!(link_id, "link did not start with Hello; closing it");
        return;
    };
    if version != VERSION || shard >= shard_count || shard_count > SHARD_COUNT_MAX {
        tracing::warn!(
            link_id,
            version,
            shard,
            shard_count,
            "refusing link: need version {VERSION} and shard < shard_count <= {SHARD_COUNT_MAX}"
        );
        return;
    }

    let (writer, queue) = mpsc::channel(LINK_QUEUE_MESSAGES_MAX);
    // First in the queue, so the Welcome precedes every answer.
    let welcome = LinkMessage::Welcome {
        version: VERSION,
        node_id: context.node_id,
    };
    if writer.try_send(welcome).is_err() {
        return;
    }
    let writer_task = tokio::spawn(write_link(writer_half, queue, link_id));
    let attach = HubInput::Attach {
        shard,
        link_id,
        writer: writer.clone(),
    };
    // The hub and this link's reader (for presence answers) keep the long-lived senders; the
    // writer task is aborted when the reader ends.
    if context.hub.send(attach).await.is_err() {
        writer_task.abort();
        return;
    }
    // Before any presence message of this link: a resync starts from a clean slate.
    if let Some(presence) = &context.presence {
        if presence.send(PresenceInput::Hello { shard }).await.is_err() {
            writer_task.abort();
            return;
        }
    }
    // The Hello restates everything the shard holds: an earlier repair is moot.
    context.presence_repair.linked(shard);
    tracing::info!(link_id, shard, shard_count, "engine shard linked");

    let link = LinkOf {
        shard,
        link_id,
        cluster,
    };
    let end = read_link(&mut reader, &mut buffer, link, &writer, &context).await;
    match &end {
        LinkEnd::PeerClosed | LinkEnd::BridgeStopping => {
            tracing::info!(link_id, shard, "link ended: {end}")
        }
        _ => tracing::warn!(link_id, shard, "closing link: {end}"),
    }
    // Best effort: a stopping hub has nothing left to clean up.
    let _ = context.hub.send(HubInput::Detach { shard, link_id }).await;
    // Waits for room: a lost end would keep the shard's counts in the node's totals.
    let _ = context
        .subscription_counts
        .send(CountInput::LinkGone { shard, link_id })
        .await;
    // Dropping both halves closes the socket, also when the reader stopped on corrupt input.
    writer_task.abort();
}

/// Who is on the other end of a link, from its Hello.
#[derive(Debug, Clone, Copy)]
struct LinkOf {
    shard: u16,
    link_id: LinkId,
    /// The engine is one node of several.
    cluster: bool,
}

/// Reads and dispatches messages until the link ends.
async fn read_link(
    reader: &mut OwnedReadHalf,
    buffer: &mut BytesMut,
    link: LinkOf,
    writer: &LinkWriter,
    context: &LinkContext,
) -> LinkEnd {
    let repair = &context.presence_repair;
    loop {
        // Created before the check, so a repair made meanwhile still wakes this reader.
        let repaired = repair.notified();
        if repair.take_due(link.shard) {
            return LinkEnd::Resync;
        }
        let message = tokio::select! {
            // Cancel-safe: a message is decoded from `buffer` only once it is whole.
            read = next_message(reader, buffer) => match read {
                Ok(message) => message,
                Err(end) => return end,
            },
            () = repaired => continue,
        };
        if let Some(end) = dispatch(message, link, writer, context).await {
            return end;
        }
    }
}

/// Hands one message of the engine to the task that owns its kind; `Some` ends the link.
async fn dispatch(
    message: LinkMessage,
    link: LinkOf,
    writer: &LinkWriter,
    context: &LinkContext,
) -> Option<LinkEnd> {
    let LinkOf { shard, link_id, .. } = link;
    match message {
        LinkMessage::Subscribe {
            app_id,
            channel,
            seq,
        } => {
            let input = HubInput::Subscribe {
                shard,
                link_id,
                app_id,
                channel,
                seq,
            };
            to_hub(context, input).await
        }
        LinkMessage::Unsubscribe { app_id, channel } => {
            let input = HubInput::Unsubscribe {
                shard,
                link_id,
                app_id,
                channel,
            };
            to_hub(context, input).await
        }
        LinkMessage::Publish(event) => {
            publish(context, link_id, &event);
            None
        }
        message @ (LinkMessage::MemberJoin(..)
        | LinkMessage::MemberLeave(..)
        | LinkMessage::MembersResync(..)
        | LinkMessage::ResyncDone) => match presence_change(shard, message) {
            Some(input) => presence(context, input).await,
            None => None,
        },
        LinkMessage::MembersQuery(channel, query_id) => {
            let query = PresenceInput::Query {
                channel,
                query_id,
                reply: writer.clone(),
            };
            ask_presence(context, query, "MembersQuery without Redis").await
        }
        LinkMessage::CacheQuery {
            app_id,
            channel,
            query_id,
        } => {
            let query = PresenceInput::CacheQuery {
                app_id,
                channel,
                query_id,
                reply: writer.clone(),
            };
            ask_presence(context, query, "CacheQuery without Redis").await
        }
        LinkMessage::WebhookConfig(document) => {
            // Rare and small: waits for room rather than losing the settings.
            let sent = context.webhooks.send(WebhookInput::Config(document)).await;
            sent.is_err().then_some(LinkEnd::BridgeStopping)
        }
        LinkMessage::Hook(event) => hook(context, link, event).await,
        LinkMessage::AuthRequest(request) => {
            // Never waits: a full auth queue is answered with a refusal on this link.
            context.auth.submit(request, writer);
            None
        }
        LinkMessage::FunctionRequest(request) => {
            // Never waits: a full functions queue is answered with a failure on this link.
            context.functions.submit(request, writer);
            None
        }
        LinkMessage::SlipCall(call) => {
            // Never waits: a full queue is answered with a failure on this link.
            context.slip.submit(call, writer);
            None
        }
        LinkMessage::ChannelsQuery {
            query_id,
            app_id,
            filter,
        } => {
            channels_query(context, writer, query_id, app_id, filter);
            None
        }
        LinkMessage::ChannelsAnswer { query_id, channels } => {
            if let Some(queries) = &context.queries {
                let _ = queries.try_send(QueryInput::NodeAnswer { query_id, channels });
            }
            None
        }
        LinkMessage::ConnectionCounts(counts) => {
            if let Some(latest) = &context.connection_counts {
                latest.send_replace(counts);
            }
            None
        }
        // For the other nodes: this node's engine has acted on both already.
        message @ (LinkMessage::UserCommand { .. }
        | LinkMessage::Associations(_)
        | LinkMessage::SlipCommands { .. }) => {
            user_command(context, link_id, &message);
            None
        }
        LinkMessage::Hello { .. } => Some(LinkEnd::Unexpected("second Hello")),
        LinkMessage::MembersSnapshot(..) => Some(LinkEnd::Unexpected("MembersSnapshot")),
        LinkMessage::MemberAdded(..) => Some(LinkEnd::Unexpected("MemberAdded")),
        LinkMessage::MemberRemoved(..) => Some(LinkEnd::Unexpected("MemberRemoved")),
        LinkMessage::Welcome { .. } => Some(LinkEnd::Unexpected("Welcome")),
        LinkMessage::Subscribed { .. } => Some(LinkEnd::Unexpected("Subscribed")),
        LinkMessage::Deliver(_) => Some(LinkEnd::Unexpected("Deliver")),
        LinkMessage::Stats(_) => Some(LinkEnd::Unexpected("Stats")),
        LinkMessage::AuthResponse { .. } => Some(LinkEnd::Unexpected("AuthResponse")),
        LinkMessage::FunctionResult { .. } => Some(LinkEnd::Unexpected("FunctionResult")),
        LinkMessage::SlipAnswer { .. } => Some(LinkEnd::Unexpected("SlipAnswer")),
        LinkMessage::CacheAnswer { .. } => Some(LinkEnd::Unexpected("CacheAnswer")),
    }
}

/// Hands `input` to the hub, waiting for room (subscriptions must not be lost).
async fn to_hub(context: &LinkContext, input: HubInput) -> Option<LinkEnd> {
    context
        .hub
        .send(input)
        .await
        .is_err()
        .then_some(LinkEnd::BridgeStopping)
}

/// A publish of the engine, for the other nodes. Publishing needs no routing state, so it
/// bypasses the hub; a full publish queue drops it (counted).
fn publish(context: &LinkContext, link_id: LinkId, event: &ChannelEvent) {
    let Some(publisher) = &context.publisher else {
        return; // a node alone: nobody to publish to
    };
    let payload = match encode_envelope(context.node_id, event) {
        Ok(payload) => payload,
        Err(err) => {
            tracing::debug!(link_id, "dropping unencodable publish: {err}");
            return;
        }
    };
    let redis_channel = redis_channel_name(&context.redis_prefix, &event.app_id, &event.channel);
    // A cache channel's event is also its last event, for every node.
    let cache =
        is_cache_channel(&event.channel).then(|| (cache_key(&redis_channel), event.frame.clone()));
    let outbound = Outbound {
        redis_channel,
        payload,
        cache,
    };
    if let Err(mpsc::error::TrySendError::Full(_)) = publisher.try_send(outbound) {
        context.counters.drops.publish_queue_full.add(1);
    }
}

/// The presence task's input for a member change or resync of `shard`'s engine.
fn presence_change(shard: u16, message: LinkMessage) -> Option<PresenceInput> {
    Some(match message {
        LinkMessage::MemberJoin(channel, member) => PresenceInput::Join {
            shard,
            tracked: Tracked::Member,
            channel,
            member,
        },
        LinkMessage::MemberLeave(channel, user_id) => PresenceInput::Leave {
            shard,
            tracked: Tracked::Member,
            channel,
            user_id,
        },
        LinkMessage::MembersResync(channel, members) => PresenceInput::Resync {
            shard,
            channel,
            members,
        },
        LinkMessage::ResyncDone => PresenceInput::ResyncDone { shard },
        _ => return None,
    })
}

/// A channels question of the engine, for the other nodes (answered at once, empty, on a node
/// alone; by the engine's own timeout if it cannot be asked now).
fn channels_query(
    context: &LinkContext,
    writer: &LinkWriter,
    query_id: u32,
    app_id: String,
    filter: ChannelFilter,
) {
    let Some(queries) = &context.queries else {
        let answer = LinkMessage::ChannelsAnswer {
            query_id,
            channels: Vec::new(),
        };
        let _ = writer.try_send(answer);
        return;
    };
    let ask = QueryInput::Ask {
        query_id,
        app_id,
        filter,
        reply: writer.clone(),
    };
    let _ = queries.try_send(ask);
}

/// A webhook event from the engine. With several nodes, the node's occupancy of a channel is
/// state that the presence task turns into the cluster's (one pseudo-member per node and
/// shard); everything else, and everything of a node alone, goes on as an event.
async fn hook(context: &LinkContext, link: LinkOf, event: HookEvent) -> Option<LinkEnd> {
    let shard = link.shard;
    if event.kind == WebhookEventType::SubscriptionCount {
        shard_count(context, link, event);
        return None;
    }
    let occupancy = match event.kind {
        WebhookEventType::ChannelOccupied => Some(true),
        WebhookEventType::ChannelVacated => Some(false),
        _ => None,
    };
    if let (Some(held), true, Some(_)) = (occupancy, link.cluster, &context.presence) {
        let channel = PresenceChannel {
            app_id: event.app_id,
            channel: event.channel,
        };
        let input = if held {
            PresenceInput::Join {
                shard,
                tracked: Tracked::Occupancy,
                channel,
                member: occupancy_member(),
            }
        } else {
            PresenceInput::Leave {
                shard,
                tracked: Tracked::Occupancy,
                channel,
                user_id: occupancy_member().user_id,
            }
        };
        return presence(context, input).await;
    }
    if let Err(InboxRefused::Full) = context.webhooks.try_send(WebhookInput::Event(event)) {
        add(&context.counters.webhooks.events_dropped_queue_full, 1);
    }
    None
}

/// A shard's own count of a channel (`subscription_count` state, not yet an event): summed over
/// the node's shards by the count task, which makes the event. TODO(cluster): with several
/// nodes the node totals are to be summed through Redis; see `cluster::count_task`.
fn shard_count(context: &LinkContext, link: LinkOf, event: HookEvent) {
    #[derive(serde::Deserialize)]
    struct CountOf {
        subscription_count: u64,
    }
    let Ok(CountOf {
        subscription_count: count,
    }) = serde_json::from_slice(&event.body)
    else {
        tracing::debug!(
            link_id = link.link_id,
            "ignoring a subscription count without a count"
        );
        return;
    };
    let input = CountInput::Shard {
        shard: link.shard,
        link_id: link.link_id,
        cluster: link.cluster,
        app_id: event.app_id,
        channel: event.channel,
        count,
    };
    if let Err(mpsc::error::TrySendError::Full(_)) = context.subscription_counts.try_send(input) {
        add(&context.counters.webhooks.events_dropped_queue_full, 1);
    }
}

/// A server-to-user event or terminate, or an associations document `PUT /associations`
/// accepted, for the other nodes: published on the prefix's user command channel, which every
/// bridge listens on.
fn user_command(context: &LinkContext, link_id: LinkId, message: &LinkMessage) {
    let Some(publisher) = &context.publisher else {
        return; // a node alone: there are no other nodes
    };
    match encode_user_command(context.node_id, message) {
        Ok(payload) => {
            let outbound = Outbound {
                redis_channel: user_command_channel(&context.redis_prefix),
                payload,
                cache: None,
            };
            if let Err(mpsc::error::TrySendError::Full(_)) = publisher.try_send(outbound) {
                context.counters.drops.publish_queue_full.add(1);
            }
        }
        Err(err) => tracing::debug!(link_id, "dropping unencodable user command: {err}"),
    }
}

/// A channel whose last event is kept (`cache-`, `private-cache-`, …).
fn is_cache_channel(channel: &str) -> bool {
    ringcast_core::pusher::channel::classify(channel, link::NAME_BYTES_MAX)
        .is_ok_and(|class| class.cache)
}

/// Hands a question to the presence task. It must be answered, so it waits for room rather than
/// being dropped; `Some` ends the link (no Redis: `without_redis` names the message).
async fn ask_presence(
    context: &LinkContext,
    query: PresenceInput,
    without_redis: &'static str,
) -> Option<LinkEnd> {
    let Some(presence) = &context.presence else {
        return Some(LinkEnd::Unexpected(without_redis));
    };
    presence
        .send(query)
        .await
        .err()
        .map(|_| LinkEnd::BridgeStopping)
}

/// Hands a presence change to the presence task. A full queue makes the link reader wait for
/// room: a change must not be lost, and while the presence task is behind (Redis slow) this
/// shard's link waits with it (its engine bounds what it queues meanwhile). `Some` ends the
/// link (the bridge is stopping).
async fn presence(context: &LinkContext, input: PresenceInput) -> Option<LinkEnd> {
    let presence = context.presence.as_ref()?; // a node alone keeps its presence itself
    presence
        .send(input)
        .await
        .err()
        .map(|_| LinkEnd::BridgeStopping)
}

/// The next complete message, reading as needed. The buffer stays bounded because `decode`
/// refuses any frame announced over `FRAME_BYTES_MAX`.
async fn next_message(
    reader: &mut OwnedReadHalf,
    buffer: &mut BytesMut,
) -> Result<LinkMessage, LinkEnd> {
    loop {
        match link::decode(buffer) {
            Ok(Some(message)) => return Ok(message),
            Ok(None) => {}
            Err(err) => return Err(LinkEnd::Corrupt(err)),
        }
        buffer.reserve(LINK_READ_CHUNK_BYTES);
        match reader.read_buf(buffer).await {
            Ok(0) => return Err(LinkEnd::PeerClosed),
            Ok(_) => {}
            Err(err) => return Err(LinkEnd::Io(err)),
        }
    }
}

/// Writes queued messages until the queue closes or the peer goes away: everything available
/// is encoded into one buffer and written with one `write_all`.
async fn write_link(
    mut writer: OwnedWriteHalf,
    mut queue: mpsc::Receiver<LinkMessage>,
    link_id: LinkId,
) {
    let mut batch = BytesMut::new();
    while let Some(first) = queue.recv().await {
        batch.clear();
        encode_into(&first, &mut batch, link_id);
        while batch.len() < LINK_WRITE_BATCH_BYTES_MAX {
            match queue.try_recv() {
                Ok(message) => encode_into(&message, &mut batch, link_id),
                Err(_) => break,
            }
        }
        if let Err(err) = writer.write_all(&batch).await {
            tracing::debug!(link_id, "link write failed: {err}");
            return;
        }
        // A burst of large frames should not pin its buffer for the link's lifetime.
        if batch.capacity() > LINK_WRITE_BATCH_BYTES_MAX * 2 {
            batch = BytesMut::new();
        }
    }
}

fn encode_into(message: &LinkMessage, batch: &mut BytesMut, link_id: LinkId) {
    // Only over-long fields fail, and everything sent was decoded from a link with the same
    // bounds; skipping keeps the stream well-formed regardless.
    if let Err(err) = link::encode(message, batch) {
        tracing::warn!(link_id, "dropping unencodable message: {err}");
    }
}
