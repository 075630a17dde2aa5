//! One shard's link to the bridge: connects to its Unix socket, moves link frames between the
//! socket and the core, and reconnects with backoff when the bridge goes away. The core decides
//! what the link means (`ringcast_core::shard::bridge`); this task only carries bytes.

use std::path::PathBuf;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use futures_lite::{AsyncRead, AsyncWrite};
use glommio::net::UnixStream;
use ringcast_core::backoff::Backoff;
use ringcast_core::link;
use tracing::{info, warn};

use crate::shard_ctx::ShardCtx;
use ringcast_core::limits::{
    LINK_ATTEMPTS_BEFORE_WARNING, LINK_READS_PER_POLL_MAX, LINK_READ_CHUNK_BYTES,
};

/// Keeps the shard linked to the bridge at `path` for the life of the shard.
pub async fn run(ctx: Rc<ShardCtx>, path: PathBuf) {
    let shard = ctx.core.borrow().index();
    let mut backoff = Backoff::reconnect();
    let mut failed_attempts: u32 = 0;
    loop {
        match UnixStream::connect(&path).await {
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
            Err(err) => {
                failed_attempts = failed_attempts.saturating_add(1);
                if failed_attempts == LINK_ATTEMPTS_BEFORE_WARNING {
                    warn!(shard, path = %path.display(), %err,
                        "bridge not reachable: serving this node alone, retrying");
                }
            }
        }
        glommio::timer::sleep(Duration::from_millis(backoff.next_delay_ms())).await;
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
