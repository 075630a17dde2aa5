//! One task per connection: moves bytes between its socket and the core. Reads go through the
//! shard's shared scratch buffer (borrowed only inside a poll, so an idle connection holds no
//! buffer); writes coalesce every queued frame into one `send` per turn; a partial write keeps
//! only the unwritten tail.

use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};
use std::time::Duration;

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

/// Serves one accepted connection until it closes.
pub async fn serve(ctx: Rc<ShardCtx>, mut stream: TcpStream, key: u32) {
    let mut pending: Option<Bytes> = None;
    let end =
        futures_lite::future::poll_fn(|cx| drive(&ctx, &mut stream, key, &mut pending, cx)).await;
    ctx.clear_waker(key);
    ctx.core.borrow_mut().handle_closed(key);
    ctx.after_core();
    if let End::Finished = end {
        // Boxed so the linger state does not enlarge every connection's task while it is open.
        Box::pin(linger(stream)).await;
    }
}

/// Half-close, then wait briefly for the peer's FIN so our last frames are not destroyed by an
/// RST (closing a socket with unread input sends one). The wait has one deadline in all, so a
/// peer that keeps sending cannot hold the socket.
async fn linger(stream: TcpStream) {
    let _ = stream.shutdown(std::net::Shutdown::Write).await;
    let deadline = std::time::Instant::now() + Duration::from_millis(CLOSE_LINGER_MS);
    let mut stream = stream;
    let mut sink = vec![0u8; 512];
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        if left.is_zero() || stream.set_read_timeout(Some(left)).is_err() {
            break;
        }
        match stream.read(&mut sink).await {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
    }
}

fn drive(
    ctx: &ShardCtx,
    stream: &mut TcpStream,
    key: u32,
    pending: &mut Option<Bytes>,
    cx: &mut Context<'_>,
) -> Poll<End> {
    ctx.set_waker(key, cx.waker());
    let mut reads = 0;
    loop {
        // 1. Write: the unwritten tail first, then everything the core has queued.
        if let Some(tail) = pending.as_mut() {
            if ctx.core.borrow().is_aborted(key) {
                return Poll::Ready(End::Drop);
            }
            match Pin::new(&mut *stream).poll_write(cx, tail) {
                Poll::Ready(Ok(0)) | Poll::Ready(Err(_)) => return Poll::Ready(End::Drop),
                Poll::Ready(Ok(n)) => {
                    tail.advance(n);
                    if tail.is_empty() {
                        *pending = None;
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
                    match Pin::new(&mut *stream).poll_write(cx, &out) {
                        Poll::Ready(Ok(n)) if n > 0 => {
                            if n < out.len() {
                                *pending = Some(Bytes::copy_from_slice(&out[n..]));
                            }
                        }
                        Poll::Ready(_) => return Poll::Ready(End::Drop),
                        Poll::Pending => *pending = Some(Bytes::copy_from_slice(&out)),
                    }
                    if pending.is_some() {
                        // The kernel's send buffer is full: from now on the queue is a backlog.
                        ctx.core.borrow_mut().set_write_blocked(key, true);
                    }
                }
                state
            };
            match state {
                OutputState::Abort | OutputState::Gone => return Poll::Ready(End::Drop),
                OutputState::Finished if pending.is_none() => return Poll::Ready(End::Finished),
                _ => {}
            }
            if pending.is_none() && ctx.core.borrow().has_output(key) {
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
                let now_ms = ctx.now_ms();
                ctx.core.borrow_mut().handle_bytes(key, &buf[..n], now_ms);
                drop(buf);
                ctx.after_core();
            }
            Poll::Pending => return Poll::Pending,
        }
    }
}
