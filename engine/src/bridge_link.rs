//! One shard's link to the bridge: connects to its Unix socket, moves link frames between the
//! socket and the core, and reconnects with backoff when the bridge goes away. The core decides
//! what the link means (`ringcast_core::shard::bridge`); this task only carries bytes.
//!
//! The link carries every app's secrets (webhook settings, auth offload), so a connection is
//! trusted only after a check, before the core writes a byte: the process at the other end
//! (`SO_PEERCRED`) must run as this engine's user and be the bridge child the supervisor
//! started ([`bridge_starting`], [`bridge_started`], [`bridge_stopped`]), or, for a bridge run
//! separately, any process of this user ([`trust_external_bridge`]). Anything else is closed,
//! logged with its pid and uid, counted and retried with the backoff.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, IntoRawFd};
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::rc::Rc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use futures_lite::{AsyncRead, AsyncWrite};
use glommio::net::UnixStream;
use ringcast_core::backoff::Backoff;
use ringcast_core::link;
use socket2::{Domain, SockAddr, Socket, Type};
use tracing::{info, warn};

use crate::shard_ctx::ShardCtx;
use ringcast_core::limits::{
    LINK_ATTEMPTS_BEFORE_WARNING, LINK_READS_PER_POLL_MAX, LINK_READ_CHUNK_BYTES,
};

/// The pid the link accepts at the other end, or one of the states below: written by the
/// bridge supervisor's thread (and once at start), read by every shard at each connect.
static EXPECTED_BRIDGE_PID: AtomicU32 = AtomicU32::new(NO_BRIDGE);
/// No bridge is running (none started yet, or between a bridge's exit and its restart).
const NO_BRIDGE: u32 = 0;
/// The supervisor is starting a bridge whose pid it does not know yet.
const BRIDGE_STARTING: u32 = u32::MAX;
/// The operator runs the bridge (`--bridge-external`): its pid is unknown, only the uid counts.
const ANY_BRIDGE_PID: u32 = u32::MAX - 1;
/// Link connections refused because of who was at the other end, since start, over all shards
/// (every refusal's warning shows it).
static REFUSED_PEERS: AtomicU64 = AtomicU64::new(0);

/// The operator runs the bridge: any process of this user at the socket is accepted.
pub fn trust_external_bridge() {
    EXPECTED_BRIDGE_PID.store(ANY_BRIDGE_PID, Ordering::SeqCst);
}

/// The supervisor is about to start a bridge. Until [`bridge_started`] a peer that is not the
/// previous bridge is turned away quietly (it is probably the new bridge, whose pid is not
/// stored yet) and retried.
pub fn bridge_starting() {
    EXPECTED_BRIDGE_PID.store(BRIDGE_STARTING, Ordering::SeqCst);
}

/// The bridge the supervisor started has this pid: from now on only it is accepted.
pub fn bridge_started(pid: u32) {
    EXPECTED_BRIDGE_PID.store(pid, Ordering::SeqCst);
}

/// The supervised bridge exited: nobody is accepted until the next one starts (its pid could
/// be reused by another process meanwhile).
pub fn bridge_stopped() {
    EXPECTED_BRIDGE_PID.store(NO_BRIDGE, Ordering::SeqCst);
}

/// The pid of the bridge the supervisor runs now, if any.
pub fn supervised_bridge_pid() -> Option<u32> {
    match EXPECTED_BRIDGE_PID.load(Ordering::SeqCst) {
        NO_BRIDGE | BRIDGE_STARTING | ANY_BRIDGE_PID => None,
        pid => Some(pid),
    }
}

/// Who is at the other end of a connected Unix socket, as the kernel recorded it when the
/// peer listened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Peer {
    pid: i32,
    uid: u32,
}

/// What a check of the peer decided.
#[derive(Debug, PartialEq, Eq)]
enum Verdict {
    /// This engine's bridge: the link may carry secrets.
    Trusted,
    /// A bridge is being started and its pid is not known yet: close and retry, no warning.
    NotYetKnown,
    /// Someone else: close, warn, count, retry.
    Refused,
}

/// Decides whether `peer` may have the link, given what the supervisor stored (`expected`)
/// and this engine's effective uid.
fn judge(peer: Peer, expected: u32, our_uid: u32) -> Verdict {
    if peer.uid != our_uid {
        return Verdict::Refused;
    }
    // A pid that is not positive (0: the peer lives in another pid namespace) is no child of ours.
    let peer_pid = u32::try_from(peer.pid).ok().filter(|pid| *pid > 0);
    match expected {
        ANY_BRIDGE_PID => Verdict::Trusted,
        BRIDGE_STARTING => Verdict::NotYetKnown,
        NO_BRIDGE => Verdict::Refused,
        pid if peer_pid == Some(pid) => Verdict::Trusted,
        _ => Verdict::Refused,
    }
}

/// Why a connect attempt gave no link.
enum Refusal {
    /// Nobody listens (or the socket cannot be used); the usual outage.
    Unreachable(io::Error),
    /// A bridge is starting; try again.
    NotYetKnown,
    /// The listener is not this engine's bridge.
    Untrusted(Peer),
}

/// Keeps the shard linked to the bridge at `path` for the life of the shard.
pub async fn run(ctx: Rc<ShardCtx>, path: PathBuf) {
    let shard = ctx.core.borrow().index();
    let mut backoff = Backoff::reconnect();
    let mut failed_attempts: u32 = 0;
    loop {
        match connect_trusted(&path) {
            Ok(mut stream) => {
                if failed_attempts >= LINK_ATTEMPTS_BEFORE_WARNING {
                    info!(shard, "bridge reachable again");
                }
                failed_attempts = 0;
                backoff.reset();
                ctx.core.borrow_mut().handle_link_up();
                ctx.after_core();
                info!(shard, path = %path.display(), "bridge link up");
                let reason = serve(&ctx, &mut stream).await;
                ctx.core.borrow_mut().handle_link_down();
                ctx.after_core();
                *ctx.link_waker.borrow_mut() = None;
                warn!(shard, %reason, "bridge link down: serving this node alone until it is back");
            }
            Err(refusal) => {
                failed_attempts = failed_attempts.saturating_add(1);
                match refusal {
                    Refusal::Unreachable(err)
                        if failed_attempts == LINK_ATTEMPTS_BEFORE_WARNING =>
                    {
                        warn!(shard, path = %path.display(), %err,
                            "bridge not reachable: serving this node alone, retrying");
                    }
                    Refusal::Untrusted(peer) => {
                        let refused_total = REFUSED_PEERS.fetch_add(1, Ordering::Relaxed) + 1;
                        ctx.core.borrow_mut().count_link_peer_refused();
                        warn!(shard, path = %path.display(), peer_pid = peer.pid,
                            peer_uid = peer.uid, refused_total,
                            "refused the bridge link: the process at the socket is not this \
                             engine's bridge; sent it nothing, retrying");
                    }
                    Refusal::Unreachable(_) | Refusal::NotYetKnown => {}
                }
            }
        }
        glommio::timer::sleep(Duration::from_millis(backoff.next_delay_ms())).await;
    }
}

/// Connects to the bridge's socket and checks who listens on it before anything is written;
/// the stream is handed to glommio only once the peer is trusted.
fn connect_trusted(path: &Path) -> Result<UnixStream, Refusal> {
    let socket = connect(path).map_err(Refusal::Unreachable)?;
    let peer = peer_of(&socket).map_err(Refusal::Unreachable)?;
    match judge(peer, EXPECTED_BRIDGE_PID.load(Ordering::SeqCst), our_uid()) {
        Verdict::Trusted => Ok(into_glommio(socket)),
        // Dropping the socket closes it: the peer reads EOF and nothing else.
        Verdict::NotYetKnown => Err(Refusal::NotYetKnown),
        Verdict::Refused => Err(Refusal::Untrusted(peer)),
    }
}

/// A connected Unix stream socket to `path`, in blocking mode as glommio's own streams are.
/// The connect itself does not wait: a Unix socket connects at once or fails (`EAGAIN` when the
/// listener's backlog is full), and a shard must not block.
fn connect(path: &Path) -> io::Result<Socket> {
    let address = SockAddr::unix(path)?;
    // socket2 opens it close-on-exec.
    let socket = Socket::new(Domain::UNIX, Type::STREAM, None)?;
    socket.set_nonblocking(true)?;
    socket.connect(&address)?;
    // io_uring hands EAGAIN back on non-blocking files instead of waiting; glommio's sockets
    // are blocking ones, read and written through the ring or with MSG_DONTWAIT.
    socket.set_nonblocking(false)?;
    Ok(socket)
}

/// The peer's credentials (`SO_PEERCRED`).
fn peer_of(socket: &Socket) -> io::Result<Peer> {
    let mut credentials = libc::ucred {
        pid: 0,
        uid: u32::MAX,
        gid: u32::MAX,
    };
    let expected_len = std::mem::size_of::<libc::ucred>();
    let mut len = libc::socklen_t::try_from(expected_len).map_err(io::Error::other)?;
    // SAFETY: the fd is an open socket owned by `socket` for the whole call; the kernel writes
    // at most `len` bytes into `credentials`, a `ucred` of exactly that size, and `len` back.
    #[allow(unsafe_code)]
    let status = unsafe {
        libc::getsockopt(
            socket.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_PEERCRED,
            std::ptr::addr_of_mut!(credentials).cast(),
            &mut len,
        )
    };
    if status != 0 {
        return Err(io::Error::last_os_error());
    }
    if usize::try_from(len).ok() != Some(expected_len) {
        return Err(io::Error::other("SO_PEERCRED returned a short answer"));
    }
    Ok(Peer {
        pid: credentials.pid,
        uid: credentials.uid,
    })
}

/// This process's effective uid: the one the kernel records for a peer, so the one a trusted
/// bridge (and the owner of a socket's directory) must have.
pub fn our_uid() -> u32 {
    // SAFETY: geteuid(2) takes nothing, cannot fail and touches no memory of ours.
    #[allow(unsafe_code)]
    unsafe {
        libc::geteuid()
    }
}

/// The checked socket as a glommio stream on this shard's reactor.
fn into_glommio(socket: Socket) -> UnixStream {
    // SAFETY: `into_raw_fd` gives up ownership of an open, connected Unix stream socket, which
    // the glommio stream now owns alone (and closes).
    #[allow(unsafe_code)]
    unsafe {
        UnixStream::from_raw_fd(socket.into_raw_fd())
    }
}

/// Runs one connected link until it fails; returns why.
async fn serve(ctx: &ShardCtx, stream: &mut UnixStream) -> String {
    let mut inbound = BytesMut::with_capacity(LINK_READ_CHUNK_BYTES);
    let mut scratch = vec![0u8; LINK_READ_CHUNK_BYTES];
    let mut unwritten: Option<Bytes> = None;
    futures_lite::future::poll_fn(|cx| {
        drive(ctx, stream, &mut inbound, &mut scratch, &mut unwritten, cx)
    })
    .await
}

/// One poll of the link: writes what the core queued, then reads and hands frames to the core,
/// until the socket would block or the read budget is spent. Ready with the reason when the
/// link fails.
fn drive(
    ctx: &ShardCtx,
    stream: &mut UnixStream,
    inbound: &mut BytesMut,
    scratch: &mut [u8],
    unwritten: &mut Option<Bytes>,
    cx: &mut Context<'_>,
) -> Poll<String> {
    register_waker(ctx, cx);
    let mut reads = 0;
    loop {
        // 0. A change the cluster must know found the core's queue full: end the link; the
        //    resync after the next Hello restates it (nothing is lost).
        if ctx.core.borrow_mut().take_link_relink() {
            return Poll::Ready("relinking: the link's queue was full for a cluster change".into());
        }
        // 1. Write what the core queued (one buffer at a time keeps the queue in the core,
        //    where it is bounded).
        if unwritten.is_none() {
            let mut out = BytesMut::new();
            ctx.core.borrow_mut().take_link_output(&mut out);
            if !out.is_empty() {
                *unwritten = Some(out.freeze());
            }
        }
        if let Some(bytes) = unwritten.as_mut() {
            match Pin::new(&mut *stream).poll_write(cx, bytes) {
                Poll::Ready(Ok(0)) => return Poll::Ready("bridge closed the link".into()),
                Poll::Ready(Err(err)) => return Poll::Ready(format!("write failed: {err}")),
                Poll::Ready(Ok(n)) => {
                    bytes.advance(n);
                    if bytes.is_empty() {
                        *unwritten = None;
                    }
                    continue;
                }
                Poll::Pending => {}
            }
        }

        // 2. Read and hand complete frames to the core.
        if reads >= LINK_READS_PER_POLL_MAX {
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        match Pin::new(&mut *stream).poll_read(cx, scratch) {
            Poll::Ready(Ok(0)) => return Poll::Ready("bridge closed the link".into()),
            Poll::Ready(Err(err)) => return Poll::Ready(format!("read failed: {err}")),
            Poll::Ready(Ok(n)) => {
                reads += 1;
                inbound.extend_from_slice(&scratch[..n]);
                if let Err(reason) = hand_frames_to_core(ctx, inbound) {
                    return Poll::Ready(reason);
                }
                ctx.after_core();
            }
            Poll::Pending => return Poll::Pending,
        }
    }
}

/// Stores the waker the core's link output wakes, replacing it only when this poll's waker
/// is a different one (cloning a waker on every poll is wasted work).
#[inline]
fn register_waker(ctx: &ShardCtx, cx: &Context<'_>) {
    let mut slot = ctx.link_waker.borrow_mut();
    match slot.as_ref() {
        Some(waker) if waker.will_wake(cx.waker()) => {}
        _ => *slot = Some(cx.waker().clone()),
    }
}

/// Decodes every complete frame in `inbound` and hands each to the core, leaving a partial
/// frame for the next read. Its own piece so [`drive`] shows only the write and read steps;
/// the error is why the link must close.
fn hand_frames_to_core(ctx: &ShardCtx, inbound: &mut BytesMut) -> Result<(), String> {
    loop {
        match link::decode(inbound) {
            Ok(Some(message)) => {
                let now_ms = ctx.now_ms();
                let handled = ctx.core.borrow_mut().handle_link_message(message, now_ms);
                if let Err(err) = handled {
                    return Err(format!("bridge protocol error: {err}"));
                }
            }
            Ok(None) => return Ok(()),
            Err(err) => return Err(format!("bad frame from the bridge: {err}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const US: u32 = 1000;

    fn peer(pid: i32, uid: u32) -> Peer {
        Peer { pid, uid }
    }

    #[test]
    fn only_the_supervised_bridge_of_our_user_is_trusted() {
        assert_eq!(judge(peer(42, US), 42, US), Verdict::Trusted);
        assert_eq!(judge(peer(43, US), 42, US), Verdict::Refused, "another pid");
        assert_eq!(
            judge(peer(42, 0), 42, US),
            Verdict::Refused,
            "another uid, even root"
        );
        assert_eq!(
            judge(peer(42, US), NO_BRIDGE, US),
            Verdict::Refused,
            "no bridge runs"
        );
        assert_eq!(
            judge(peer(0, US), NO_BRIDGE, US),
            Verdict::Refused,
            "pid 0 is not a match"
        );
        assert_eq!(judge(peer(-1, US), 42, US), Verdict::Refused);
    }

    #[test]
    fn a_starting_bridge_is_retried_and_an_external_one_is_judged_by_uid() {
        assert_eq!(
            judge(peer(7, US), BRIDGE_STARTING, US),
            Verdict::NotYetKnown
        );
        assert_eq!(judge(peer(7, 1), BRIDGE_STARTING, US), Verdict::Refused);
        assert_eq!(judge(peer(7, US), ANY_BRIDGE_PID, US), Verdict::Trusted);
        assert_eq!(judge(peer(7, 1), ANY_BRIDGE_PID, US), Verdict::Refused);
    }
}
