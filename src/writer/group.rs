//! Group commit of UPDATEs: the UPDATEs that arrive while one commit runs
//! are applied together, in the order they arrived, and committed in ONE
//! SQLite transaction (one fsync), as Knot does (`events/handlers/update.c`).
//!
//! There is no writer thread: each UPDATE's own (blocking) thread queues
//! it and, when no other thread is leading, leads. A leader takes the
//! zone's writer lock, then the whole queue (what arrived while it waited
//! for the lock, its own UPDATE included, at most [`MAX_BATCH`]), builds
//! each UPDATE's change on the state the one before it left
//! (`ZoneHandle::stage_updates`: prerequisites, ACL and limits checked
//! against that state; a refused or empty one is dropped from the batch
//! and answered as such), commits the batch through the one tail
//! (`ZoneHandle::commit_staged`), and hands each waiting thread its
//! answer. An idle zone pays two uncontended mutexes more than a
//! commit on its own.
//!
//! Each UPDATE keeps its own serial, journal entry and audit row (IXFR
//! from any serial in between and the audit log stay exact); the snapshot
//! is published and NOTIFY woken once per batch. A failed commit fails
//! every UPDATE of the batch and changes nothing in memory.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::{Condvar, Mutex, MutexGuard};

use super::{UpdateDraft, WriteError, Written, ZoneHandle};

/// At most this many UPDATEs in one commit; the rest wait for the next.
pub(super) const MAX_BATCH: usize = 256;

/// The queue of one zone's UPDATEs and the answers not yet collected.
#[derive(Default)]
pub(super) struct Group {
    state: Mutex<State>,
    answered: Condvar,
}

#[derive(Default)]
struct State {
    next_ticket: u64,
    queue: Vec<(u64, UpdateDraft)>,
    answers: HashMap<u64, Result<Written, WriteError>>,
    /// A thread is committing a batch (or waiting for the writer lock to).
    leading: bool,
}

/// What a leader holds: on unwind (a panic while it held UPDATEs), every
/// UPDATE of its batch not answered yet is answered `Aborted`, and the
/// lead is given up, so no thread waits forever.
struct Lead<'a> {
    group: &'a Group,
    waiting: &'a std::sync::atomic::AtomicU64,
    /// The leader's own UPDATE: its thread is the one unwinding.
    own: u64,
    tickets: Vec<u64>,
    done: bool,
}

impl Drop for Lead<'_> {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        let mut st = self.group.lock();
        self.waiting
            .fetch_sub(self.tickets.len() as u64, Ordering::Relaxed);
        for t in self.tickets.drain(..).filter(|t| *t != self.own) {
            st.answers.entry(t).or_insert(Err(WriteError::Aborted));
        }
        st.leading = false;
        drop(st);
        self.group.answered.notify_all();
    }
}

impl Group {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// UPDATEs queued now (for tests).
    #[cfg(test)]
    pub(super) fn queued(&self) -> usize {
        self.lock().queue.len()
    }

    /// Apply `draft` to `zone` in the next batch; returns once the commit
    /// that holds it is durable (or failed). Blocking.
    pub(super) fn submit(
        &self,
        zone: &ZoneHandle,
        draft: UpdateDraft,
    ) -> Result<Written, WriteError> {
        let waiting = &zone.metrics.updates_waiting;
        let mut st = self.lock();
        let ticket = st.next_ticket;
        st.next_ticket += 1;
        st.queue.push((ticket, draft));
        waiting.fetch_add(1, Ordering::Relaxed);
        loop {
            if let Some(answer) = st.answers.remove(&ticket) {
                return answer;
            }
            if st.leading {
                st = self.answered.wait(st).unwrap_or_else(|p| p.into_inner());
                continue;
            }
            // Lead: the queue holds this UPDATE (only a leader takes from
            // it, and this one's answer is not in yet).
            st.leading = true;
            drop(st);
            let mut lead = Lead {
                group: self,
                waiting,
                own: ticket,
                tickets: Vec::new(),
                done: false,
            };
            let answers = {
                let mut store = zone.lock_store();
                // Taken only now: what queued while the lock was busy joins.
                let batch: Vec<(u64, UpdateDraft)> = {
                    let mut st = self.lock();
                    let n = st.queue.len().min(MAX_BATCH);
                    st.queue.drain(..n).collect()
                };
                lead.tickets = batch.iter().map(|(t, _)| *t).collect();
                zone.commit_updates(&mut store, batch)
            };
            st = self.lock();
            lead.done = true;
            waiting.fetch_sub(answers.len() as u64, Ordering::Relaxed);
            st.answers.extend(answers);
            st.leading = false;
            self.answered.notify_all();
        }
    }
}
