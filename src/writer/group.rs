//! Group commit of UPDATEs: the UPDATEs that arrive while one commit runs
//! are applied together, in the order they arrived, and committed in ONE
//! SQLite transaction (one fsync), as Knot does (`events/handlers/update.c`).
//!
//! One writer per zone, fed by a queue, present only while there is work:
//! an UPDATE is queued with a oneshot channel for its answer; the first
//! one queued while no writer runs starts it (tokio's blocking pool, or
//! the caller's own thread for [`ZoneHandle::write`]). The writer takes
//! the zone's writer lock, then the whole queue (what arrived while it
//! waited for the lock, at most [`MAX_BATCH`]), builds each UPDATE's
//! change on the state the one before it left
//! (`ZoneHandle::commit_updates`: prerequisites, ACL and limits checked
//! against that state; a refused or empty one is dropped from the batch
//! and answered as such), signs the batch once, commits it through the
//! one tail (`ZoneHandle::commit_staged`), answers each UPDATE on its
//! channel, and goes on with what queued meanwhile; it ends when the
//! queue is empty. The UPDATEs' own tasks never wait on a thread: they
//! await their answer, so a batch costs one thread wake-up, not one per
//! UPDATE. An UPDATE on an idle zone starts the writer for a batch of one.
//!
//! Each UPDATE keeps its own serial, journal entry and audit row (IXFR
//! and the audit log stay exact); the batch is signed, published and
//! NOTIFY woken once. A failed commit fails every UPDATE of the batch and
//! changes nothing in memory; a writer that panics answers its batch
//! `Aborted` and goes on with the next.

use std::collections::VecDeque;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::oneshot;

use super::{UpdateDraft, WriteError, Written, ZoneHandle};

/// At most this many UPDATEs in one commit; the rest wait for the next.
pub(super) const MAX_BATCH: usize = 256;

type Answer = Result<Written, WriteError>;

/// The queue of one zone's UPDATEs.
#[derive(Default)]
pub(super) struct Group {
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    queue: VecDeque<(oneshot::Sender<Answer>, UpdateDraft)>,
    /// A writer runs (committing a batch, or waiting for the writer lock
    /// to). While one does, the queue only grows between its batches; it
    /// clears this when it finds the queue empty: the queue is empty
    /// whenever no writer runs.
    leading: bool,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// What a running writer holds: if it ends other than by finding the
/// queue empty, the UPDATEs still queued are answered `Aborted` (their
/// channels close) and the next one queued starts a new writer, so no
/// UPDATE waits forever.
struct Lead<'a> {
    zone: &'a ZoneHandle,
    done: bool,
}

impl Drop for Lead<'_> {
    fn drop(&mut self) {
        if !self.done {
            self.zone.group.abandon(self.zone);
        }
    }
}

/// A writer asked of tokio's blocking pool: if the pool drops it without
/// running it (the runtime shuts down), the queue is abandoned as by
/// [`Lead`].
struct Start(Option<Arc<ZoneHandle>>);

impl Drop for Start {
    fn drop(&mut self) {
        if let Some(zone) = self.0.take() {
            zone.group.abandon(&zone);
        }
    }
}

/// The answer a closed channel stands for: the writer went away without
/// answering (see [`Lead`]).
fn received(answer: Result<Answer, oneshot::error::RecvError>) -> Answer {
    answer.unwrap_or(Err(WriteError::Aborted))
}

impl Group {
    /// UPDATEs queued now (for tests).
    #[cfg(test)]
    pub(super) fn queued(&self) -> usize {
        lock(&self.state).queue.len()
    }

    /// Queue `draft`; the channel its answer comes on, and whether the
    /// caller must start the writer (none runs).
    fn enqueue(&self, zone: &ZoneHandle, draft: UpdateDraft) -> (oneshot::Receiver<Answer>, bool) {
        let (tx, rx) = oneshot::channel();
        let mut st = lock(&self.state);
        st.queue.push_back((tx, draft));
        zone.metrics.updates_waiting.fetch_add(1, Ordering::Relaxed);
        let start = !std::mem::replace(&mut st.leading, true);
        (rx, start)
    }

    /// No writer will take what is queued: answer it `Aborted` (the
    /// channels close) and let the next UPDATE start a writer.
    fn abandon(&self, zone: &ZoneHandle) {
        let mut st = lock(&self.state);
        let dropped = st.queue.len();
        st.queue.clear();
        st.leading = false;
        zone.metrics
            .updates_waiting
            .fetch_sub(dropped as u64, Ordering::Relaxed);
    }

    /// Be the zone's writer until the queue is empty. Blocking.
    fn lead(&self, zone: &ZoneHandle) {
        let mut lead = Lead { zone, done: false };
        loop {
            let mut store = zone.lock_store();
            // Taken only now: what queued while the lock was busy joins.
            let (answers, drafts): (Vec<_>, Vec<_>) = {
                let mut st = lock(&self.state);
                if st.queue.is_empty() {
                    st.leading = false;
                    lead.done = true;
                    return;
                }
                let n = st.queue.len().min(MAX_BATCH);
                st.queue.drain(..n).unzip()
            };
            let n = answers.len();
            let results =
                catch_unwind(AssertUnwindSafe(|| zone.commit_updates(&mut store, drafts)));
            drop(store);
            zone.metrics
                .updates_waiting
                .fetch_sub(n as u64, Ordering::Relaxed);
            match results {
                Ok(results) => {
                    for (tx, answer) in answers.into_iter().zip(results) {
                        // A requester that went away needs no answer.
                        let _ = tx.send(answer);
                    }
                }
                // Whether the batch was committed is not known (it is not
                // served until a restart if it was): each is `Aborted`.
                Err(_) => {
                    tracing::error!(zone = %zone.origin, updates = n, "the zone writer panicked while applying a batch of UPDATEs");
                }
            }
        }
    }

    /// Apply `draft` to `zone` in the next batch; returns once the commit
    /// that holds it is durable (or failed). Blocking: when no writer
    /// runs, this thread is the writer until the queue is empty.
    pub(super) fn submit_blocking(&self, zone: &ZoneHandle, draft: UpdateDraft) -> Answer {
        let (rx, start) = self.enqueue(zone, draft);
        if start {
            self.lead(zone);
        }
        received(rx.blocking_recv())
    }

    /// Apply `draft` to `zone` in the next batch; resolves once the commit
    /// that holds it is durable (or failed). When no writer runs, one is
    /// started on tokio's blocking pool.
    pub(super) async fn submit(zone: Arc<ZoneHandle>, draft: UpdateDraft) -> Answer {
        let (rx, start) = zone.group.enqueue(&zone, draft);
        if start {
            let start = Start(Some(zone.clone()));
            tokio::task::spawn_blocking(move || {
                let mut start = start;
                if let Some(writer) = start.0.take() {
                    writer.group.lead(&writer);
                }
            });
        }
        received(rx.await)
    }
}
