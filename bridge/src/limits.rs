//! Every bound of the bridge process, each with its value and what it stops: queues between
//! tasks, Redis deadlines, batch sizes, the tables kept per node, outbound HTTP, channel
//! functions. A full queue drops (counted) rather than waits, except where a comment says the
//! sender waits. Bounds the engine shares (the shard count, the leave delay, the cache TTL, the
//! reconnect backoff, a function call's deadline) are in `ringcast_core::limits` and used from
//! there. Units come last in every name; relations between bounds are checked at compile time
//! at the end of this file.

use ringcast_core::limits as core;

// ---- Queues between the bridge's tasks (capacity of each tokio mpsc) ----

/// The hub task's inbox (link events, Redis messages, stats). Full: the message is dropped and
/// counted (`hub_queue_full`); an engine shard re-announces its channels on its next link.
pub const HUB_QUEUE_MESSAGES_MAX: usize = 65_536;
/// One link's writer queue toward its engine shard. Full: deliveries to that shard are dropped
/// (counted), so one slow shard never holds up the node.
pub const LINK_QUEUE_MESSAGES_MAX: usize = 65_536;
/// Commands for the Redis subscriber. The hub waits here (the subscriber never waits on the hub).
pub const SUBSCRIBER_QUEUE_COMMANDS_MAX: usize = 65_536;
/// Pushes (messages mostly) from a Redis Cluster connection to the cluster subscriber. Full:
/// messages are dropped (counted).
pub const CLUSTER_PUSH_QUEUE_MESSAGES_MAX: usize = 65_536;
/// Messages waiting for the Redis publisher. Full: the publish is dropped (counted).
pub const PUBLISH_QUEUE_MESSAGES_MAX: usize = 65_536;
/// Presence messages waiting for the presence task. Full: the link reader waits for room
/// (presence changes are never dropped; the engine's link queue then fills and relinks).
pub const PRESENCE_QUEUE_MESSAGES_MAX: usize = 65_536;
/// While a presence change did not reach Redis, how often Redis is probed so that the shards
/// that lost changes restate them soon after it is back: 1 s.
pub const PRESENCE_REPAIR_PROBE_INTERVAL_MS: u64 = 1_000;
/// How long Redis must answer again before the shards that lost presence changes restate them:
/// 7 s, longer than a subscriber's longest reconnect delay, so every node is listening on its
/// channels again when the restated member events are published.
pub const PRESENCE_REPAIR_GRACE_MS: u64 = 7_000;
/// Shard subscription counts waiting for the count task.
pub const COUNT_QUEUE_MESSAGES_MAX: usize = 65_536;
/// Webhook settings and events waiting for the webhook task. Full: the event is dropped
/// (counted in `events_dropped_queue_full`).
pub const WEBHOOK_QUEUE_MESSAGES_MAX: usize = 65_536;
/// Bytes of events (bodies and channel names) waiting for the webhook task, or for the Redis
/// queue's producer while Redis is away: client events are up to a link frame each, so the
/// message count alone would allow gigabytes. Full: the event is dropped (counted in
/// `events_dropped_queue_full`).
pub const WEBHOOK_QUEUE_BYTES_MAX: usize = 64 * 1024 * 1024;
/// Finished webhook batches waiting for the sender. Full: the batch is dropped (counted).
pub const WEBHOOK_BATCH_QUEUE_BATCHES_MAX: usize = 16_384;
/// Channels questions and answers waiting for the query task. Full: the question is dropped;
/// the asker's own wait answers it.
pub const QUERY_QUEUE_MESSAGES_MAX: usize = 4_096;
/// Authorizations waiting for the auth task. A shard offers at most a burst of subscribes per
/// event-loop turn; past this the bridge is far behind and answers "busy" instead of queueing.
pub const AUTH_QUEUE_REQUESTS_MAX: usize = 16_384;
/// Channel-function requests waiting for the functions task, which sorts them into their
/// channels' queues at once. Full: the request is answered "too many pipelines queued on this
/// node" at once (counted in `function_pipelines_shed`).
pub const FUNCTION_QUEUE_REQUESTS_MAX: usize = 16_384;
/// WebSocket-over-HTTP calls waiting for the SLIP task, which sorts them into their
/// connections' queues at once. Full: the call is answered as failed at once (counted in
/// `slip_calls_shed`).
pub const SLIP_QUEUE_REQUESTS_MAX: usize = 16_384;

// ---- The links to the engine's shards ----

/// Longest wait for a new link's Hello; a silent peer does not hold a connection forever.
pub const LINK_HELLO_TIMEOUT_MS: u64 = 10_000;
/// Free space ensured in a link's read buffer before each read.
pub const LINK_READ_CHUNK_BYTES: usize = 64 * 1024;
/// A link writer's batch stops growing at this size (one frame can be 2 MiB).
pub const LINK_WRITE_BATCH_BYTES_MAX: usize = 1024 * 1024;
/// Pause after a failed accept (e.g. out of file descriptors) so the loop does not spin.
pub const LINK_ACCEPT_RETRY_DELAY_MS: u64 = 100;
/// Time between two stats messages to the shards.
pub const STATS_INTERVAL_MS: u64 = 1_000;

// ---- Redis: deadlines (a silent Redis must never hold a task) ----

/// Opening a connection for a state task, the publisher or a webhook queue task.
pub const REDIS_CONNECT_TIMEOUT_MS: u64 = 2_000;
/// Opening the subscriber's connection, its re-subscriptions included.
pub const REDIS_SUBSCRIBER_CONNECT_TIMEOUT_MS: u64 = 3_000;
/// One command or Lua script of a state task (presence, liveness, counts, queries, webhook
/// queue); generous so that a busy machine does not make a healthy Redis look dead (the
/// library's default is 500 ms).
pub const REDIS_COMMAND_TIMEOUT_MS: u64 = 3_000;
/// One (S)SUBSCRIBE / (S)UNSUBSCRIBE; past it the connection is presumed dead, so an engine
/// shard never waits long for its acknowledgement.
pub const REDIS_SUBSCRIBE_TIMEOUT_MS: u64 = 2_000;
/// One publish pipeline's answers (up to [`PUBLISH_BATCH_BYTES_MAX`] of payloads).
pub const REDIS_PUBLISH_TIMEOUT_MS: u64 = 5_000;
/// Longest wait for the node's own presence cleanup on shutdown; past it the other nodes'
/// reapers do it once the heartbeat expires.
pub const SHUTDOWN_REAP_TIMEOUT_MS: u64 = 3_000;

// ---- Redis: batches and subscriptions ----

/// Most PUBLISH commands in one pipeline.
pub const PUBLISH_BATCH_MESSAGES_MAX: usize = 1_024;
/// A publish batch stops growing once its payloads reach this size (one frame can be 2 MiB).
pub const PUBLISH_BATCH_BYTES_MAX: usize = 4 * 1024 * 1024;
/// Channels per SUBSCRIBE when re-subscribing after a reconnect, to keep commands modest.
pub const RESUBSCRIBE_CHANNELS_PER_COMMAND_MAX: usize = 1_000;
/// On a Redis Cluster, the wait after a disconnection before subscribing again: the library
/// reconnects the node and refreshes the slot map first.
pub const CLUSTER_RESUBSCRIBE_DELAY_MS: u64 = 1_000;
/// On a Redis Cluster, channels subscribed at once when catching up (one command each).
pub const CLUSTER_RESUBSCRIBE_CONCURRENT_MAX: usize = 64;
/// On a Redis Cluster, channels taken per catch-up round, so that the hub's commands interleave.
pub const CLUSTER_RESUBSCRIBE_ROUND_CHANNELS_MAX: usize = 1_024;
/// Most decimal digits of a field length in a member-event payload (bounds the parse; a
/// `user_info` is at most 2 MiB).
pub const ENVELOPE_FIELD_LENGTH_DIGITS_MAX: usize = 8;

// ---- Cluster state ----

/// `--presence-ttl-ms`: lifetime of a node's heartbeat; a node silent this long is presumed
/// dead and its presence members are removed.
pub const PRESENCE_TTL_MS_DEFAULT: u64 = 10_000;
/// Shortest `--presence-ttl-ms` (the heartbeat is refreshed every third of it).
pub const PRESENCE_TTL_MS_MIN: u64 = 300;
/// Longest `--presence-ttl-ms`: an hour of members of a dead node is already a long outage.
pub const PRESENCE_TTL_MS_MAX: u64 = 3_600_000;
/// Room kept in a presence snapshot frame for its names and counts.
pub const PRESENCE_SNAPSHOT_FRAME_MARGIN_BYTES: usize = 4 * 1024;
/// How often the node set is checked for dead nodes.
pub const REAP_INTERVAL_MS: u64 = 1_000;
/// Lifetime of the lock that lets one bridge reap a dead node.
pub const REAP_LOCK_MS: u64 = 5_000;
/// Most nodes looked at per reaping round (the node set is small; this bounds a corrupt one).
pub const REAP_NODES_PER_ROUND_MAX: usize = 1_024;
/// Shortest time between two `subscription_count` events of one channel.
pub const COUNT_INTERVAL_MS: u64 = 1_000;
/// Channels whose subscription count is kept at once; reports for further channels are
/// refused (counted) until some channel's count is back to 0.
pub const COUNTED_CHANNELS_MAX: usize = 1_000_000;
/// How often the nodes' connection counts are exchanged (`app_max_connections`).
pub const CONNECTIONS_EXCHANGE_INTERVAL_MS: u64 = 1_000;
/// Channels questions of this node's engine waiting for the other nodes.
pub const QUERY_ASKS_MAX: usize = 4_096;
/// Channels questions of other nodes waiting for this node's engine.
pub const QUERY_FORWARDED_MAX: usize = 4_096;
/// Longest wait for the other nodes' answers to a channels question.
pub const QUERY_ANSWER_WAIT_MS: u64 = 1_000;

// ---- Webhooks ----

/// With batching on, events for one webhook are collected this long before a request.
pub const WEBHOOK_BATCH_WINDOW_MS: u64 = 50;
/// With batching on, a request carries at most this many events.
pub const WEBHOOK_BATCH_EVENTS_MAX: usize = 100;
/// Leave events held for their delay at once; past it they are sent without the delay rather
/// than dropped.
pub const WEBHOOK_DELAYED_EVENTS_MAX: usize = 100_000;
/// Batches in flight or waiting for a retry; at this count the sender stops taking from its
/// queue, so a long receiver outage fills the queue and producers start dropping.
pub const WEBHOOK_PENDING_BATCHES_MAX: usize = 100_000;
/// First retry of a failed delivery; the delay doubles (with jitter) from here.
pub const WEBHOOK_RETRY_DELAY_MS_MIN: u64 = 1_000;
/// Longest delay between two attempts of one batch.
pub const WEBHOOK_RETRY_DELAY_MS_MAX: u64 = 60_000;
/// A batch not delivered this long after its first attempt is given up (counted).
pub const WEBHOOK_GIVE_UP_MS: u64 = 300_000;
/// One webhook request, from connecting to the last byte of the answer.
pub const WEBHOOK_REQUEST_TIMEOUT_MS: u64 = 10_000;
/// Connection setup (TCP and TLS) to a webhook receiver.
pub const WEBHOOK_CONNECT_TIMEOUT_MS: u64 = 3_000;
/// Longest answer body of a webhook receiver that is read.
pub const WEBHOOK_RESPONSE_BYTES_MAX: usize = 64 * 1024;
/// Bytes of webhook events in batches the sender holds (queued, in flight, awaiting a retry
/// for up to [`WEBHOOK_GIVE_UP_MS`]): while receivers are down, events pile up here. Past it a
/// new batch is dropped (counted in `events_dropped_queue_full`; with the Redis queue its
/// entries stay in Redis and are delivered later).
pub const WEBHOOK_BACKLOG_BYTES_MAX: usize = 256 * 1024 * 1024;
/// Webhook requests open at once for one app.
pub const WEBHOOK_CONCURRENT_PER_APP_MAX: usize = 16;
/// Entries of the Redis webhook queue: a safety bound (approximate trimming drops the oldest
/// beyond it) far above what a receiver outage of the give-up window leaves.
pub const WEBHOOK_QUEUE_ENTRIES_MAX: u64 = 1_000_000;
/// Redis queue entries handed to the webhook task and not yet settled; the consumer waits at
/// this many.
pub const WEBHOOK_QUEUE_IN_FLIGHT_MAX: usize = 10_000;
/// While [`WEBHOOK_QUEUE_IN_FLIGHT_MAX`] entries are in flight, how often the consumer looks
/// again for room.
pub const WEBHOOK_IN_FLIGHT_POLL_MS: u64 = 50;
/// Events the Redis queue's producer keeps while Redis is away; past it they are dropped
/// (counted).
pub const WEBHOOK_PRODUCER_WAITING_EVENTS_MAX: usize = 65_536;
/// Most events queued by one pipeline of scripts.
pub const WEBHOOK_ENQUEUE_BATCH_EVENTS_MAX: usize = 256;
/// Redis queue entries read per command.
pub const WEBHOOK_READ_BATCH_ENTRIES_MAX: usize = 256;
/// Longest block of a Redis queue read waiting for new entries.
pub const WEBHOOK_READ_BLOCK_MS: u64 = 1_000;
/// A Redis queue entry idle this long at another consumer is taken over: past the give-up
/// window, its consumer is gone.
pub const WEBHOOK_CLAIM_IDLE_MS: u64 = 6 * 60 * 1_000;
/// How often idle entries of other consumers are looked for.
pub const WEBHOOK_CLAIM_INTERVAL_MS: u64 = 30_000;
/// Longest excerpt of a receiver's answer put in a log line.
pub const WEBHOOK_ANSWER_EXCERPT_BYTES_MAX: usize = 200;
/// How often the cluster's delayed leaves are checked.
pub const WEBHOOK_DUE_POLL_INTERVAL_MS: u64 = 250;
/// Most delayed leaves taken by one script run (the task runs again at once when it got that
/// many).
pub const WEBHOOK_DUE_BATCH_MAX: usize = 512;
/// Redis keys (apps' streams or delayed sets) named in one command: a node with more apps
/// with webhooks reads them in several commands, so no command grows without bound.
pub const WEBHOOK_STREAMS_PER_COMMAND_MAX: usize = 1_024;
/// How long an app stays listed in Redis as wanting webhooks after a bridge with its settings
/// last said so. While no bridge lists an app, the scripts keep no leaves and queue no events
/// for it: an app no node sends webhooks for leaves no state behind in Redis.
pub const WEBHOOK_APPS_TTL_MS: u64 = 10 * 60 * 1_000;
/// Longest the presence task waits at start for the bridge's first listing of its webhook apps
/// (one Redis round trip), so the first joins of a cold-started cluster make their webhooks;
/// with Redis away it goes on without.
pub const WEBHOOK_APPS_FIRST_LISTING_WAIT_MS: u64 = 2_000;
/// How often a bridge lists its apps again (and at once after every settings change).
pub const WEBHOOK_APPS_REFRESH_MS: u64 = 30_000;

// ---- Outbound HTTP and auth offload ----

/// Distinct keys (app ids) that get a concurrency semaphore of their own; past it, new keys
/// share one overflow semaphore. Bounds the map against an unbounded number of app ids.
pub const OUTBOUND_KEYS_MAX: usize = 10_000;
/// Idle keep-alive connections kept per host: enough for a busy receiver shared by a few apps,
/// without holding thousands of sockets open after a burst.
pub const OUTBOUND_IDLE_CONNECTIONS_PER_HOST_MAX: usize = 32;
/// Idle keep-alive connections are closed after this long (receivers often close at 60 s+).
pub const OUTBOUND_IDLE_CONNECTION_TIMEOUT_MS: u64 = 50_000;
/// First pause before retrying a failed connect: long enough for a restarting receiver's
/// listener to come back, short against the auth deadline.
pub const OUTBOUND_CONNECT_RETRY_PAUSE_MS_MIN: u64 = 50;
/// The connect retry pause doubles up to this.
pub const OUTBOUND_CONNECT_RETRY_PAUSE_MS_MAX: u64 = 1_000;
/// Authorizations of one app open at once; past it the app's further ones are refused with
/// 429 at once, so one app with a slow endpoint cannot hold every slot.
pub const AUTH_IN_FLIGHT_PER_APP_MAX: usize = 256;
/// Authorizations open at once over all apps (bounds the tasks and the per-app count map).
pub const AUTH_IN_FLIGHT_TOTAL_MAX: usize = 16_384;
/// Requests open at once to one app's auth endpoint; its other in-flight ones wait for these.
pub const AUTH_CONCURRENT_PER_APP_MAX: usize = 64;
/// Whole call to an auth endpoint, permit wait and connect retries included. pusher-js's own
/// auth request has no shorter deadline, and the engine times the subscription out anyway.
pub const AUTH_REQUEST_TIMEOUT_MS: u64 = 5_000;
/// Connection setup to an auth endpoint.
pub const AUTH_CONNECT_TIMEOUT_MS: u64 = 2_000;
/// An auth answer is a key, a signature and a presence member: small.
pub const AUTH_RESPONSE_BYTES_MAX: usize = 64 * 1024;
/// Longest excerpt of a refusing endpoint's body put in the reason (it reaches the browser).
pub const AUTH_REASON_EXCERPT_CHARS_MAX: usize = 200;

// ---- Channel functions (the per-call deadline is `ringcast_core`'s FUNCTION_CALL_TIMEOUT_MS) ----

/// Pipelines queued or running on the node, all channels together (each holds its message and
/// the asking link's handle). Past it a request is answered "too many pipelines queued on this
/// node" at once (counted in `function_pipelines_shed`).
pub const FUNCTION_PIPELINES_MAX: usize = 16_384;
/// Of those, the pipelines of one app: 4 096. Stops one app's flood of publishes to slow
/// functions from taking every slot of the node, so other apps' pipelines still run. Past it:
/// "too many pipelines queued for this app on this node", at once.
pub const FUNCTION_PIPELINES_PER_APP_MAX: usize = 4_096;
/// Bytes of the requests (message, names, URLs) of those pipelines: a message can be a link
/// frame, so the count alone would allow gigabytes. Past it: refused at once, as above.
pub const FUNCTION_PIPELINE_BYTES_MAX: usize = 64 * 1024 * 1024;
/// Pipelines of one channel waiting behind the one running (a channel's messages run one after
/// another, in arrival order). Past it the channel's next request is refused at once, so one
/// flooded channel with slow functions cannot take every slot of the node.
pub const FUNCTION_CHANNEL_QUEUE_MAX: usize = 1_024;
/// Longest a pipeline may take from the request's arrival, its wait in the channel's queue
/// included: 28 000 ms, so that its answer reaches the engine before the engine gives up (after
/// `PIPELINE_WAIT_MS_MAX`, 30 s; the rest is for the link queues). A pipeline not started by
/// then is refused without calling anything; a call still open then has timed out.
pub const FUNCTION_PIPELINE_DEADLINE_MS: u64 = 28_000;
/// Connection setup to a function's endpoint (connect retries fit in the call's deadline).
pub const FUNCTION_CONNECT_TIMEOUT_MS: u64 = 1_000;
/// Longest function answer that is read: it becomes the next function's input, or the message
/// the engine publishes.
pub const FUNCTION_RESPONSE_BYTES_MAX: usize = 1024 * 1024;
/// Requests open at once to one app's functions; the app's other calls wait for these (within
/// their own call deadline), so one app cannot hold every connection of the node.
pub const FUNCTION_CONCURRENT_PER_APP_MAX: usize = 16;

// ---- WebSocket-over-HTTP (the per-call timeout is `ringcast_core`'s SLIP_CALL_TIMEOUT_MS) ----

/// Calls queued or running on the node, all connections together: 65 536 (every shard's own
/// bound is 16 384). Past it a call fails at once (counted in `slip_calls_shed`).
pub const SLIP_CALLS_MAX: usize = 65_536;
/// Of those, one app's: 16 384. Stops one app's slow backend from taking every slot of the
/// node, so other apps' events still reach theirs.
pub const SLIP_CALLS_PER_APP_MAX: usize = 16_384;
/// Bytes of the calls' bodies: 64 MiB (a text event carries a client message of up to the
/// engine's message size); past it refused at once, as above.
pub const SLIP_CALL_BYTES_MAX: usize = 64 * 1024 * 1024;
/// Calls of one connection waiting behind the running one (a connection's events run one after
/// another, in order): 64, more than the engine lets one connection have in flight plus its
/// close, so a well-behaved engine never reaches it.
pub const SLIP_CONNECTION_QUEUE_MAX: usize = 64;
/// Connection setup to a backend (connect retries fit in the call's timeout).
pub const SLIP_CONNECT_TIMEOUT_MS: u64 = 1_000;
/// Longest backend answer that is read: 1 MiB; a longer one fails the call.
pub const SLIP_RESPONSE_BYTES_MAX: usize = 1024 * 1024;
/// Requests open at once to one app's backend: 64; the app's other calls wait for these
/// (within their own deadline), so one app cannot hold every connection of the node.
pub const SLIP_CONCURRENT_PER_APP_MAX: usize = 64;

// ---- Logging ----

/// Shortest gap between two warnings of one drop counter.
pub const DROP_WARNING_INTERVAL_MS: u64 = 1_000;

// ---- Relations between the bounds ----

// The subscriber answers (or gives up on) a SUBSCRIBE no later than the engine stops waiting
// for its acknowledgement.
const _: () = assert!(REDIS_SUBSCRIBE_TIMEOUT_MS <= core::LINK_ACK_TIMEOUT_MS);
// The heartbeat is refreshed every third of the TTL: a TTL shorter than a Redis command could
// expire while the refresh is merely slow.
const _: () = assert!(PRESENCE_TTL_MS_MIN <= PRESENCE_TTL_MS_DEFAULT);
const _: () = assert!(PRESENCE_TTL_MS_DEFAULT <= PRESENCE_TTL_MS_MAX);
const _: () = assert!(REAP_LOCK_MS > REAP_INTERVAL_MS);
// A cluster-wide leave waits the same delay as a node alone's, so one node or many make the
// same webhooks; the due poll must be much finer than that delay.
const _: () = assert!(WEBHOOK_DUE_POLL_INTERVAL_MS * 4 <= core::LEAVE_DELAY_MS);
// An app's listing outlives several refreshes: one slow or failed refresh never unlists it.
const _: () = assert!(WEBHOOK_APPS_REFRESH_MS * 4 <= WEBHOOK_APPS_TTL_MS);
// An entry is taken over only once its consumer would have given it up.
const _: () = assert!(WEBHOOK_CLAIM_IDLE_MS > WEBHOOK_GIVE_UP_MS);
const _: () = assert!(WEBHOOK_RETRY_DELAY_MS_MIN <= WEBHOOK_RETRY_DELAY_MS_MAX);
const _: () = assert!(WEBHOOK_RETRY_DELAY_MS_MAX < WEBHOOK_GIVE_UP_MS);
const _: () = assert!(WEBHOOK_CONNECT_TIMEOUT_MS < WEBHOOK_REQUEST_TIMEOUT_MS);
// A blocking read ends before the command deadline would call Redis dead.
const _: () = assert!(WEBHOOK_READ_BLOCK_MS < REDIS_COMMAND_TIMEOUT_MS);
// The producer keeps at least what the webhook task's queue holds while Redis is away.
const _: () = assert!(WEBHOOK_PRODUCER_WAITING_EVENTS_MAX >= WEBHOOK_QUEUE_MESSAGES_MAX);
// Auth: the per-app connections fit in the per-app in-flight count, which fits in the total;
// a connect attempt fits in the call's deadline, which ends before the engine's own.
const _: () = assert!(AUTH_CONCURRENT_PER_APP_MAX <= AUTH_IN_FLIGHT_PER_APP_MAX);
const _: () = assert!(AUTH_IN_FLIGHT_PER_APP_MAX <= AUTH_IN_FLIGHT_TOTAL_MAX);
const _: () = assert!(AUTH_CONNECT_TIMEOUT_MS < AUTH_REQUEST_TIMEOUT_MS);
const _: () = assert!(AUTH_REQUEST_TIMEOUT_MS < core::AUTH_WAIT_MS_MAX);
const _: () = assert!(OUTBOUND_CONNECT_RETRY_PAUSE_MS_MIN <= OUTBOUND_CONNECT_RETRY_PAUSE_MS_MAX);
const _: () = assert!(OUTBOUND_CONNECT_RETRY_PAUSE_MS_MAX < AUTH_REQUEST_TIMEOUT_MS);
// A channels question is answered by the other nodes before the engine stops waiting.
const _: () = assert!(QUERY_ANSWER_WAIT_MS < core::CHANNELS_WAIT_MS_MAX);
// A publish batch fits in one link frame's worth of payloads several times over.
const _: () = assert!(LINK_WRITE_BATCH_BYTES_MAX <= PUBLISH_BATCH_BYTES_MAX);
// WebSocket-over-HTTP: a connect attempt fits in a call; a connection's queue holds what the
// engine lets it have in flight; an answer goes back in one link frame; a call queued behind a
// connection's others still ends before the engine stops waiting.
const _: () = assert!(SLIP_CONNECT_TIMEOUT_MS < core::SLIP_CALL_TIMEOUT_MS);
const _: () = assert!(SLIP_CONNECTION_QUEUE_MAX > core::SLIP_CALLS_PER_CONNECTION_MAX);
const _: () = assert!(SLIP_CALLS_PER_APP_MAX < SLIP_CALLS_MAX);
const _: () = assert!(SLIP_RESPONSE_BYTES_MAX < core::LINK_FRAME_BYTES_MAX);
const _: () = assert!(core::LINK_FRAME_BYTES_MAX <= SLIP_CALL_BYTES_MAX);
const _: () = assert!(core::SLIP_CALL_DEADLINE_MS < core::SLIP_CALL_WAIT_MS_MAX);
// Restated member events must find every node's subscriber back on its channels.
const _: () = assert!(PRESENCE_REPAIR_GRACE_MS > ringcast_core::limits::RECONNECT_DELAY_MS_MAX);
// Channel functions: a connect attempt and a retry pause fit in one call; one channel's queue
// fits in the node's; a request as large as a link frame is always admissible; an answer goes
// back to the engine in one link frame; a pipeline started at once is never cut short by its
// deadline, which ends before the engine stops waiting.
const _: () = assert!(FUNCTION_CONNECT_TIMEOUT_MS < core::FUNCTION_CALL_TIMEOUT_MS);
const _: () = assert!(OUTBOUND_CONNECT_RETRY_PAUSE_MS_MAX < core::FUNCTION_CALL_TIMEOUT_MS);
const _: () = assert!(FUNCTION_CHANNEL_QUEUE_MAX < FUNCTION_PIPELINES_PER_APP_MAX);
const _: () = assert!(FUNCTION_PIPELINES_PER_APP_MAX < FUNCTION_PIPELINES_MAX);
const _: () = assert!(core::LINK_FRAME_BYTES_MAX <= FUNCTION_PIPELINE_BYTES_MAX);
const _: () = assert!(FUNCTION_RESPONSE_BYTES_MAX < core::LINK_FRAME_BYTES_MAX);
const _: () = assert!(
    core::FUNCTION_CALL_TIMEOUT_MS * core::FUNCTIONS_PER_PIPELINE_MAX as u64
        <= FUNCTION_PIPELINE_DEADLINE_MS
);
const _: () = assert!(FUNCTION_PIPELINE_DEADLINE_MS < core::PIPELINE_WAIT_MS_MAX);
