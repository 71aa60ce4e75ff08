//! What the OPT record of an answer carries beyond the payload size and
//! the DO bit: Extended DNS Errors (RFC 8914) on refusals and failures, and
//! our name server identifier (RFC 5001) when one is configured and asked
//! for. Both go only into answers to requests that had EDNS (RFC 6891
//! §6.1.1: no OPT without one in the request), which `response` decides.
//!
//! The reasons a request is refused are typed where they are decided
//! (`metrics::RefusalReason`, `request::Rejected`); [`Ede::for_refusal`]
//! maps them to an INFO-CODE once. The codes are those BIND and Knot send:
//! 18 Prohibited for a policy refusal (BIND's ACL refusals), 20 Not
//! Authoritative for a name or zone we do not serve (Knot's), 14 Not Ready
//! while shutting down. The answer says which kind of refusal it was and
//! nothing of the policy behind it: no EXTRA-TEXT names a key, an ACL, a
//! network or a limit (the server log has those). The one exception is a
//! refused dns-persist-01 value: 18 Prohibited with a text that says what
//! is wrong with the client's own value (`persist::Problem`), which names
//! no policy and tells the sender what to fix.
//!
//! # Limitations
//! hickory-proto 0.26 has no EDE type: the option is written as raw
//! option data (OPTION-CODE 15: INFO-CODE, then optional UTF-8 EXTRA-TEXT).

use hickory_proto::rr::rdata::opt::{EdnsCode, EdnsOption, NSIDPayload};
use hickory_server::server::Request;

use crate::metrics::RefusalReason;

/// OPTION-CODE of Extended DNS Errors (RFC 8914 §2).
pub const EDE_OPTION_CODE: u16 = 15;

/// An Extended DNS Error we send: the INFO-CODE and its EXTRA-TEXT.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ede {
    /// 18 Prohibited: refused by policy (the write gate, the ACL, a limit,
    /// the zone's transfer ACL, an unsigned UPDATE).
    Prohibited,
    /// 20 Not Authoritative: the name, class or zone is not served here.
    NotAuthoritative,
    /// 14 Not Ready: the server is shutting down.
    NotReady,
    /// 0 Other: the change could not be committed; nothing changed.
    NotCommitted,
    /// 18 Prohibited, with what is wrong with a dns-persist-01 value.
    Persist(crate::persist::Problem),
}

impl Ede {
    /// The INFO-CODE (RFC 8914 §4).
    pub fn code(self) -> u16 {
        match self {
            Ede::Prohibited | Ede::Persist(_) => 18,
            Ede::NotAuthoritative => 20,
            Ede::NotReady => 14,
            Ede::NotCommitted => 0,
        }
    }

    /// The EXTRA-TEXT, for the codes that need words (never policy).
    pub fn text(self) -> Option<&'static str> {
        match self {
            Ede::NotCommitted => Some("not committed; nothing changed"),
            Ede::Persist(p) => Some(p.as_str()),
            _ => None,
        }
    }

    /// The EDE an answer refused for `reason` carries, if any: FORMERR,
    /// prerequisite failures and TSIG errors say enough by their RCODE
    /// and TSIG error.
    pub fn for_refusal(reason: RefusalReason) -> Option<Ede> {
        use RefusalReason as R;
        match reason {
            R::Unsigned
            | R::NoAcl
            | R::Network
            | R::Acl
            | R::Limit
            | R::RateLimited
            | R::Persist => Some(Ede::Prohibited),
            R::NotAuthoritative => Some(Ede::NotAuthoritative),
            R::ShuttingDown => Some(Ede::NotReady),
            R::Tsig | R::Format | R::Prerequisite => None,
        }
    }

    /// The option as it goes into the OPT record.
    pub fn option(self) -> EdnsOption {
        let mut data = self.code().to_be_bytes().to_vec();
        if let Some(text) = self.text() {
            data.extend_from_slice(text.as_bytes());
        }
        EdnsOption::Unknown(EDE_OPTION_CODE, data)
    }
}

/// The NSID option for `request`, when it asked for one (an empty NSID
/// option, RFC 5001 §2.1) and `nsid` is configured.
pub fn nsid_option(request: &Request, nsid: Option<&[u8]>) -> Option<EdnsOption> {
    let asked = request
        .edns
        .as_ref()
        .is_some_and(|e| e.options().get(EdnsCode::NSID).is_some());
    let payload = NSIDPayload::new(nsid?.to_vec()).ok()?;
    asked.then_some(EdnsOption::NSID(payload))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ede_is_info_code_then_text() {
        match Ede::Prohibited.option() {
            EdnsOption::Unknown(15, data) => assert_eq!(data, vec![0, 18]),
            other => panic!("{other:?}"),
        }
        match Ede::NotCommitted.option() {
            EdnsOption::Unknown(15, data) => {
                assert_eq!(&data[..2], &[0, 0]);
                assert_eq!(&data[2..], b"not committed; nothing changed");
            }
            other => panic!("{other:?}"),
        }
        match Ede::Persist(crate::persist::Problem::Expired).option() {
            EdnsOption::Unknown(15, data) => {
                assert_eq!(&data[..2], &[0, 18]);
                assert_eq!(&data[2..], b"dns-persist-01 persistUntil is in the past");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn policy_refusals_are_one_code_and_format_errors_none() {
        for r in [
            RefusalReason::Unsigned,
            RefusalReason::NoAcl,
            RefusalReason::Network,
            RefusalReason::Acl,
            RefusalReason::Limit,
        ] {
            assert_eq!(Ede::for_refusal(r), Some(Ede::Prohibited), "{r:?}");
        }
        assert_eq!(Ede::for_refusal(RefusalReason::Format), None);
        assert_eq!(
            Ede::for_refusal(RefusalReason::ShuttingDown),
            Some(Ede::NotReady)
        );
    }
}
