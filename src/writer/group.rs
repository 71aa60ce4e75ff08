//! Group commit of UPDATEs: the UPDATEs that arrive while one commit runs
//! are applied together, in the order they arrived, and committed in ONE
//! SQLite transaction (one fsync), as Knot does (`events/handlers/update.c`).
//!
//! There is no writer thread: each UPDATE's own (blocking) thread queues
//! it and, when no other thread is leading, leads. A leader takes the
//! zone's writer lock, then the whole queue (what arrived while it waited
//! for the lock, its own UPDATE included, at most [`MAX_BATCH`]), builds
//! each UPDATE's change on the state the one before it left
//! (`ZoneHandle::commit_updates`: prerequisites, ACL and limits checked
//! against that state; a refused or empty one is dropped from the batch
//! and answered as such), commits the batch through the one tail
//! (`ZoneHandle::commit_staged`), wakes each thread of the batch once,
//! with its answer, and hands the lead to the first UPDATE that queued
//! meanwhile (no thread is woken for nothing). An UPDATE on an idle zone
//! pays two uncontended mutexes more than a commit on its own.
//!
//! Each UPDATE keeps its own serial, journal entry and audit row (IXFR
//! from any serial in between and the audit log stay exact); the snapshot
//! is published and NOTIFY woken once per batch. A failed commit fails
//! every UPDATE of the batch and changes nothing in memory.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

use super::{UpdateDraft, WriteError, Written, ZoneHandle};

/// At most this many UPDATEs in one commit; the rest wait for the next.
pub(super) const MAX_BATCH: usize = 256;

/// The queue of one zone's UPDATEs.
#[derive(Default)]
pub(super) struct Group {
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    queue: VecDeque<(Arc<Slot>, UpdateDraft)>,
    /// A thread is committing a batch (or waiting for the writer lock to).
    /// While one is, the queue only grows; when it is done it hands the
    /// lead to the first UPDATE still queued, or clears this: the queue is
    /// empty whenever no thread leads.
    leading: bool,
}

/// Where one waiting UPDATE's thread sleeps: woken once, with its answer
/// or with the lead.
#[derive(Default)]
struct Slot {
    turn: Mutex<Turn>,
    woken: Condvar,
}

#[derive(Default)]
enum Turn {
    #[default]
    Wait,
    Lead,
    Done(Result<Written, WriteError>),
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Slot {
    fn wake(&self, turn: Turn) {
        *lock(&self.turn) = turn;
        self.woken.notify_one();
    }
}

/// What a leader holds: on unwind (a panic while it held UPDATEs), every
/// UPDATE of its batch not answered yet is answered `Aborted` and the lead
/// is passed on, so no thread waits forever.
struct Lead<'a> {
    group: &'a Group,
    own: &'a Arc<Slot>,
    waiting: &'a AtomicU64,
    batch: Vec<Arc<Slot>>,
    done: bool,
}

impl Drop for Lead<'_> {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        if self.batch.is_empty() {
            // Not taken from the queue yet: take it out, not to be led.
            lock(&self.group.state)
                .queue
                .retain(|(s, _)| !Arc::ptr_eq(s, self.own));
            self.batch.push(self.own.clone());
        }
        self.waiting
            .fetch_sub(self.batch.len() as u64, Ordering::Relaxed);
        for slot in self.batch.drain(..) {
            slot.wake(Turn::Done(Err(WriteError::Aborted)));
        }
        self.group.pass_lead();
    }
}

impl Group {
    /// UPDATEs queued now (for tests).
    #[cfg(test)]
    pub(super) fn queued(&self) -> usize {
        lock(&self.state).queue.len()
    }

    /// Give the lead to the first UPDATE still queued, or end it.
    fn pass_lead(&self) {
        let mut st = lock(&self.state);
        match st.queue.front() {
            Some((next, _)) => next.wake(Turn::Lead),
            None => st.leading = false,
        }
    }

    /// Apply `draft` to `zone` in the next batch; returns once the commit
    /// that holds it is durable (or failed). Blocking.
    pub(super) fn submit(
        &self,
        zone: &ZoneHandle,
        draft: UpdateDraft,
    ) -> Result<Written, WriteError> {
        let waiting = &zone.metrics.updates_waiting;
        let slot = Arc::new(Slot::default());
        let lead_now = {
            let mut st = lock(&self.state);
            st.queue.push_back((slot.clone(), draft));
            waiting.fetch_add(1, Ordering::Relaxed);
            !std::mem::replace(&mut st.leading, true)
        };
        if !lead_now {
            let mut turn = lock(&slot.turn);
            loop {
                match std::mem::take(&mut *turn) {
                    Turn::Wait => {
                        turn = slot.woken.wait(turn).unwrap_or_else(|p| p.into_inner());
                    }
                    Turn::Done(answer) => return answer,
                    Turn::Lead => break,
                }
            }
        }
        // Lead: this UPDATE is first in the queue (a leader takes from the
        // front, and hands the lead to the front).
        let mut lead = Lead {
            group: self,
            own: &slot,
            waiting,
            batch: Vec::new(),
            done: false,
        };
        let answers = {
            let mut store = zone.lock_store();
            // Taken only now: what queued while the lock was busy joins.
            let batch: Vec<(Arc<Slot>, UpdateDraft)> = {
                let mut st = lock(&self.state);
                let n = st.queue.len().min(MAX_BATCH);
                st.queue.drain(..n).collect()
            };
            let (slots, drafts): (Vec<_>, Vec<_>) = batch.into_iter().unzip();
            lead.batch = slots;
            zone.commit_updates(&mut store, drafts)
        };
        lead.done = true;
        waiting.fetch_sub(answers.len() as u64, Ordering::Relaxed);
        let mut own = None;
        for (s, answer) in lead.batch.iter().zip(answers) {
            if Arc::ptr_eq(s, &slot) {
                own = Some(answer);
            } else {
                s.wake(Turn::Done(answer));
            }
        }
        self.pass_lead();
        own.expect("a leader's UPDATE is in its batch")
    }
}
