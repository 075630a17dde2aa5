//! Inter-shard ring throughput: two glommio executors pinned to two CPUs, one pushing
//! `bytes::Bytes` messages into a bounded ring as fast as it can, the other counting them. This
//! is the hop a publish takes to reach another shard's subscribers (the publishing shard sends
//! the frame over a bounded ring to every shard with subscribers of the channel), so ns/message
//! here bounds the cross-shard publish rate.
//!
//! The message is one pre-built 100-byte frame cloned per send, exactly as the engine does (a
//! refcount bump on the sender, a decrement on the receiver when it drops the message), so the
//! cost of that shared refcount bouncing between cores is part of the figure.
//!
//! ```text
//! cargo run --release -p ringcast-benches --bin ring_throughput -- --messages 10000000
//! ```

use std::time::Instant;

use bytes::Bytes;
use clap::{Parser, ValueEnum};
use glommio::channels::channel_mesh::{Full, MeshBuilder};
use glommio::channels::shared_channel;
use glommio::{LocalExecutorBuilder, Placement};
use ringcast_benches::fixtures::server_frame_of_total_len;
use ringcast_benches::{report, sys};

/// Which glommio ring to measure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Transport {
    /// `channel_mesh` full mesh of two peers: what the engine uses between shards.
    Mesh,
    /// A bare `shared_channel::new_bounded` SPSC ring (the mesh's building block).
    Shared,
}

#[derive(Debug, Parser)]
#[command(about = "Throughput of a glommio ring between two pinned executors")]
struct Args {
    /// Messages to push through the ring.
    #[arg(long, default_value_t = 10_000_000)]
    messages: u64,
    /// Ring capacity in messages (the engine uses ringcast_core::limits::SHARD_RING_CAPACITY).
    #[arg(long, default_value_t = ringcast_core::limits::SHARD_RING_CAPACITY)]
    capacity: usize,
    /// CPUs for the sender and the receiver, e.g. `--cpus 0,1`; default: the first two this
    /// process may use.
    #[arg(long, value_delimiter = ',')]
    cpus: Vec<usize>,
    /// Ring implementation.
    #[arg(long, value_enum, default_value_t = Transport::Mesh)]
    transport: Transport,
    /// Registered I/O memory per executor in KiB. Kept small so that two executors fit in an
    /// 8 MiB RLIMIT_MEMLOCK (glommio's default is 10 MiB each); the bench does no disk I/O.
    #[arg(long, default_value_t = 512)]
    io_memory_kib: usize,
    /// Size of the message frame in bytes (the `Bytes` is shared, so this barely matters).
    #[arg(long, default_value_t = 100)]
    frame_bytes: usize,
}

/// What the sender reports back: when it started pushing and how many sends had to wait for
/// room in the ring.
struct SenderReport {
    started: Instant,
    full_waits: u64,
}

/// What the receiver reports back.
struct ReceiverReport {
    first: Instant,
    last: Instant,
    received: u64,
    bytes: u64,
}

fn main() {
    let args = Args::parse();
    let (cpus, shared_core) =
        sys::choose_cpus(&args.cpus, 2).expect("reading the CPU affinity mask");
    if shared_core {
        eprintln!(
            "warning: only one CPU is available; sender and receiver share CPU {}, so the \
             figure is a same-core ring, not a cross-core one",
            cpus[0]
        );
    }
    let frame = server_frame_of_total_len(args.frame_bytes);
    let io_memory = args.io_memory_kib * 1024;
    let messages = args.messages;

    let (sent, got) = match args.transport {
        Transport::Mesh => run_mesh(&args, &cpus, frame, io_memory),
        Transport::Shared => run_shared(&args, &cpus, frame, io_memory),
    };
    assert_eq!(got.received, messages, "the receiver missed messages");

    let total = got.last.saturating_duration_since(sent.started);
    let steady = got.last.saturating_duration_since(got.first);
    let per_message = total.as_secs_f64() / messages as f64;
    println!(
        "ring_throughput: {:?} ring, capacity {}, sender on CPU {}, receiver on CPU {}",
        args.transport, args.capacity, cpus[0], cpus[1]
    );
    println!(
        "  {messages} messages ({} B frames, {} MiB through) in {}",
        args.frame_bytes,
        got.bytes / (1024 * 1024),
        report::duration(total)
    );
    println!(
        "  {} msg/s, {:.1} ns/message (first→last received: {} msg/s)",
        report::si(messages as f64 / total.as_secs_f64()),
        per_message * 1e9,
        report::si(messages.saturating_sub(1) as f64 / steady.as_secs_f64().max(1e-12)),
    );
    println!(
        "  sends that found the ring full and waited: {} ({:.2} %)",
        sent.full_waits,
        100.0 * sent.full_waits as f64 / messages as f64
    );
}

/// One executor's outcome in the mesh, where the role is only known once it has joined.
enum Role {
    Sender(SenderReport),
    Receiver(ReceiverReport),
}

/// The engine's shape: a full mesh, each executor joins, and peer 0 sends to peer 1. Peer ids
/// follow join order, so each side learns its role from `peer_id()` rather than assuming it.
fn run_mesh(
    args: &Args,
    cpus: &[usize],
    frame: Bytes,
    io_memory: usize,
) -> (SenderReport, ReceiverReport) {
    let mesh: MeshBuilder<Bytes, Full> = MeshBuilder::full(2, args.capacity);
    let messages = args.messages;
    // Each executor runs the same body: peer 0 sends, peer 1 receives.
    let spawn = |cpu: usize, name: &str, mesh: MeshBuilder<Bytes, Full>, frame: Bytes| {
        LocalExecutorBuilder::new(Placement::Fixed(cpu))
            .name(name)
            .io_memory(io_memory)
            .spawn(move || async move {
                let (senders, receivers) = mesh.join().await.expect("joining the mesh");
                if senders.peer_id() == 0 {
                    let started = Instant::now();
                    let mut full_waits = 0;
                    for _ in 0..messages {
                        // The engine's fast path: try the ring, wait only when it is full.
                        if let Err(glommio::GlommioError::WouldBlock(_)) =
                            senders.try_send_to(1, frame.clone())
                        {
                            full_waits += 1;
                            senders
                                .send_to(1, frame.clone())
                                .await
                                .expect("peer 1 closed its ring");
                        }
                    }
                    Role::Sender(SenderReport {
                        started,
                        full_waits,
                    })
                } else {
                    let got = receive(messages, |_| async {
                        receivers.recv_from(0).await.ok().flatten()
                    })
                    .await;
                    Role::Receiver(got)
                }
            })
            .expect("starting an executor (RLIMIT_MEMLOCK too low? try --io-memory-kib 256)")
    };
    let a = spawn(cpus[0], "ring-a", mesh.clone(), frame.clone());
    let b = spawn(cpus[1], "ring-b", mesh, frame);
    let a = a.join().expect("mesh executor A panicked");
    let b = b.join().expect("mesh executor B panicked");
    match (a, b) {
        (Role::Sender(s), Role::Receiver(r)) | (Role::Receiver(r), Role::Sender(s)) => (s, r),
        _ => panic!("the mesh did not give one sender and one receiver"),
    }
}

/// A bare SPSC ring: the sender executor on the first CPU, the receiver on the second.
fn run_shared(
    args: &Args,
    cpus: &[usize],
    frame: Bytes,
    io_memory: usize,
) -> (SenderReport, ReceiverReport) {
    let (tx, rx) = shared_channel::new_bounded::<Bytes>(args.capacity);
    let messages = args.messages;
    let sender = LocalExecutorBuilder::new(Placement::Fixed(cpus[0]))
        .name("ring-sender")
        .io_memory(io_memory)
        .spawn(move || async move {
            let tx = tx.connect().await;
            let started = Instant::now();
            let mut full_waits = 0;
            for _ in 0..messages {
                if let Err(glommio::GlommioError::WouldBlock(_)) = tx.try_send(frame.clone()) {
                    full_waits += 1;
                    tx.send(frame.clone())
                        .await
                        .expect("the receiver closed the ring");
                }
            }
            SenderReport {
                started,
                full_waits,
            }
        })
        .expect("starting the sender executor (RLIMIT_MEMLOCK too low? try --io-memory-kib 256)");
    let receiver = LocalExecutorBuilder::new(Placement::Fixed(cpus[1]))
        .name("ring-receiver")
        .io_memory(io_memory)
        .spawn(move || async move {
            let rx = rx.connect().await;
            receive(messages, |_| rx.recv()).await
        })
        .expect("starting the receiver executor (RLIMIT_MEMLOCK too low? try --io-memory-kib 256)");
    (
        sender.join().expect("the sender executor panicked"),
        receiver.join().expect("the receiver executor panicked"),
    )
}

/// Counts `messages` messages from `next` and notes when the first and the last arrived.
async fn receive<F, Fut>(messages: u64, mut next: F) -> ReceiverReport
where
    F: FnMut(u64) -> Fut,
    Fut: std::future::Future<Output = Option<Bytes>>,
{
    let mut first = None;
    let mut bytes = 0u64;
    let mut received = 0u64;
    while received < messages {
        let Some(message) = next(received).await else {
            break;
        };
        first.get_or_insert_with(Instant::now);
        bytes += message.len() as u64;
        received += 1;
    }
    let last = Instant::now();
    ReceiverReport {
        first: first.unwrap_or(last),
        last,
        received,
        bytes,
    }
}
