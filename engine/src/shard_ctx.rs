//! What one shard's tasks share: [`ShardCtx`] (the core, the connection wakers, the scratch
//! buffers and the outgoing ends of the inter-shard rings, with their overflow queue) and the
//! task that drains that overflow. The shard runtime ([`crate::shard`]) builds it; connection
//! tasks and the bridge link use it.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::rc::Rc;
use std::task::Waker;
use std::time::Instant;

use bytes::BytesMut;
use glommio::channels::channel_mesh::Senders;
use ringcast_core::limits::SHARD_RING_OVERFLOW_MESSAGES_MAX;
use ringcast_core::shard::message::ShardMessage;
use ringcast_core::shard::Shard;
use tracing::debug;

/// Everything a shard's tasks share. Single-threaded: `RefCell`s are never held across awaits.
pub struct ShardCtx {
    /// The sans-IO state machine.
    pub core: RefCell<Shard>,
    /// Waker of each connection task, by slab key, for fan-out wakeups.
    pub wakers: RefCell<Vec<Option<Waker>>>,
    /// Scratch buffer for socket reads (one per shard, borrowed only inside a poll).
    pub read_buf: RefCell<Vec<u8>>,
    /// Scratch buffer for coalesced socket writes.
    pub write_buf: RefCell<BytesMut>,
    /// Process start, the zero of the monotonic clock given to the core.
    start: Instant,
    senders: Senders<ShardMessage>,
    overflow: RefCell<Vec<VecDeque<ShardMessage>>>,
    overflow_len: Cell<usize>,
    /// The target whose popped overflow message is being awaited; new messages for it must
    /// queue behind it to keep per-target order.
    overflow_in_flight: Cell<Option<usize>>,
    overflow_waker: RefCell<Option<Waker>>,
    backpressure_waiters: RefCell<Vec<Waker>>,
    scratch_wake: RefCell<Vec<u32>>,
    scratch_outbox: RefCell<Vec<(u16, ShardMessage)>>,
    /// Waker of the bridge link task, woken when the core queues link output.
    pub link_waker: RefCell<Option<Waker>>,
}

impl ShardCtx {
    /// A shard's context around its `core`: `senders` are its ends of the rings to the
    /// `shard_count` shards; `write_buf_bytes` is the starting capacity of the write scratch.
    pub fn new(
        core: Shard,
        senders: Senders<ShardMessage>,
        shard_count: usize,
        write_buf_bytes: usize,
    ) -> ShardCtx {
        ShardCtx {
            core: RefCell::new(core),
            wakers: RefCell::new(Vec::new()),
            read_buf: RefCell::new(vec![0; 64 * 1024]),
            write_buf: RefCell::new(BytesMut::with_capacity(write_buf_bytes)),
            start: Instant::now(),
            overflow: RefCell::new((0..shard_count).map(|_| VecDeque::new()).collect()),
            senders,
            overflow_len: Cell::new(0),
            overflow_in_flight: Cell::new(None),
            overflow_waker: RefCell::new(None),
            backpressure_waiters: RefCell::new(Vec::new()),
            scratch_wake: RefCell::new(Vec::new()),
            scratch_outbox: RefCell::new(Vec::new()),
            link_waker: RefCell::new(None),
        }
    }

    /// Monotonic milliseconds since start, plus one so that 0 never names a real instant.
    pub fn now_ms(&self) -> u64 {
        self.start.elapsed().as_millis() as u64 + 1
    }

    /// After every call into the core: wake connections with new output and ship messages to
    /// other shards.
    pub fn after_core(&self) {
        let mut wake = self.scratch_wake.borrow_mut();
        let mut outbox = self.scratch_outbox.borrow_mut();
        let link_output = {
            let mut core = self.core.borrow_mut();
            core.take_wakeups(&mut wake);
            core.take_outbox(&mut outbox);
            core.has_link_output()
        };
        if link_output {
            if let Some(waker) = self.link_waker.borrow().as_ref() {
                waker.wake_by_ref();
            }
        }
        if !wake.is_empty() {
            let wakers = self.wakers.borrow();
            for key in wake.drain(..) {
                if let Some(Some(waker)) = wakers.get(key as usize) {
                    waker.wake_by_ref();
                }
            }
        }
        for (target, message) in outbox.drain(..) {
            self.send(target, message);
        }
    }

    /// Sends in order: straight into the ring when nothing is waiting for that target, else
    /// behind the waiting messages (the overflow task drains them with awaits).
    fn send(&self, target: u16, message: ShardMessage) {
        let target = usize::from(target);
        let mut overflow = self.overflow.borrow_mut();
        if overflow[target].is_empty() && self.overflow_in_flight.get() != Some(target) {
            match self.senders.try_send_to(target, message) {
                Ok(()) => return,
                Err(glommio::GlommioError::WouldBlock(glommio::ResourceType::Channel(message))) => {
                    overflow[target].push_back(message);
                }
                Err(err) => {
                    debug!(target, %err, "peer shard ring closed; message dropped");
                    return;
                }
            }
        } else {
            overflow[target].push_back(message);
        }
        self.overflow_len.set(self.overflow_len.get() + 1);
        if let Some(waker) = self.overflow_waker.borrow_mut().take() {
            waker.wake();
        }
    }

    /// True while too many cross-shard messages wait: connection tasks pause reading.
    pub fn is_backpressured(&self, waker: &Waker) -> bool {
        if self.overflow_len.get() < SHARD_RING_OVERFLOW_MESSAGES_MAX {
            return false;
        }
        self.backpressure_waiters.borrow_mut().push(waker.clone());
        true
    }

    /// Registers a connection task's waker.
    pub fn set_waker(&self, key: u32, waker: &Waker) {
        let mut wakers = self.wakers.borrow_mut();
        let index = key as usize;
        if wakers.len() <= index {
            wakers.resize(index + 1, None);
        }
        match &wakers[index] {
            Some(existing) if existing.will_wake(waker) => {}
            _ => wakers[index] = Some(waker.clone()),
        }
    }

    /// Forgets a finished connection task's waker.
    pub fn clear_waker(&self, key: u32) {
        if let Some(slot) = self.wakers.borrow_mut().get_mut(key as usize) {
            *slot = None;
        }
    }
}

/// Sends messages that found their ring full, in order, waiting for room.
pub async fn drain_overflow(ctx: Rc<ShardCtx>) {
    loop {
        let next = {
            let mut overflow = ctx.overflow.borrow_mut();
            overflow
                .iter_mut()
                .enumerate()
                .find_map(|(target, queue)| queue.pop_front().map(|m| (target, m)))
        };
        let Some((target, message)) = next else {
            futures_lite::future::poll_fn(|cx| {
                if ctx.overflow_len.get() > 0 {
                    std::task::Poll::Ready(())
                } else {
                    *ctx.overflow_waker.borrow_mut() = Some(cx.waker().clone());
                    std::task::Poll::Pending
                }
            })
            .await;
            continue;
        };
        ctx.overflow_in_flight.set(Some(target));
        if ctx.senders.send_to(target, message).await.is_err() {
            debug!(target, "peer shard ring closed; message dropped");
        }
        ctx.overflow_in_flight.set(None);
        ctx.overflow_len
            .set(ctx.overflow_len.get().saturating_sub(1));
        if ctx.overflow_len.get() < SHARD_RING_OVERFLOW_MESSAGES_MAX / 2 {
            for waker in ctx.backpressure_waiters.borrow_mut().drain(..) {
                waker.wake();
            }
        }
    }
}
