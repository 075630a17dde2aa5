//! The Prometheus text form of `/metrics` (exposition format 0.0.4): every shard's counters,
//! gauges and histograms labelled by shard, and the bridge's counters when there is a bridge.

use std::fmt::Write;

use crate::dialect::Dialect;
use crate::link::BridgeStats;

use super::stats::{ShardStats, StatsSnapshot, FRAMES_PER_WRITE_BUCKETS, HANDSHAKE_MS_BUCKETS};

/// The per-shard counters: metric name, help text and the counter.
type Counter = (&'static str, &'static str, fn(&ShardStats) -> u64);

/// Every per-shard counter, in the order `/metrics` lists them.
const COUNTERS: [Counter; 39] = [
    (
        "ringcast_connections_opened_total",
        "Sockets accepted.",
        |s| s.connections_opened,
    ),
    (
        "ringcast_connections_closed_total",
        "Sockets closed.",
        |s| s.connections_closed,
    ),
    (
        "ringcast_messages_in_total",
        "WebSocket messages received.",
        |s| s.messages_in,
    ),
    ("ringcast_bytes_in_total", "Bytes received.", |s| s.bytes_in),
    (
        "ringcast_frames_out_total",
        "Frames queued to sockets (deliveries included).",
        |s| s.frames_out,
    ),
    (
        "ringcast_deliveries_total",
        "Published events handed to subscribers (one per subscriber per event).",
        |s| s.deliveries,
    ),
    (
        "ringcast_bytes_out_total",
        "Bytes written to sockets.",
        |s| s.bytes_out,
    ),
    ("ringcast_socket_writes_total", "Socket writes.", |s| {
        s.socket_writes
    }),
    (
        "ringcast_slow_consumer_disconnects_total",
        "Connections closed (4100; 1008 on the echo path) because their outbound queue passed the cap.",
        |s| s.slow_consumer_disconnects,
    ),
    (
        "ringcast_origin_refused_total",
        "WebSocket upgrades refused with 403 because their Origin is not in the app's allow-list.",
        |s| s.origin_refusals,
    ),
    (
        "ringcast_cache_events_refused_total",
        "Cache channels' last events not kept because the shard's cache was at its bound in bytes.",
        |s| s.cache_events_refused,
    ),
    (
        "ringcast_channels_refused_total",
        "Subscribes refused with 4100 because the shard holds its most channels.",
        |s| s.channels_refused,
    ),
    (
        "ringcast_bridge_link_connects_total",
        "Times the shard's link to the bridge came up.",
        |s| s.link_connects,
    ),
    (
        "ringcast_bridge_link_relinks_total",
        "Times the link was ended so that a resync restates a change its full queue could not take.",
        |s| s.link_relinks,
    ),
    (
        "ringcast_bridge_link_peers_refused_total",
        "Link connections closed unused because the process at the bridge socket was not this engine's bridge.",
        |s| s.link_peers_refused,
    ),
    (
        "ringcast_webhook_events_out_total",
        "Webhook events handed to the bridge for sending.",
        |s| s.webhook_events_out,
    ),
    (
        "ringcast_auth_offload_requests_total",
        "Subscriptions without auth sent to the app's authorization endpoint.",
        |s| s.auth_offloaded,
    ),
    (
        "ringcast_auth_offload_refused_total",
        "Offloaded authorizations refused by the endpoint, failed or timed out.",
        |s| s.auth_offload_refused,
    ),
    (
        "ringcast_webhook_events_lost_total",
        "Webhook events dropped before the bridge got them (link queue full, or too many \
         waiting while the bridge was away).",
        |s| s.webhook_events_dropped,
    ),
    (
        "ringcast_bridge_publishes_out_total",
        "Local publishes handed to the bridge for other nodes.",
        |s| s.link_publishes_out,
    ),
    (
        "ringcast_bridge_publishes_dropped_total",
        "Local publishes other nodes did not get: bridge link down or its queue full.",
        |s| s.link_publishes_dropped,
    ),
    (
        "ringcast_bridge_events_in_total",
        "Events published on other nodes and received through the bridge.",
        |s| s.link_events_in,
    ),
    (
        "ringcast_tls_handshake_failures_total",
        "TLS connections dropped before their handshake ended: not TLS, a bad record, an alert, \
         or no handshake within TLS_HANDSHAKE_TIMEOUT_MS.",
        |s| s.tls_handshake_failures,
    ),
    (
        "ringcast_tls_record_errors_total",
        "TLS connections dropped after their handshake for a bad record or an alert.",
        |s| s.tls_record_errors,
    ),
    (
        "ringcast_socketio_sessions_total",
        "Socket.IO (Engine.IO) sessions opened on the Socket.IO mount.",
        |s| s.socketio_sessions_opened,
    ),
    (
        "ringcast_socketio_connects_refused_total",
        "Socket.IO namespace joins refused: unknown app, bad, expired or foreign token, origin, \
         or too many namespaces on the connection.",
        |s| s.socketio_connects_refused,
    ),
    (
        "ringcast_socketio_errors_total",
        "Socket.IO packets refused: malformed, binary, unknown events, namespaces not joined.",
        |s| s.socketio_errors,
    ),
    (
        "ringcast_socketio_ping_timeouts_total",
        "Socket.IO connections closed because a ping went unanswered for pingTimeout.",
        |s| s.socketio_ping_timeouts,
    ),
    (
        "ringcast_channels_json_errors_total",
        "Channels JSON messages refused: not JSON objects, unknown types, binary frames.",
        |s| s.channels_json_errors,
    ),
    (
        "ringcast_function_pipelines_total",
        "Publishes run through their channel's functions.",
        |s| s.function_pipelines_started,
    ),
    (
        "ringcast_function_pipelines_failed_total",
        "Publishes delivered unchanged because their functions failed, timed out or could not run.",
        |s| s.function_pipelines_failed,
    ),
    (
        "ringcast_associations_updates_total",
        "Channel-function associations documents applied (PUT /associations here or on another node).",
        |s| s.associations_updates,
    ),
    (
        "ringcast_relay_messages_ignored_total",
        "Relay messages that did nothing: not JSON, unusable, past a bound or the rate, without a role, to a client not there.",
        |s| s.relay_messages_ignored,
    ),
    (
        "ringcast_relay_connects_refused_total",
        "Relay connects refused because the room or the shard holds its most (the connection closed with 1013).",
        |s| s.relay_connects_refused,
    ),
    (
        "ringcast_slip_calls_total",
        "WebSocket-over-HTTP events sent to the apps' backends (open, text, close).",
        |s| s.slip_calls,
    ),
    (
        "ringcast_slip_calls_failed_total",
        "WebSocket-over-HTTP events without a usable answer: none in time, non-2xx, not a list of events.",
        |s| s.slip_calls_failed,
    ),
    (
        "ringcast_slip_upgrades_refused_total",
        "WebSocket-over-HTTP upgrades the backend did not accept or could not be asked about.",
        |s| s.slip_upgrades_refused,
    ),
    (
        "ringcast_slip_commands_refused_total",
        "Backend commands not run: unknown or foreign connection, invalid channel, oversized metadata, too many channels.",
        |s| s.slip_commands_refused,
    ),
    (
        "ringcast_associations_refused_total",
        "Channel-function associations documents refused (bad token or document).",
        |s| s.associations_refused,
    ),
];

/// The bridge's node-wide metrics: name, type, help text and the value.
type BridgeMetric = (
    &'static str,
    &'static str,
    &'static str,
    fn(&BridgeStats) -> u64,
);

/// Every bridge metric, in the order `/metrics` lists them.
const BRIDGE_METRICS: [BridgeMetric; 23] = [
    (
        "ringcast_bridge_redis_connected",
        "gauge",
        "1 while the bridge has a working Redis pub/sub connection.",
        |b| u64::from(b.redis_connected),
    ),
    (
        "ringcast_bridge_redis_reconnects_total",
        "counter",
        "Times the bridge lost Redis and connected again.",
        |b| b.redis_reconnects,
    ),
    (
        "ringcast_bridge_redis_publishes_total",
        "counter",
        "Publishes the bridge sent to Redis for other nodes.",
        |b| b.publishes_relayed,
    ),
    (
        "ringcast_bridge_redis_publishes_dropped_total",
        "counter",
        "Publishes the bridge dropped (queue full or Redis failing).",
        |b| b.publishes_dropped,
    ),
    (
        "ringcast_bridge_redis_messages_total",
        "counter",
        "Messages the bridge received from Redis.",
        |b| b.messages_received,
    ),
    (
        "ringcast_bridge_deliveries_dropped_total",
        "counter",
        "Deliveries to shards the bridge dropped (link queue full).",
        |b| b.deliveries_dropped,
    ),
    (
        "ringcast_bridge_publish_queue_depth",
        "gauge",
        "Publishes waiting in the bridge for Redis.",
        |b| u64::from(b.publish_queue_depth),
    ),
    (
        "ringcast_bridge_links",
        "gauge",
        "Engine shards linked to the bridge.",
        |b| u64::from(b.links),
    ),
    (
        "ringcast_webhook_events_delivered_total",
        "counter",
        "Webhook events the receivers accepted (2xx).",
        |b| b.webhook_events_delivered,
    ),
    (
        "ringcast_webhook_requests_failed_total",
        "counter",
        "Webhook requests that failed (non-2xx, connect error, timeout); each retry counts.",
        |b| b.webhook_requests_failed,
    ),
    (
        "ringcast_webhook_events_given_up_total",
        "counter",
        "Webhook events given up after retrying for 5 minutes.",
        |b| b.webhook_events_given_up,
    ),
    (
        "ringcast_webhook_events_dropped_total",
        "counter",
        "Webhook events the bridge dropped because its queue was full.",
        |b| b.webhook_events_dropped,
    ),
    (
        "ringcast_webhook_queue_depth",
        "gauge",
        "Webhook events waiting in the bridge (delayed, queued, in flight or to be retried).",
        |b| b.webhook_events_pending,
    ),
    (
        "ringcast_bridge_auth_granted_total",
        "counter",
        "Offloaded authorizations the app's endpoint granted.",
        |b| b.auth_granted,
    ),
    (
        "ringcast_bridge_auth_refused_total",
        "counter",
        "Offloaded authorizations the endpoint refused or answered unusably.",
        |b| b.auth_refused,
    ),
    (
        "ringcast_bridge_auth_failed_total",
        "counter",
        "Offloaded authorizations the endpoint did not answer (timeout, connect error).",
        |b| b.auth_failed,
    ),
    (
        "ringcast_bridge_auth_shed_total",
        "counter",
        "Offloaded authorizations refused by the bridge without asking (bounds reached).",
        |b| b.auth_shed,
    ),
    (
        "ringcast_bridge_function_pipelines_done_total",
        "counter",
        "Channel-function pipelines the bridge ran to the end.",
        |b| b.function_pipelines_done,
    ),
    (
        "ringcast_bridge_function_pipelines_failed_total",
        "counter",
        "Channel-function pipelines that failed in the bridge (a function's error, timeout or unusable answer).",
        |b| b.function_pipelines_failed,
    ),
    (
        "ringcast_bridge_function_pipelines_shed_total",
        "counter",
        "Channel-function pipelines the bridge refused without running (bounds reached).",
        |b| b.function_pipelines_shed,
    ),
    (
        "ringcast_bridge_slip_calls_answered_total",
        "counter",
        "WebSocket-over-HTTP event requests the backends answered (any status).",
        |b| b.slip_calls_answered,
    ),
    (
        "ringcast_bridge_slip_calls_failed_total",
        "counter",
        "WebSocket-over-HTTP event requests without an answer (timeout, connect error, response too large).",
        |b| b.slip_calls_failed,
    ),
    (
        "ringcast_bridge_slip_calls_shed_total",
        "counter",
        "WebSocket-over-HTTP event requests the bridge refused without calling (bounds reached, link gone).",
        |b| b.slip_calls_shed,
    ),
];

/// Renders snapshots in the Prometheus text exposition format (version 0.0.4).
pub fn render_prometheus(snapshots: &[StatsSnapshot], app_ids: &[&str]) -> String {
    let mut out = String::with_capacity(8 * 1024);
    render_gauges(&mut out, snapshots, app_ids);
    for (name, help, value) in COUNTERS {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
        for snap in snapshots {
            let _ = writeln!(
                out,
                "{name}{{shard=\"{}\"}} {}",
                snap.shard,
                value(&snap.stats)
            );
        }
    }
    render_histogram(
        &mut out,
        "ringcast_frames_per_write",
        "Frames coalesced into one socket write.",
        snapshots,
        &FRAMES_PER_WRITE_BUCKETS.map(|b| b.to_string()),
        |s| &s.frames_per_write,
        |_| None,
    );
    render_histogram(
        &mut out,
        "ringcast_handshake_seconds",
        "Time from accept to the WebSocket upgrade.",
        snapshots,
        &HANDSHAKE_MS_BUCKETS.map(|b| format!("{}", b as f64 / 1000.0)),
        |s| &s.handshake_ms,
        |s| Some(s.handshake_ms_sum as f64 / 1000.0),
    );
    let _ = writeln!(
        out,
        "# HELP ringcast_dialect_deliveries_total Channel deliveries by the subscriber's dialect.\n# TYPE ringcast_dialect_deliveries_total counter"
    );
    for snap in snapshots {
        for dialect in Dialect::ALL {
            let _ = writeln!(
                out,
                "ringcast_dialect_deliveries_total{{shard=\"{}\",dialect=\"{}\"}} {}",
                snap.shard,
                dialect.label(),
                snap.stats.deliveries_by_dialect[dialect.index()]
            );
        }
    }
    render_codes(&mut out, snapshots);
    render_http(&mut out, snapshots);
    render_bridge(&mut out, snapshots);
    out
}

/// Open connections per app, sockets and channels, per shard.
fn render_gauges(out: &mut String, snapshots: &[StatsSnapshot], app_ids: &[&str]) {
    let _ = writeln!(
        out,
        "# HELP ringcast_connections Open Pusher connections.\n# TYPE ringcast_connections gauge"
    );
    for snap in snapshots {
        for (app, count) in snap.connections_by_app.iter().enumerate() {
            let app_id = app_ids.get(app).copied().unwrap_or("?");
            let _ = writeln!(
                out,
                "ringcast_connections{{shard=\"{}\",app=\"{}\"}} {count}",
                snap.shard,
                escape_label(app_id)
            );
        }
    }
    let _ = writeln!(
        out,
        "# HELP ringcast_sockets Open sockets in any phase (HTTP, WebSocket, closing).\n# TYPE ringcast_sockets gauge"
    );
    for snap in snapshots {
        let _ = writeln!(
            out,
            "ringcast_sockets{{shard=\"{}\"}} {}",
            snap.shard, snap.sockets
        );
    }
    let _ = writeln!(
        out,
        "# HELP ringcast_dialect_connections Open WebSocket connections by dialect.\n# TYPE ringcast_dialect_connections gauge"
    );
    for snap in snapshots {
        for dialect in Dialect::ALL {
            let _ = writeln!(
                out,
                "ringcast_dialect_connections{{shard=\"{}\",dialect=\"{}\"}} {}",
                snap.shard,
                dialect.label(),
                snap.connections_by_dialect[dialect.index()]
            );
        }
    }
    let _ = writeln!(
        out,
        "# HELP ringcast_channels Channels with subscribers on the shard.\n# TYPE ringcast_channels gauge"
    );
    for snap in snapshots {
        let _ = writeln!(
            out,
            "ringcast_channels{{shard=\"{}\"}} {}",
            snap.shard, snap.channels
        );
    }
}

/// Pusher errors and WebSocket protocol closes sent, by code.
fn render_codes(out: &mut String, snapshots: &[StatsSnapshot]) {
    let _ = writeln!(
        out,
        "# HELP ringcast_pusher_errors_total pusher:error events and Pusher close codes sent, by code.\n# TYPE ringcast_pusher_errors_total counter"
    );
    for snap in snapshots {
        for (index, count) in snap.stats.errors_by_code.iter().enumerate() {
            if *count > 0 {
                let _ = writeln!(
                    out,
                    "ringcast_pusher_errors_total{{shard=\"{}\",code=\"{}\"}} {count}",
                    snap.shard,
                    4000 + index
                );
            }
        }
    }
    let _ = writeln!(
        out,
        "# HELP ringcast_websocket_protocol_closes_total Connections closed for RFC 6455 violations, by close code.\n# TYPE ringcast_websocket_protocol_closes_total counter"
    );
    for snap in snapshots {
        let mut codes: Vec<_> = snap.stats.protocol_closes.iter().collect();
        codes.sort();
        for (code, count) in codes {
            let _ = writeln!(
                out,
                "ringcast_websocket_protocol_closes_total{{shard=\"{}\",code=\"{code}\"}} {count}",
                snap.shard
            );
        }
    }
}

/// HTTP requests answered, by route and status.
fn render_http(out: &mut String, snapshots: &[StatsSnapshot]) {
    let _ = writeln!(
        out,
        "# HELP ringcast_http_requests_total HTTP requests answered, by route and status.\n# TYPE ringcast_http_requests_total counter"
    );
    for snap in snapshots {
        let mut rows: Vec<_> = snap.stats.http_requests.iter().collect();
        rows.sort();
        for ((route, status), count) in rows {
            let _ = writeln!(
                out,
                "ringcast_http_requests_total{{shard=\"{}\",route=\"{route}\",status=\"{status}\"}} {count}",
                snap.shard
            );
        }
    }
}

/// The bridge's part: per-shard link state, and the bridge's own counters (node-wide, as the
/// first linked shard last heard them). Nothing when the node runs without a bridge.
fn render_bridge(out: &mut String, snapshots: &[StatsSnapshot]) {
    if snapshots.iter().all(|s| s.bridge_linked.is_none()) {
        return;
    }
    let _ = writeln!(
        out,
        "# HELP ringcast_bridge_linked 1 while the shard is linked to the bridge.
# TYPE ringcast_bridge_linked gauge"
    );
    for snap in snapshots {
        if let Some(linked) = snap.bridge_linked {
            let _ = writeln!(
                out,
                "ringcast_bridge_linked{{shard=\"{}\"}} {}",
                snap.shard,
                u8::from(linked)
            );
        }
    }
    let Some(bridge) = snapshots.iter().find_map(|s| s.bridge_stats.as_ref()) else {
        return;
    };
    for (name, kind, help, value) in BRIDGE_METRICS {
        let value = value(bridge);
        let _ = writeln!(
            out,
            "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}"
        );
    }
}

fn render_histogram(
    out: &mut String,
    name: &str,
    help: &str,
    snapshots: &[StatsSnapshot],
    bounds: &[String],
    buckets: impl Fn(&ShardStats) -> &[u64],
    sum: impl Fn(&ShardStats) -> Option<f64>,
) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} histogram");
    for snap in snapshots {
        let counts = buckets(&snap.stats);
        let mut cumulative = 0;
        for (bound, count) in bounds.iter().zip(counts) {
            cumulative += count;
            let _ = writeln!(
                out,
                "{name}_bucket{{shard=\"{}\",le=\"{bound}\"}} {cumulative}",
                snap.shard
            );
        }
        let total: u64 = counts.iter().sum();
        let _ = writeln!(
            out,
            "{name}_bucket{{shard=\"{}\",le=\"+Inf\"}} {total}",
            snap.shard
        );
        let _ = writeln!(out, "{name}_count{{shard=\"{}\"}} {total}", snap.shard);
        if let Some(sum) = sum(&snap.stats) {
            let _ = writeln!(out, "{name}_sum{{shard=\"{}\"}} {sum}", snap.shard);
        }
    }
}

fn escape_label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histograms_are_cumulative_and_complete() {
        let mut stats = ShardStats::default();
        for frames in [1, 1, 3, 8, 100] {
            stats.record_write(frames, 10);
        }
        stats.record_http("events", 200);
        let snap = StatsSnapshot {
            shard: 1,
            stats,
            connections_by_app: vec![7],
            connections_by_dialect: [5, 2, 1, 3, 4],
            sockets: 9,
            channels: 2,
            bridge_linked: None,
            bridge_stats: None,
        };
        let text = render_prometheus(&[snap], &["app-1"]);
        assert!(
            text.contains("ringcast_frames_per_write_bucket{shard=\"1\",le=\"1\"} 2"),
            "{text}"
        );
        assert!(
            text.contains("ringcast_frames_per_write_bucket{shard=\"1\",le=\"4\"} 3"),
            "{text}"
        );
        assert!(
            text.contains("ringcast_frames_per_write_bucket{shard=\"1\",le=\"8\"} 4"),
            "{text}"
        );
        assert!(
            text.contains("ringcast_frames_per_write_bucket{shard=\"1\",le=\"+Inf\"} 5"),
            "{text}"
        );
        assert!(
            text.contains("ringcast_connections{shard=\"1\",app=\"app-1\"} 7"),
            "{text}"
        );
        assert!(text.contains(
            "ringcast_http_requests_total{shard=\"1\",route=\"events\",status=\"200\"} 1"
        ));
        assert!(text.contains("ringcast_bytes_out_total{shard=\"1\"} 50"));
        assert!(text.contains("ringcast_dialect_connections{shard=\"1\",dialect=\"socketio\"} 2"));
        assert!(text.contains("ringcast_dialect_connections{shard=\"1\",dialect=\"channels\"} 1"));
        assert!(
            text.contains("ringcast_dialect_deliveries_total{shard=\"1\",dialect=\"pusher\"} 0")
        );
        // Every sample line is `name{labels} value`.
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let value = line.rsplit(' ').next().unwrap_or_default();
            assert!(value.parse::<f64>().is_ok(), "{line}");
        }
    }

    #[test]
    fn bridge_metrics_only_with_a_bridge() {
        let snap = |shard, linked: Option<bool>, stats| StatsSnapshot {
            shard,
            stats: ShardStats::default(),
            connections_by_app: vec![0],
            connections_by_dialect: [0, 0, 0, 0, 0],
            sockets: 0,
            channels: 0,
            bridge_linked: linked,
            bridge_stats: stats,
        };
        let alone = render_prometheus(&[snap(0, None, None)], &["a"]);
        assert!(!alone.contains("ringcast_bridge_linked"), "{alone}");
        let bridge = crate::link::BridgeStats {
            redis_connected: true,
            publishes_relayed: 42,
            publish_queue_depth: 3,
            links: 2,
            ..Default::default()
        };
        let text = render_prometheus(
            &[
                snap(0, Some(true), Some(bridge)),
                snap(1, Some(false), None),
            ],
            &["a"],
        );
        for line in [
            "ringcast_bridge_linked{shard=\"0\"} 1",
            "ringcast_bridge_linked{shard=\"1\"} 0",
            "ringcast_bridge_redis_connected 1",
            "ringcast_bridge_redis_publishes_total 42",
            "ringcast_bridge_publish_queue_depth 3",
            "ringcast_bridge_links 2",
        ] {
            assert!(text.lines().any(|l| l == line), "missing {line}:\n{text}");
        }
    }
}
