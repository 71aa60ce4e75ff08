//! Why a TSIG check failed, and what to answer: the RCODE and the error
//! TSIG RR of RFC 8945 §5.2.1 to §5.2.4 and §5.3.2 (unsigned for BADKEY and
//! BADSIG, signed for BADTIME, replay and BADTRUNC).

use std::fmt;
use std::sync::Arc;

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::rdata::tsig::{TSIG, TsigAlgorithm, TsigError, make_tsig_record};
use hickory_proto::rr::{Name, Record};

use super::Key;
use super::wire::{message_id, sign_message, u48_bytes};

/// Why a TSIG check failed. `Display` is a short reason for logs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TsigFailure {
    /// The TSIG RR is misplaced, malformed or its MAC has an impossible size
    /// (answered FORMERR, no TSIG).
    FormErr,
    /// Unknown key name, unknown algorithm or algorithm not the key's.
    BadKey,
    /// The MAC does not verify.
    BadSig,
    /// Time Signed is outside the fudge window.
    BadTime {
        /// The server's clock when it refused.
        server_time: u64,
    },
    /// The MAC is truncated more than local policy allows.
    BadTrunc,
    /// The same signed request was already accepted within the window
    /// (answered NOTAUTH with a signed BADTIME, as §5.2.3 answers a request
    /// it considers replayed).
    Replay,
    /// Client side: the response carries no TSIG RR.
    Unsigned,
    /// Client side: the server answered with another TSIG error code.
    PeerError(u16),
}

impl TsigFailure {
    /// The TSIG Error field that goes with this failure (RFC 8945 §3), if any.
    pub fn tsig_error(self) -> Option<TsigError> {
        match self {
            Self::BadKey => Some(TsigError::BadKey),
            Self::BadSig => Some(TsigError::BadSig),
            Self::BadTime { .. } | Self::Replay => Some(TsigError::BadTime),
            Self::BadTrunc => Some(TsigError::BadTrunc),
            Self::PeerError(code) => Some(TsigError::from(code)),
            Self::FormErr | Self::Unsigned => None,
        }
    }

    /// What a peer's TSIG Error field means (client side).
    pub(super) fn from_peer(error: TsigError, other: &[u8], time: u64) -> Self {
        match error {
            TsigError::BadKey => Self::BadKey,
            TsigError::BadSig => Self::BadSig,
            TsigError::BadTrunc => Self::BadTrunc,
            TsigError::BadTime => {
                let server_time = <[u8; 6]>::try_from(other)
                    .map(|b| {
                        b.iter()
                            .fold(0u64, |acc, &byte| (acc << 8) | u64::from(byte))
                    })
                    .unwrap_or(time);
                Self::BadTime { server_time }
            }
            TsigError::Unknown(code) => Self::PeerError(code),
        }
    }
}

impl fmt::Display for TsigFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::FormErr => f.write_str("malformed or misplaced TSIG RR"),
            Self::BadKey => f.write_str("unknown TSIG key or algorithm"),
            Self::BadSig => f.write_str("TSIG MAC does not verify"),
            Self::BadTime { server_time } => write!(
                f,
                "TSIG time outside the fudge window (server time {server_time})"
            ),
            Self::BadTrunc => f.write_str("TSIG MAC truncated below local policy"),
            Self::Replay => f.write_str("replayed TSIG request (MAC already accepted)"),
            Self::Unsigned => f.write_str("response carries no TSIG RR"),
            Self::PeerError(code) => write!(f, "peer answered TSIG error {code}"),
        }
    }
}

impl std::error::Error for TsigFailure {}

/// The RCODE of the answer to a rejected request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RejectRcode {
    /// RCODE 1: the TSIG RR is misplaced or cannot be interpreted.
    FormErr,
    /// RCODE 9: every TSIG verification error (§5.2.1 to §5.2.4).
    NotAuth,
}

impl From<RejectRcode> for ResponseCode {
    fn from(rcode: RejectRcode) -> Self {
        match rcode {
            RejectRcode::FormErr => Self::FormErr,
            RejectRcode::NotAuth => Self::NotAuth,
        }
    }
}

/// How the TSIG RR of an error answer is made.
#[derive(Debug)]
pub(super) enum ErrorTsig {
    /// FORMERR: no TSIG RR.
    None,
    /// BADKEY, BADSIG (§5.3.2): "MAC Size == 0 and empty MAC".
    Unsigned {
        key_name: Name,
        algorithm: TsigAlgorithm,
        error: TsigError,
    },
    /// BADTIME, replay, BADTRUNC: signed like an answer (§5.2.3, §5.3.2).
    Signed {
        key: Arc<Key>,
        request_mac: Vec<u8>,
        request_time: u64,
        error: TsigError,
        mac_len: usize,
    },
}

/// A rejected request: what to answer and why.
///
/// Which TSIG RR goes in the answer ([`Rejection::error_tsig`]):
/// - [`TsigFailure::FormErr`]: none; RCODE FORMERR.
/// - [`TsigFailure::BadKey`], [`TsigFailure::BadSig`]: an unsigned TSIG RR
///   (empty MAC, Error set); RCODE NOTAUTH. It is also ready-made in
///   [`Rejection::tsig`].
/// - [`TsigFailure::BadTime`], [`TsigFailure::Replay`]: a TSIG RR signed
///   with the request's key, Error BADTIME, Time Signed = the request's,
///   Other Data = the server's time; RCODE NOTAUTH. It covers the error
///   response's bytes, so only `error_tsig` can make it.
/// - [`TsigFailure::BadTrunc`]: signed, Error BADTRUNC; RCODE NOTAUTH.
#[derive(Debug)]
pub struct Rejection {
    /// RCODE for the answer.
    pub rcode: RejectRcode,
    /// The unsigned error TSIG RR for BADKEY/BADSIG (None otherwise; prefer
    /// [`Rejection::error_tsig`], which covers every case).
    pub tsig: Option<Record<TSIG>>,
    /// The key the request named, if the TSIG RR could be read.
    pub key_name: Option<Name>,
    /// Why, for logs and metrics.
    pub reason: TsigFailure,
    /// A few more words for logs (never secret).
    pub detail: &'static str,
    pub(super) error_tsig: ErrorTsig,
    pub(super) request_id: u16,
    pub(super) fudge: u16,
}

impl Rejection {
    /// The TSIG RR to append to the error response whose wire bytes
    /// (without the TSIG RR, ARCOUNT not counting it) are `response`, or
    /// None when the answer carries none (FORMERR). See the type's docs for
    /// which cases are signed.
    pub fn error_tsig(&self, response: &[u8], now: u64) -> Option<Record<TSIG>> {
        let oid = message_id(response).unwrap_or(self.request_id);
        match &self.error_tsig {
            ErrorTsig::None => None,
            ErrorTsig::Unsigned {
                key_name,
                algorithm,
                error,
            } => Some(make_tsig_record(
                key_name.clone(),
                TSIG::new(
                    algorithm.clone(),
                    now,
                    self.fudge,
                    Vec::new(),
                    oid,
                    Some(*error),
                    Vec::new(),
                ),
            )),
            ErrorTsig::Signed {
                key,
                request_mac,
                request_time,
                error,
                mac_len,
            } => {
                // §5.2.3: "It MUST include the client's current time in the
                // Time Signed field, the server's current time (an unsigned
                // 48-bit integer) in the Other Data field, and 6 in the Other
                // Len field."
                let (time, other) = if *error == TsigError::BadTime {
                    (*request_time, u48_bytes(now))
                } else {
                    (now, Vec::new())
                };
                let stub = TSIG::new(
                    key.algorithm.to_hickory(),
                    time,
                    self.fudge,
                    Vec::new(),
                    oid,
                    Some(*error),
                    other,
                );
                // §5.3.2 digest: "Request MAC (if the request MAC
                // validated)", "DNS Message (response)", "TSIG Variables
                // (response)". Here it always validated.
                Some(sign_message(key, Some(request_mac), response, stub, *mac_len).0)
            }
        }
    }

    /// Whether the error TSIG RR carries a MAC.
    pub fn is_signed(&self) -> bool {
        matches!(self.error_tsig, ErrorTsig::Signed { .. })
    }
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.reason, self.detail)?;
        if let Some(name) = &self.key_name {
            write!(f, ", key {name}")?;
        }
        Ok(())
    }
}
