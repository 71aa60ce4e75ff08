//! RFC 1982 serial number arithmetic, in one place: the zone's SOA serial
//! (compared by IXFR, NOTIFY, the propagation checks and `wait`) and the
//! RRSIG inception and expiration times, which RFC 4034 §3.1.5 makes serial
//! numbers too.
//!
//! Built on hickory's [`SerialNumber`], whose ordering is RFC 1982 §3.2's
//! comparison; this module only gives it the names the callers need.
//!
//! # Limitations
//!
//! RFC 1982 §3.2 leaves two serials exactly 2^31 apart undefined: neither is
//! at least the other here (so a secondary that far off is never in step).

use hickory_proto::rr::SerialNumber;

/// The serial after a change: `s + 1`, wrapping past 2^32 - 1 to 0
/// (RFC 1982 §3.1).
pub fn next(s: u32) -> u32 {
    (SerialNumber::new(s) + SerialNumber::new(1)).get()
}

/// Is `a` equal to or greater than `b` (RFC 1982 §3.2)? "Has the secondary
/// caught up": `at_least(theirs, ours)`.
pub fn at_least(a: u32, b: u32) -> bool {
    SerialNumber::new(a) >= SerialNumber::new(b)
}

/// Is `a` strictly greater than `b` (RFC 1982 §3.2)?
pub fn after(a: u32, b: u32) -> bool {
    SerialNumber::new(a) > SerialNumber::new(b)
}

/// How far `a` is ahead of `b` (negative when behind): for RRSIG times, the
/// seconds from `b` to `a`. Exactly 2^31 apart (undefined) reads as behind.
pub fn ahead(a: u32, b: u32) -> i64 {
    i64::from(a.wrapping_sub(b) as i32)
}

#[cfg(test)]
mod tests {
    use super::*;

    const HALF: u32 = 1 << 31;

    #[test]
    fn increment_wraps_past_the_top() {
        assert_eq!(next(0), 1);
        assert_eq!(next(41), 42);
        assert_eq!(next(u32::MAX), 0);
        // RFC 1982 §3.1: the incremented serial is greater than the old one,
        // wrapped or not.
        for s in [0, 1, HALF - 1, HALF, u32::MAX] {
            assert!(after(next(s), s), "{s}");
        }
    }

    #[test]
    fn comparison_follows_rfc_1982() {
        // Equal
        assert!(at_least(5, 5) && !after(5, 5));
        assert!(at_least(u32::MAX, u32::MAX));
        // Plainly ordered
        assert!(at_least(6, 5) && after(6, 5));
        assert!(!at_least(4, 5) && !after(4, 5));
        // Across the wrap: 2 comes after 2^32 - 4.
        assert!(at_least(2, u32::MAX - 3) && after(2, u32::MAX - 3));
        assert!(!at_least(u32::MAX - 3, 2));
        assert!(after(0, u32::MAX));
        // The largest step that still counts as later: 2^31 - 1.
        assert!(after(HALF - 1, 0) && !at_least(0, HALF - 1));
        assert!(after(HALF, 1) && !at_least(1, HALF));
        // Exactly 2^31 apart is undefined: neither way.
        for (a, b) in [(HALF, 0), (0, HALF), (u32::MAX, HALF - 1)] {
            assert!(!at_least(a, b) && !after(a, b), "{a} {b}");
        }
        // One past half the space is behind again.
        assert!(!at_least(HALF + 1, 0) && after(0, HALF + 1));
    }

    #[test]
    fn distance_is_signed_and_wraps() {
        assert_eq!(ahead(10, 4), 6);
        assert_eq!(ahead(4, 10), -6);
        assert_eq!(ahead(3, u32::MAX - 2), 6);
        assert_eq!(ahead(HALF - 1, 0), i64::from(i32::MAX));
        assert_eq!(ahead(HALF, 0), i64::from(i32::MIN));
    }
}
