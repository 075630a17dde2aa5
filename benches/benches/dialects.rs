//! The cost of a delivery by dialect, side by side in one run: one event (each framing encoded
//! once per message) to 10,000 subscribers speaking Pusher, Socket.IO, channels JSON or
//! WebSocket-over-HTTP, each dialect's own publish to its subscribers, and a relay server's
//! broadcast to 10,000 clients of its room; publish, then `take_output` of every woken connection,
//! as `fanout` measures it. With the engine's allocator (mimalloc): the step allocates and frees
//! each connection's queue, so the allocator is part of what a delivery costs.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use ringcast_benches::fixtures::{Fanout, RelayRoom, Speaks};
use ringcast_core::dialect::Published;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// A case: its name, the subscribers' dialect, the message published.
type DialectCase = (&'static str, Speaks, fn() -> Published);

fn by_dialect(c: &mut Criterion) {
    let mut group = c.benchmark_group("fanout_by_dialect");
    let subscribers = 10_000usize;
    group.throughput(Throughput::Elements(subscribers as u64));
    let cases: [DialectCase; 7] = [
        ("pusher_event_to_pusher", Speaks::Pusher, Fanout::event),
        ("pusher_event_to_socketio", Speaks::SocketIo, Fanout::event),
        (
            "socketio_publish_to_socketio",
            Speaks::SocketIo,
            Fanout::socketio_publish,
        ),
        (
            "pusher_event_to_channels_json",
            Speaks::ChannelsJson,
            Fanout::event,
        ),
        (
            "channels_json_publish_to_channels_json",
            Speaks::ChannelsJson,
            Fanout::channels_json_publish,
        ),
        ("pusher_event_to_slip", Speaks::Slip, Fanout::event),
        ("slip_publish_to_slip", Speaks::Slip, Fanout::slip_publish),
    ];
    for (name, speaks, message) in cases {
        let mut fixture =
            Fanout::speaking(subscribers, speaks).expect("building the fan-out fixture");
        group.bench_function(name, |b| {
            b.iter(|| {
                let delivered = fixture.publish_event_and_drain(message());
                assert_eq!(delivered, subscribers, "a publish missed subscribers");
            })
        });
    }
    // The relay is not a channel: a server's broadcast to its room's clients, parsed, merged
    // and encoded once, then queued on each.
    let mut room = RelayRoom::new(subscribers).expect("building the relay room fixture");
    group.bench_function("relay_server_data_to_clients", |b| {
        b.iter(|| {
            let reached = room.broadcast_and_drain();
            assert_eq!(reached, subscribers, "a broadcast missed clients");
        })
    });
    group.finish();
}

// criterion_group! defines an undocumented `pub fn`; a private module keeps it out of the
// crate's public surface (and so out of the missing_docs lint).
mod group {
    use super::*;
    criterion_group!(benches, by_dialect);
}
criterion_main!(group::benches);
