//! How old a challenge record is, in a way a clock step cannot change
//! while the process runs: the age of a record added during this run is
//! the monotonic time since it was added; the age of one found in the
//! database at start is its wall-clock age at start (the only reading
//! that survives a restart) plus the monotonic time since. A wall clock
//! stepped forward past `challenge-max-age` then deletes nothing, and one
//! stepped back keeps nothing alive longer.
//!
//! What remains: across a restart ages are wall time, so a step between
//! two runs (or a wrong clock at boot) still counts.

use std::collections::HashMap;

use hickory_proto::rr::{Name, Record, RecordType};

use crate::store::AgedRecord;
use crate::zone::change::{Change, Source, rdata_bytes};

/// The readings at start and when each record of this run was added.
#[derive(Debug)]
pub(super) struct Ages {
    /// Wall and monotonic time when the zone was opened.
    wall0: u64,
    mono0: u64,
    /// Dynamic TXT records added during this run: monotonic time of the add.
    added: HashMap<(Name, Vec<u8>), u64>,
}

fn id(r: &Record) -> (Name, Vec<u8>) {
    (r.name.to_lowercase(), rdata_bytes(&r.data))
}

impl Ages {
    pub(super) fn new(wall: u64, mono: u64) -> Self {
        Self {
            wall0: wall,
            mono0: mono,
            added: HashMap::new(),
        }
    }

    /// Note a committed change made at monotonic time `mono`.
    pub(super) fn committed(&mut self, change: &Change, mono: u64) {
        if change.source != Source::Dynamic {
            return;
        }
        for r in change
            .removed
            .iter()
            .filter(|r| r.record_type() == RecordType::TXT)
        {
            self.added.remove(&id(r));
        }
        for r in change
            .added
            .iter()
            .filter(|r| r.record_type() == RecordType::TXT)
        {
            self.added.insert(id(r), mono);
        }
    }

    /// Seconds `a` has existed, at monotonic time `mono`.
    pub(super) fn age(&self, a: &AgedRecord, mono: u64) -> u64 {
        match self.added.get(&id(&a.record)) {
            Some(at) => mono.saturating_sub(*at),
            None => self
                .wall0
                .saturating_sub(a.added_at)
                .saturating_add(mono.saturating_sub(self.mono0)),
        }
    }
}

#[cfg(test)]
mod tests {
    use hickory_proto::rr::RData;

    use super::*;
    use crate::zone::change::{Action, Audit};

    fn txt(v: &str) -> Record {
        Record::from_rdata(
            Name::from_ascii("_acme-challenge.mx1.z.test.").unwrap(),
            60,
            RData::try_from_str(RecordType::TXT, v).unwrap(),
        )
    }

    fn aged(v: &str, added_at: u64) -> AgedRecord {
        AgedRecord {
            record: txt(v),
            added_at,
        }
    }

    #[test]
    fn ages_are_monotonic_in_a_run_and_wall_time_before_it() {
        // Opened at wall 10,000, monotonic 50.
        let mut ages = Ages::new(10_000, 50);
        // Found in the database, added at wall 9,000: 1,000 s old at start.
        assert_eq!(ages.age(&aged("old", 9_000), 50), 1_000);
        assert_eq!(ages.age(&aged("old", 9_000), 80), 1_030);
        // One from the future (the clock went back across the restart).
        assert_eq!(ages.age(&aged("ahead", 20_000), 80), 30);
        // Added in this run at monotonic 100, whatever its wall time says.
        let change = Change {
            serial_from: 1,
            serial_to: 2,
            removed: vec![],
            added: vec![txt("new")],
            source: Source::Dynamic,
            audit: Audit::server(Action::Update, "add".into()),
        };
        ages.committed(&change, 100);
        assert_eq!(ages.age(&aged("new", 999_999), 100), 0);
        assert_eq!(ages.age(&aged("new", 0), 160), 60);
    }
}
