//! ringcast: the engine binary. Parses configuration, runs startup checks, starts one pinned
//! glommio executor per shard and waits for them.

mod config;

fn main() {}
