//! The registry's fan-out step on one shard: `publish` of one 100-byte frame to a channel with
//! N subscribers, then `take_output` of every woken connection into a write buffer, as the
//! engine's shell does before writing. Throughput is reported as N deliveries per iteration;
//! the socket writes themselves are `raw_send`'s measurement, not this one.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use ringcast_benches::fixtures::{server_frame_of_total_len, Fanout};

fn fanout(c: &mut Criterion) {
    let mut group = c.benchmark_group("fanout_publish_and_drain");
    let frame = server_frame_of_total_len(100);
    for subscribers in [1_000usize, 10_000] {
        let mut fixture = Fanout::new(subscribers).expect("building the fan-out fixture");
        group.throughput(Throughput::Elements(subscribers as u64));
        group.bench_function(format!("{subscribers}_subscribers"), |b| {
            b.iter(|| {
                let delivered = fixture.publish_and_drain(&frame);
                assert_eq!(delivered, subscribers, "a publish missed subscribers");
            })
        });
    }
    group.finish();
}

// criterion_group! defines an undocumented `pub fn`; a private module keeps it out of the
// crate's public surface (and so out of the missing_docs lint).
mod group {
    use super::*;
    criterion_group!(benches, fanout);
}
criterion_main!(group::benches);
