//! The link's messages as data: the protocol [`VERSION`] that `Hello` and `Welcome` carry,
//! [`LinkMessage`], every message of the protocol, and the structs its variants carry (events,
//! presence members, auth requests, channels questions, the bridge's counters). How they go on
//! the wire is `codec`'s business.

use bytes::Bytes;

use crate::app::WebhookEventType;

/// Protocol version; both ends must speak the same one (a bridge run by hand from another
/// release is refused at `Hello`, not misread). 3: the `subscription_count` hook kind. 4: a
/// channel event may carry a Socket.IO event after its frame. 5: channel functions
/// (`FunctionRequest`, `FunctionResult`, `Associations`) and their counters in `Stats`. 6: a
/// channel event may carry the sender id of a channels JSON publish after its frame. 7:
/// WebSocket-over-HTTP (`SlipCall`, `SlipAnswer`, `SlipCommands`) and its counters in `Stats`.
pub const VERSION: u16 = 7;

/// One event on its way between nodes: the encoded WebSocket frame that every Pusher subscriber
/// receives, byte for byte, the socket that must not receive it, and, for an event a Socket.IO
/// client or the Socket.IO dialect published, what a Socket.IO subscriber receives (a Pusher
/// event's other framings are derived from its frame where they are needed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelEvent {
    /// The app's id as configured (`app_id`), not a shard-local index.
    pub app_id: String,
    /// Channel name.
    pub channel: String,
    /// Socket id excluded from delivery (the publisher's own connection); empty for none.
    pub except_socket_id: String,
    /// The complete server-to-client WebSocket frame (unmasked text frame).
    pub frame: Bytes,
    /// For an event published in another dialect, what the other nodes need to frame it as
    /// this one does. On the wire it follows the frame and is absent otherwise, so a Pusher
    /// event's bytes are those of version 3.
    pub part: Option<DialectPart>,
}

/// What an event published in a dialect other than Pusher carries besides its Pusher frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DialectPart {
    /// Published in the Socket.IO dialect: what a Socket.IO subscriber receives.
    SocketIo(SocketIoEvent),
    /// A channels JSON `publish`: the publisher's sender id (the data is the frame's).
    ChannelsJson(String),
    /// A WebSocket-over-HTTP `PUBLISH_TEXT` (the text is the frame's data).
    SlipText,
}

/// A Socket.IO event `[event, args]` as a Socket.IO subscriber receives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SocketIoEvent {
    /// `message`, `presence` or `status`.
    pub event: String,
    /// The argument's JSON text.
    pub args_json: Bytes,
}

/// The bridge's own counters, sent to every link once a second so that the engine's `/metrics`
/// shows the whole node (the bridge has no HTTP endpoint of its own).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BridgeStats {
    /// The bridge currently has a working Redis pub/sub connection.
    pub redis_connected: bool,
    /// Times the bridge lost Redis and connected again.
    pub redis_reconnects: u64,
    /// Publishes sent to Redis for the other nodes.
    pub publishes_relayed: u64,
    /// Publishes the bridge dropped (its queue full or Redis failing).
    pub publishes_dropped: u64,
    /// Messages received from Redis (other nodes' publishes).
    pub messages_received: u64,
    /// Deliveries to engine shards dropped because a link's queue was full.
    pub deliveries_dropped: u64,
    /// Publishes waiting for Redis right now.
    pub publish_queue_depth: u32,
    /// Engine shards linked right now.
    pub links: u16,
    /// Webhook events the receivers accepted (2xx).
    pub webhook_events_delivered: u64,
    /// Webhook requests that failed (non-2xx, connect error, timeout); each retry counts.
    pub webhook_requests_failed: u64,
    /// Webhook events given up after retrying for the whole retry window.
    pub webhook_events_given_up: u64,
    /// Webhook events dropped because the queue was full.
    pub webhook_events_dropped: u64,
    /// Webhook events waiting right now (delayed, queued, in flight or awaiting a retry).
    pub webhook_events_pending: u64,
    /// Offloaded authorizations the endpoint granted.
    pub auth_granted: u64,
    /// Offloaded authorizations the endpoint refused (or answered unusably).
    pub auth_refused: u64,
    /// Offloaded authorizations the endpoint did not answer (timeout, connect error).
    pub auth_failed: u64,
    /// Offloaded authorizations refused by the bridge without asking (bounds reached).
    pub auth_shed: u64,
    /// Channel-function pipelines that ran to the end.
    pub function_pipelines_done: u64,
    /// Pipelines that failed (a function's error, timeout or unusable answer).
    pub function_pipelines_failed: u64,
    /// Pipelines refused by the bridge without running (bounds reached).
    pub function_pipelines_shed: u64,
    /// WebSocket-over-HTTP event requests the backend answered (any status).
    pub slip_calls_answered: u64,
    /// Event requests that got no answer (timeout, connect error, response too large).
    pub slip_calls_failed: u64,
    /// Event requests refused by the bridge without calling (bounds reached, link gone).
    pub slip_calls_shed: u64,
}

/// One socket event for an app's backend (WebSocket-over-HTTP): the bridge POSTs `body` to
/// `url` with a fresh token signed with `secret`, after the connection's earlier calls.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlipCall {
    /// Echoed in the answer.
    pub call_id: u32,
    /// App id.
    pub app_id: String,
    /// The connection (its calls run one at a time, in order).
    pub connection_id: String,
    /// The app's target URL.
    pub url: String,
    /// The app's SLIP secret, to sign the request's token with.
    pub secret: String,
    /// The request body (`{"connectionId","metadata","events"}`).
    pub body: Bytes,
}

/// How a [`SlipCall`] ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SlipOutcome {
    /// The backend answered: its status and body (whatever they are; the engine judges them).
    Answered {
        /// HTTP status.
        status: u16,
        /// Response body.
        body: Bytes,
    },
    /// No answer; why.
    Failed(String),
}

/// A message to run through a channel's functions (channel functions): the bridge POSTs
/// `message` to the first URL, each 2xx answer to the next, and answers the last one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FunctionRequest {
    /// Echoed in the answer.
    pub request_id: u32,
    /// App id (the bridge bounds concurrent calls per app).
    pub app_id: String,
    /// Channel name (the bridge keeps the order of one channel's messages).
    pub channel: String,
    /// The message's JSON text, the first function's input.
    pub message: Bytes,
    /// The functions' endpoints, in pipeline order (`name`, `url`).
    pub functions: Vec<(String, String)>,
}

/// How a [`FunctionRequest`] ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FunctionOutcome {
    /// Every function answered; the last answer's JSON text (empty: keep the input).
    Done(Bytes),
    /// A function failed or the bridge could not run the pipeline: why, naming the function.
    Failed(String),
}

/// A subscription to authorize at the app's endpoint (auth offload): the bridge POSTs the form
/// pusher-js would send (`socket_id`, `channel_name`, plus `form`) with `headers`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthRequest {
    /// Echoed in the answer.
    pub request_id: u32,
    /// App id (the bridge bounds concurrent requests per app).
    pub app_id: String,
    /// The app's `app_channel_authorization_url`.
    pub url: String,
    /// The subscribing connection.
    pub socket_id: String,
    /// The channel to authorize.
    pub channel: String,
    /// Headers of the connection's upgrade request to forward (name, value).
    pub headers: Vec<(String, String)>,
    /// More form fields, URL-encoded (`a=1&b=2`): the connection's query, as configured.
    pub form: String,
}

/// The endpoint's answer to an [`AuthRequest`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthOutcome {
    /// 2xx with an `auth` (and, for presence, `channel_data`); the engine still checks it.
    Granted {
        /// `auth` as the endpoint signed it.
        auth: String,
        /// `channel_data`, empty when absent.
        channel_data: String,
    },
    /// Refused or failed: the status to report (the endpoint's, or 0 when it gave none).
    Refused {
        /// HTTP status of the endpoint, 0 when it did not answer usefully.
        status: u16,
        /// Why, for the subscriber's `pusher:subscription_error`.
        reason: String,
    },
}

/// Which channels a channels query asks about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChannelFilter {
    /// Every occupied channel whose name starts with this (empty: all).
    Prefix(String),
    /// These channels, occupied or not.
    Names(Vec<String>),
}

/// One channel's counts in a channels answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelCount {
    /// Channel name.
    pub name: String,
    /// Subscriptions (connections).
    pub subscriptions: u64,
    /// Presence users, when known to the answering side.
    pub users: Option<u64>,
}

/// What a user command does on the other nodes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UserAction {
    /// Deliver this frame to the user's signed-in connections (server-to-user event).
    Deliver(Bytes),
    /// Close the user's connections (`terminate_connections`).
    Terminate,
}

/// An event for the app's webhooks that only the node it happened on sees (a client event, a
/// cache miss): the bridge filters, batches and sends it. A `subscription_count` from the engine
/// is not an event yet: its body carries the sending shard's own count of the channel, which
/// the bridge sums over the shards (and nodes) before it makes the event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HookEvent {
    /// App id.
    pub app_id: String,
    /// Channel name (for the webhooks' channel filters).
    pub channel: String,
    /// Which kind of event (for the webhooks' event-type filters).
    pub kind: WebhookEventType,
    /// The event object as it goes into the webhook body's `events` array (JSON text).
    pub body: Bytes,
}

/// One presence member: the user id and its `user_info` JSON text (may be empty).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// `user_id`.
    pub user_id: String,
    /// `user_info` as JSON text, exactly as the client's channel_data carried it.
    pub user_info: Bytes,
}

/// A presence channel of an app.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PresenceChannel {
    /// App id.
    pub app_id: String,
    /// Channel name (`presence-…`).
    pub channel: String,
}

/// Every message of the link protocol.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinkMessage {
    /// Engine → bridge, first frame: who is speaking.
    Hello {
        /// [`VERSION`] of the engine.
        version: u16,
        /// Index of the shard that owns this link.
        shard: u16,
        /// Shards in the engine process.
        shard_count: u16,
        /// The node is one of several (`--adapter-driver redis`): channel occupancy and
        /// presence are cluster state; else the node is alone and its events are final.
        cluster: bool,
    },
    /// Bridge → engine, answer to `Hello`.
    Welcome {
        /// [`VERSION`] of the bridge.
        version: u16,
        /// The node's id on the cluster (tags its Redis messages).
        node_id: u64,
    },
    /// Engine → bridge: the shard has local subscribers for a channel.
    Subscribe {
        /// App id.
        app_id: String,
        /// Channel name.
        channel: String,
        /// Echoed in `Subscribed` so the shard can ignore answers to older announcements.
        seq: u32,
    },
    /// Bridge → engine: the node now receives the channel's remote publishes.
    Subscribed {
        /// App id.
        app_id: String,
        /// Channel name.
        channel: String,
        /// The `seq` of the `Subscribe` answered.
        seq: u32,
    },
    /// Engine → bridge: the shard's last local subscriber of a channel left.
    Unsubscribe {
        /// App id.
        app_id: String,
        /// Channel name.
        channel: String,
    },
    /// Engine → bridge: an event published on this node, for the other nodes.
    Publish(ChannelEvent),
    /// Bridge → engine: an event published on another node, for this shard's subscribers.
    Deliver(ChannelEvent),
    /// Bridge → engine, once a second: the bridge's counters.
    Stats(BridgeStats),
    /// Engine → bridge (the channel's owner shard): a user's first connection on this node
    /// joined the presence channel.
    MemberJoin(PresenceChannel, Member),
    /// Engine → bridge (owner shard): a user's last connection on this node left.
    MemberLeave(PresenceChannel, String),
    /// Engine → bridge: the cluster-wide members of a channel, answered by `MembersSnapshot`
    /// with the same `query_id`.
    MembersQuery(PresenceChannel, u32),
    /// Engine → bridge after `Hello` (owner shard): every member this shard holds for a
    /// channel on this node, replacing what the cluster had for this node and shard.
    MembersResync(PresenceChannel, Vec<Member>),
    /// Engine → bridge: the shard has sent all its `MembersResync` messages; channels it did
    /// not mention have no members of this node and shard any more.
    ResyncDone,
    /// Bridge → engine: answer to `MembersQuery`.
    MembersSnapshot(PresenceChannel, u32, Vec<Member>),
    /// Bridge → engine (shards with local subscribers): a user's first connection in the
    /// cluster joined; deliver `pusher_internal:member_added`.
    MemberAdded(PresenceChannel, Member),
    /// Bridge → engine: a user's last connection in the cluster left (or its node died);
    /// deliver `pusher_internal:member_removed`.
    MemberRemoved(PresenceChannel, String),
    /// Engine → bridge after `Hello`: the apps' webhook settings (JSON text, see
    /// `crate::webhook_config`), replacing what the bridge had.
    WebhookConfig(Bytes),
    /// Engine → bridge: a webhook event only this node sees.
    Hook(HookEvent),
    /// Engine → bridge: authorize a subscription at the app's endpoint.
    AuthRequest(AuthRequest),
    /// Bridge → engine: the answer to the `AuthRequest` with this id.
    AuthResponse {
        /// The request's id.
        request_id: u32,
        /// What the endpoint said.
        outcome: AuthOutcome,
    },
    /// Engine → bridge (several nodes): the cluster's last event of a cache channel, answered
    /// by `CacheAnswer` with the same `query_id`.
    CacheQuery {
        /// App id.
        app_id: String,
        /// Channel name (`cache-…`).
        channel: String,
        /// Echoed in the answer.
        query_id: u32,
    },
    /// Bridge → engine: the last event's frame, empty when there is none.
    CacheAnswer {
        /// The query's id.
        query_id: u32,
        /// The frame, or empty.
        frame: Bytes,
    },
    /// Both ways (several nodes): engine → bridge, "what do the other nodes have" (for `GET
    /// /channels…`); bridge → engine, "what does this node have" (asked by another node).
    /// Answered by `ChannelsAnswer` with the same `query_id`.
    ChannelsQuery {
        /// Echoed in the answer.
        query_id: u32,
        /// App id.
        app_id: String,
        /// Which channels.
        filter: ChannelFilter,
    },
    /// Both ways: the answer to a `ChannelsQuery` (the other nodes' totals with the cluster's
    /// presence user counts, or this node's counts).
    ChannelsAnswer {
        /// The query's id.
        query_id: u32,
        /// The channels.
        channels: Vec<ChannelCount>,
    },
    /// Both ways (several nodes), once a second: engine → bridge, this node's open connections
    /// per app; bridge → engine, the other nodes' (for `app_max_connections` cluster-wide).
    ConnectionCounts(Vec<(String, u64)>),
    /// Engine → bridge (the channel's owner shard): run a message through its functions.
    FunctionRequest(FunctionRequest),
    /// Bridge → engine: how the `FunctionRequest` with this id ended.
    FunctionResult {
        /// The request's id.
        request_id: u32,
        /// The pipeline's result.
        outcome: FunctionOutcome,
    },
    /// Both ways (several nodes): a channel-functions associations document (JSON text) that
    /// `PUT /associations` accepted — from the engine for the other nodes, from the bridge for
    /// this node's shards.
    Associations(Bytes),
    /// Engine → bridge: POST a socket event to the app's backend (WebSocket-over-HTTP).
    SlipCall(SlipCall),
    /// Bridge → engine: how the `SlipCall` with this id ended.
    SlipAnswer {
        /// The call's id.
        call_id: u32,
        /// The backend's answer, or why there is none.
        outcome: SlipOutcome,
    },
    /// Both ways (several nodes): WebSocket-over-HTTP commands (`{"events":[…]}`) for
    /// connections this node does not hold and for every node's channel subscribers
    /// (`CLOSE_CHANNEL`) — from the engine for the other nodes, from the bridge for this node's
    /// shards.
    SlipCommands {
        /// App id.
        app_id: String,
        /// The commands' JSON text.
        commands: Bytes,
    },
    /// Both ways (several nodes): something for a user's connections on every node — from the
    /// engine for the other nodes, from the bridge for this node's shards.
    UserCommand {
        /// App id.
        app_id: String,
        /// The user.
        user_id: String,
        /// What to do.
        action: UserAction,
    },
}
