//! ringcast's benchmarks: shared helpers for the criterion benches in `benches/` and the pinned
//! benchmark mains in `src/bin/` (`ring_throughput`, `raw_send`).
//!
//! Nothing here is used by the engine. The helpers fall in three groups: [`sys`] (CPU pinning,
//! file-descriptor limit, per-thread CPU time: the few libc calls the bench mains need),
//! [`fixtures`] (real wire bytes: client frames, pusher-js messages, a [`ringcast_core::shard::Shard`]
//! with N subscribers) and [`report`] (human-readable rates).

pub mod fixtures;
pub mod report;
pub mod sys;
