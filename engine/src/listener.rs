//! The listening sockets: one per shard on the same address with SO_REUSEPORT, built with
//! socket2 so the backlog is ours to set (glommio hard-codes 1024). All are bound in the main
//! thread before the shards start, so `--port 0` resolves once and every shard shares the port.

use std::net::SocketAddr;

use socket2::{Domain, Protocol, Socket, Type};

/// Binds `count` listeners on `addr`; returns them and the bound address.
pub fn bind_all(
    addr: SocketAddr,
    count: usize,
    backlog: u32,
) -> Result<(Vec<Socket>, SocketAddr), String> {
    let mut sockets = Vec::with_capacity(count);
    let mut bound = addr;
    for _ in 0..count {
        let socket = bind_one(bound, backlog)
            .map_err(|e| format!("cannot listen on {bound}: {e} (is another process using the port? see --port / --bind-address)"))?;
        if let Some(local) = socket.local_addr().ok().and_then(|a| a.as_socket()) {
            bound = local;
        }
        sockets.push(socket);
    }
    Ok((sockets, bound))
}

/// Binds one listener (the metrics port).
pub fn bind_one(addr: SocketAddr, backlog: u32) -> std::io::Result<Socket> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    socket.set_reuse_port(true)?;
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(i32::try_from(backlog).unwrap_or(i32::MAX))?;
    Ok(socket)
}
