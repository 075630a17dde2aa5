//! One FIFO per key, keys concurrent: what channel functions (a channel's pipelines) and
//! WebSocket-over-HTTP (a connection's events) need to keep their order while different
//! channels or connections run side by side. [`OrderedQueues::admit`] puts a job on its key's
//! queue or says which bound refuses it (jobs in all, per app, bytes, per key); the first job
//! of an idle key gets a [`KeyWorker`], whose task takes the key's jobs one after another until
//! the queue is empty. Each admitted job holds its share of the bounds until it is dropped
//! (answered), also when its task is aborted.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use ahash::AHashMap;
use tokio::time::Instant;

/// A job the queues can order: its app, its key within the app, what it holds and when it
/// arrived (its deadline runs from there).
pub trait OrderedJob {
    /// The app's id (for the per-app bound).
    fn app_id(&self) -> &str;
    /// The key within the app whose jobs run in order (a channel, a connection).
    fn order_key(&self) -> &str;
    /// Bytes it holds in memory.
    fn held_bytes(&self) -> usize;
    /// When the link reader handed it over.
    fn received(&self) -> Instant;
}

/// The bounds on the jobs a node holds (queued or running).
#[derive(Debug, Clone, Copy)]
pub struct OrderBounds {
    /// Jobs, all keys together.
    pub jobs_max: usize,
    /// Of those, one app's.
    pub app_jobs_max: usize,
    /// Bytes they hold.
    pub bytes_max: usize,
    /// Jobs of one key waiting behind its running one.
    pub key_queue_max: usize,
    /// From a job's arrival to its answer, at most.
    pub deadline: Duration,
}

/// Which bound refused a job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// [`OrderBounds::jobs_max`].
    Jobs,
    /// [`OrderBounds::bytes_max`].
    Bytes,
    /// [`OrderBounds::app_jobs_max`].
    App,
    /// [`OrderBounds::key_queue_max`].
    Key,
}

/// What [`OrderedQueues::admit`] did with a job.
pub enum Admission<J> {
    /// Behind its key's running job.
    Queued,
    /// The key was idle: a task must run this worker.
    NewKey(KeyWorker<J>),
    /// Past a bound: to be answered at once.
    Refused(J, Refusal),
}

/// A job admitted to its key's queue, with its deadline and its share of the bounds (given
/// back when this is dropped: keep it until the job is answered).
pub struct Queued<J> {
    /// The job.
    pub job: J,
    /// When it must be answered by.
    pub deadline: Instant,
    _slot: Slot,
}

/// The jobs the node holds and the bytes they hold. Only [`OrderedQueues::admit`] counts them
/// in, so its check-then-add cannot overshoot; each job's [`Slot`] counts it out. Atomics, not
/// the queues' lock: a slot is dropped wherever its job ends, also while that lock is held.
#[derive(Debug, Default)]
struct Held {
    jobs: AtomicUsize,
    bytes: AtomicUsize,
    /// Jobs per app; an app leaves the map with its last one, so it never holds more entries
    /// than jobs.
    by_app: Mutex<AHashMap<String, usize>>,
}

/// A poisoned lock only means a holder panicked between two plain map or queue operations.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// One job's share of [`Held`]; released on drop, so also when its task is aborted.
struct Slot {
    held: Arc<Held>,
    bytes: usize,
    app_id: String,
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.held.jobs.fetch_sub(1, Ordering::Relaxed);
        self.held.bytes.fetch_sub(self.bytes, Ordering::Relaxed);
        let mut by_app = lock(&self.held.by_app);
        if let Some(count) = by_app.get_mut(&self.app_id) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                by_app.remove(&self.app_id);
            }
        }
    }
}

/// App id and key.
type Key = (String, String);

/// Each busy key's jobs waiting behind the one running. A key has an entry exactly while its
/// worker runs: the worker removes it when it finds the queue empty, under the same lock as
/// [`OrderedQueues::admit`] looks for it, so every job is either taken by the running worker or
/// starts a new one. At most `jobs_max` entries (each holds or runs one).
type Queues<J> = Arc<Mutex<AHashMap<Key, VecDeque<Queued<J>>>>>;

/// The node's ordered queues of one kind of job.
pub struct OrderedQueues<J> {
    queues: Queues<J>,
    held: Arc<Held>,
    bounds: OrderBounds,
}

impl<J: OrderedJob> OrderedQueues<J> {
    /// Empty queues under `bounds`.
    pub fn new(bounds: OrderBounds) -> Self {
        Self {
            queues: Arc::new(Mutex::new(AHashMap::new())),
            held: Arc::default(),
            bounds,
        }
    }

    /// Puts `job` on its key's queue, or says which bound refuses it.
    pub fn admit(&self, job: J) -> Admission<J> {
        let (held, bounds) = (&self.held, &self.bounds);
        let bytes = job.held_bytes();
        if held.jobs.load(Ordering::Relaxed) >= bounds.jobs_max {
            return Admission::Refused(job, Refusal::Jobs);
        }
        if held.bytes.load(Ordering::Relaxed).saturating_add(bytes) > bounds.bytes_max {
            return Admission::Refused(job, Refusal::Bytes);
        }
        let app_count = lock(&held.by_app).get(job.app_id()).copied().unwrap_or(0);
        if app_count >= bounds.app_jobs_max {
            return Admission::Refused(job, Refusal::App);
        }
        let key = (job.app_id().to_owned(), job.order_key().to_owned());
        let mut queues = lock(&self.queues);
        let waiting = queues.get_mut(&key);
        if waiting
            .as_ref()
            .is_some_and(|waiting| waiting.len() >= bounds.key_queue_max)
        {
            return Admission::Refused(job, Refusal::Key);
        }
        held.jobs.fetch_add(1, Ordering::Relaxed);
        held.bytes.fetch_add(bytes, Ordering::Relaxed);
        *lock(&held.by_app).entry(key.0.clone()).or_insert(0) += 1;
        let slot = Slot {
            held: Arc::clone(held),
            bytes,
            app_id: key.0.clone(),
        };
        let queued = Queued {
            deadline: job.received() + bounds.deadline,
            job,
            _slot: slot,
        };
        match waiting {
            Some(waiting) => {
                waiting.push_back(queued);
                Admission::Queued
            }
            None => {
                queues.insert(key.clone(), VecDeque::from([queued]));
                Admission::NewKey(KeyWorker {
                    queues: Arc::clone(&self.queues),
                    key,
                    finished: false,
                })
            }
        }
    }
}

/// The right to run one key's jobs: its entry in the queues.
pub struct KeyWorker<J> {
    queues: Queues<J>,
    key: Key,
    /// The entry was removed by [`KeyWorker::next_job`].
    finished: bool,
}

impl<J> KeyWorker<J> {
    /// The key's next job; `None` once its queue is empty, the entry then removed in the same
    /// lock (a job arriving after that starts a new worker). Drop the job once it is answered:
    /// its share of the bounds covers it until then.
    pub fn next_job(&mut self) -> Option<Queued<J>> {
        let mut queues = lock(&self.queues);
        if let Some(waiting) = queues.get_mut(&self.key) {
            if let Some(queued) = waiting.pop_front() {
                return Some(queued);
            }
            queues.remove(&self.key);
        }
        self.finished = true;
        None
    }
}

impl<J> Drop for KeyWorker<J> {
    fn drop(&mut self) {
        if self.finished {
            return;
        }
        // The worker ended early (its task aborted): without the entry, the key's next job
        // starts a worker again instead of waiting behind nobody. The jobs that waited here go
        // unanswered; the engine's own wait ends them. Dropped outside the lock.
        let orphans = lock(&self.queues).remove(&self.key);
        drop(orphans);
    }
}
