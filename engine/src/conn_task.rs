//! One task per connection: moves bytes between its socket and the core. Reads go through the
//! shard's shared scratch buffer (borrowed only inside a poll, so an idle connection holds no
//! buffer); writes coalesce every queued frame into one `send` per turn; a partial write keeps
//! only the unwritten tail.
//!
//! What lies between the socket and the core is a [`Transport`]: [`Plain`] hands bytes through;
//! TLS (`crate::tls`) encrypts and decrypts them. The task is generic over it, so a plain
//! connection runs code without a trace of TLS: no extra copy, allocation or branch.

use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::{Buf, Bytes};
use futures_lite::{AsyncRead, AsyncReadExt, AsyncWrite};
use glommio::net::TcpStream;
use ringcast_core::shard::{InputState, OutputState};

use crate::shard_ctx::ShardCtx;
use ringcast_core::limits::{CLOSE_LINGER_MS, SOCKET_READS_PER_POLL_MAX, SOCKET_WRITE_CHUNK_BYTES};

enum End {
    /// The core finished the connection: flush done, close gracefully.
    Finished,
    /// Drop at once (peer gone, error, abort).
    Drop,
}

/// The connection must be dropped at once (peer gone, socket error, TLS failure).
#[derive(Debug)]
pub struct Dropped;

/// What lies between a connection's socket and the core. Every method gets the socket and the
/// task's context, so a transport never waits itself: a full socket leaves bytes pending and
/// the task is woken when it has room.
pub trait Transport {
    /// True while bytes wait that the socket has not taken: the core's next output is taken
    /// only once they are gone (that is the backpressure the core counts on).
    fn has_pending(&self) -> bool;

    /// One step of writing the waiting bytes: `Ready(Ok)` after progress, `Pending` when the
    /// socket is full.
    fn poll_flush(
        &mut self,
        stream: &mut TcpStream,
        cx: &mut Context<'_>,
    ) -> Poll<Result<(), Dropped>>;

    /// Writes the core's coalesced output `out` as far as the socket takes it now and keeps
    /// the rest: pending afterwards means the socket is full.
    fn send(
        &mut self,
        stream: &mut TcpStream,
        cx: &mut Context<'_>,
        out: &[u8],
    ) -> Result<(), Dropped>;

    /// Hands `data`, just read from the socket, to the core's connection `key`.
    fn receive(
        &mut self,
        ctx: &ShardCtx,
        stream: &mut TcpStream,
        cx: &mut Context<'_>,
        key: u32,
        data: &[u8],
    ) -> Result<(), Dropped>;

    /// True once the transport's own deadline has passed (the TLS handshake's); the
    /// connection is then dropped.
    fn poll_expired(&mut self, ctx: &ShardCtx, cx: &mut Context<'_>) -> bool;

    /// The core finished the connection: queue the transport's own goodbye (TLS
    /// close_notify), written before the socket is half-closed.
    fn finish(&mut self);
}

/// Plain TCP: bytes pass untouched; the one thing kept is the tail of a partial write.
#[derive(Default)]
pub struct Plain {
    pending: Option<Bytes>,
}

impl Transport for Plain {
    #[inline]
    fn has_pending(&self) -> bool {
        self.pending.is_some()
    }

    fn poll_flush(
        &mut self,
        stream: &mut TcpStream,
        cx: &mut Context<'_>,
    ) -> Poll<Result<(), Dropped>> {
        let Some(tail) = self.pending.as_mut() else {
            return Poll::Ready(Ok(()));
        };
        match Pin::new(&mut *stream).poll_write(cx, tail) {
            Poll::Ready(Ok(0)) | Poll::Ready(Err(_)) => Poll::Ready(Err(Dropped)),
            Poll::Ready(Ok(n)) => {
                tail.advance(n);
                if tail.is_empty() {
                    self.pending = None;
                }
                Poll::Ready(Ok(()))
            }
            Poll::Pending => Poll::Pending,
        }
    }

    #[inline]
    fn send(
        &mut self,
        stream: &mut TcpStream,
        cx: &mut Context<'_>,
        out: &[u8],
    ) -> Result<(), Dropped> {
        match Pin::new(&mut *stream).poll_write(cx, out) {
            Poll::Ready(Ok(n)) if n > 0 => {
                if n < out.len() {
                    self.pending = Some(Bytes::copy_from_slice(&out[n..]));
                }
                Ok(())
            }
            Poll::Ready(_) => Err(Dropped),
            Poll::Pending => {
                self.pending = Some(Bytes::copy_from_slice(out));
                Ok(())
            }
        }
    }

    #[inline]
    fn receive(
        &mut self,
        ctx: &ShardCtx,
        _stream: &mut TcpStream,
        _cx: &mut Context<'_>,
        key: u32,
        data: &[u8],
    ) -> Result<(), Dropped> {
        let now_ms = ctx.now_ms();
        ctx.core.borrow_mut().handle_bytes(key, data, now_ms);
        Ok(())
    }

    #[inline]
    fn poll_expired(&mut self, _ctx: &ShardCtx, _cx: &mut Context<'_>) -> bool {
        false
    }

    #[inline]
    fn finish(&mut self) {}
}

/// Serves one accepted connection through `transport` until it closes.
pub async fn serve<T: Transport>(
    ctx: Rc<ShardCtx>,
    mut stream: TcpStream,
    key: u32,
    mut transport: T,
) {
    let end =
        futures_lite::future::poll_fn(|cx| drive(&ctx, &mut stream, key, &mut transport, cx)).await;
    ctx.clear_waker(key);
    ctx.core.borrow_mut().handle_closed(key);
    ctx.after_core();
    if let End::Finished = end {
        // Boxed so the linger state does not enlarge every connection's task while it is open.
        Box::pin(linger(stream, transport)).await;
    }
}

/// Writes the transport's goodbye, half-closes, then waits briefly for the peer's FIN so our
/// last frames are not destroyed by an RST (closing a socket with unread input sends one). The
/// wait has one deadline in all, so a peer that keeps sending (or never reads) cannot hold the
/// socket.
async fn linger<T: Transport>(stream: TcpStream, mut transport: T) {
    let deadline = Instant::now() + Duration::from_millis(CLOSE_LINGER_MS);
    let mut stream = stream;
    transport.finish();
    if transport.has_pending() {
        let left = deadline.saturating_duration_since(Instant::now());
        if !left.is_zero() && stream.set_write_timeout(Some(left)).is_ok() {
            futures_lite::future::poll_fn(|cx| {
                while transport.has_pending() {
                    match transport.poll_flush(&mut stream, cx) {
                        Poll::Ready(Ok(())) => {}
                        Poll::Ready(Err(Dropped)) => return Poll::Ready(()),
                        Poll::Pending => return Poll::Pending,
                    }
                }
                Poll::Ready(())
            })
            .await;
        }
    }
    let _ = stream.shutdown(std::net::Shutdown::Write).await;
    let mut sink = vec![0u8; 512];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() || stream.set_read_timeout(Some(left)).is_err() {
            break;
        }
        match stream.read(&mut sink).await {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
    }
}

fn drive<T: Transport>(
    ctx: &ShardCtx,
    stream: &mut TcpStream,
    key: u32,
    transport: &mut T,
    cx: &mut Context<'_>,
) -> Poll<End> {
    ctx.set_waker(key, cx.waker());
    if transport.poll_expired(ctx, cx) {
        return Poll::Ready(End::Drop);
    }
    let mut reads = 0;
    loop {
        // 1. Write: what the socket did not take first, then everything the core has queued.
        if transport.has_pending() {
            if ctx.core.borrow().is_aborted(key) {
                return Poll::Ready(End::Drop);
            }
            match transport.poll_flush(stream, cx) {
                Poll::Ready(Err(Dropped)) => return Poll::Ready(End::Drop),
                Poll::Ready(Ok(())) => {
                    if !transport.has_pending() {
                        ctx.core.borrow_mut().set_write_blocked(key, false);
                    }
                    continue;
                }
                Poll::Pending => {}
            }
        } else {
            let state = {
                let mut out = ctx.write_buf.borrow_mut();
                out.clear();
                let state =
                    ctx.core
                        .borrow_mut()
                        .take_output(key, &mut out, SOCKET_WRITE_CHUNK_BYTES);
                if !out.is_empty() {
                    if transport.send(stream, cx, &out).is_err() {
                        return Poll::Ready(End::Drop);
                    }
                    if transport.has_pending() {
                        // The kernel's send buffer is full: from now on the queue is a backlog.
                        ctx.core.borrow_mut().set_write_blocked(key, true);
                    }
                }
                state
            };
            match state {
                OutputState::Abort | OutputState::Gone => return Poll::Ready(End::Drop),
                OutputState::Finished if !transport.has_pending() => {
                    return Poll::Ready(End::Finished)
                }
                _ => {}
            }
            if transport.has_pending() {
                // A partial write registered no waker: flushing the tail either writes more
                // or returns Pending with the task's waker registered for the socket. Without
                // this a client that stopped reading and then read again, with nothing new
                // queued for it, was never written to again (found by compat 24).
                continue;
            }
            if ctx.core.borrow().has_output(key) {
                continue; // more than one chunk queued
            }
        }

        // 2. Read, unless cross-shard rings are backed up or the core does not take this
        //    connection's input now (its output is stuck, or an answer is awaited: the core
        //    wakes the task when that changes, the socket when it can take more).
        if reads >= SOCKET_READS_PER_POLL_MAX {
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        if ctx.is_backpressured(cx.waker()) {
            return Poll::Pending;
        }
        let input = ctx.core.borrow().input_state(key);
        match input {
            InputState::Paused => return Poll::Pending,
            InputState::Held => {
                reads += 1;
                let now_ms = ctx.now_ms();
                ctx.core.borrow_mut().handle_bytes(key, &[], now_ms);
                ctx.after_core();
                continue;
            }
            InputState::Read => {}
        }
        let mut buf = ctx.read_buf.borrow_mut();
        match Pin::new(&mut *stream).poll_read(cx, &mut buf) {
            Poll::Ready(Ok(0)) | Poll::Ready(Err(_)) => return Poll::Ready(End::Drop),
            Poll::Ready(Ok(n)) => {
                reads += 1;
                let received = transport.receive(ctx, stream, cx, key, &buf[..n]);
                drop(buf);
                ctx.after_core();
                if received.is_err() {
                    return Poll::Ready(End::Drop);
                }
            }
            Poll::Pending => return Poll::Pending,
        }
    }
}
