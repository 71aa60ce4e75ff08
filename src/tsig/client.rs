//! The client side, for our own outgoing messages (NOTIFY, `dane publish`'s
//! UPDATEs through `dnsclient`, tests): signing a request (RFC 8945 §4.3),
//! appending the TSIG RR, and verifying a single signed response (§5.4).

use hickory_proto::rr::Record;
use hickory_proto::rr::rdata::tsig::TSIG;
use hickory_proto::serialize::binary::{BinEncodable, BinEncoder, NameEncoding};

use super::wire::{be16, locate_tsig, message_id, received_digest_input, sign_message};
use super::{Algorithm, Key, TsigFailure, canonical_name};

/// Could not append a TSIG RR to a message.
#[derive(Debug, thiserror::Error)]
pub enum TsigEncodeError {
    /// The message is shorter than a DNS header.
    #[error("message shorter than a DNS header")]
    ShortMessage,
    /// ARCOUNT is already 65535.
    #[error("additional section is full")]
    TooManyRecords,
    /// hickory could not encode the RR.
    #[error("cannot encode the TSIG RR: {0}")]
    Encode(String),
}

/// Signs an outgoing request (NOTIFY, UPDATE, tests) encoded without its
/// TSIG RR. RFC 8945 §4.3: the digest is "DNS Message (request)" and "TSIG
/// Variables (request)"; Original ID is the message's ID. Returns the TSIG
/// RR and the MAC (keep it to verify the response).
pub fn sign_request(
    message_without_tsig: &[u8],
    key: &Key,
    now: u64,
    fudge: u16,
) -> (Record<TSIG>, Vec<u8>) {
    let stub = TSIG::new(
        key.algorithm.to_hickory(),
        now,
        fudge,
        Vec::new(),
        message_id(message_without_tsig).unwrap_or(0),
        None,
        Vec::new(),
    );
    sign_message(
        key,
        None,
        message_without_tsig,
        stub,
        key.algorithm.output_len(),
    )
}

/// Appends `tsig` (name uncompressed) to an encoded message and counts it in
/// ARCOUNT.
pub fn append_tsig(message: &[u8], tsig: &Record<TSIG>) -> Result<Vec<u8>, TsigEncodeError> {
    let additionals = be16(message, 10)
        .ok_or(TsigEncodeError::ShortMessage)?
        .checked_add(1)
        .ok_or(TsigEncodeError::TooManyRecords)?;
    let mut rr = Vec::with_capacity(128);
    {
        let mut encoder = BinEncoder::new(&mut rr);
        encoder.set_name_encoding(NameEncoding::Uncompressed);
        tsig.emit(&mut encoder)
            .map_err(|err| TsigEncodeError::Encode(err.to_string()))?;
    }
    let mut out = Vec::with_capacity(message.len() + rr.len());
    out.extend_from_slice(message);
    if let Some(count) = out.get_mut(10..12) {
        count.copy_from_slice(&additionals.to_be_bytes());
    }
    out.extend_from_slice(&rr);
    Ok(out)
}

/// Verifies the TSIG of a single response to a request we signed with `key`
/// (MAC `request_mac`), at our time `now` with our `fudge`. A TSIG error the
/// server reported comes back as the matching [`TsigFailure`] (BADTIME with
/// the server's time from Other Data).
pub fn verify_response(
    response: &[u8],
    key: &Key,
    request_mac: &[u8],
    now: u64,
    fudge: u16,
) -> Result<(), TsigFailure> {
    let loc = locate_tsig(response)
        .map_err(|_| TsigFailure::FormErr)?
        .ok_or(TsigFailure::Unsigned)?;
    let tsig = &loc.tsig;
    if canonical_name(&loc.key_name) != canonical_name(&key.name)
        || Algorithm::from_name(&tsig.algorithm.to_name()) != Some(key.algorithm)
    {
        return Err(TsigFailure::BadKey);
    }
    if tsig.mac.is_empty() {
        // §5.3.2: errors about the key or MAC come back unsigned.
        return Err(match tsig.error {
            Some(error) => TsigFailure::from_peer(error, &tsig.other, tsig.time),
            None => TsigFailure::BadSig,
        });
    }
    let mac_len = tsig.mac.len();
    if mac_len > key.algorithm.output_len() || mac_len < key.algorithm.min_mac_len() {
        return Err(TsigFailure::FormErr);
    }
    let data =
        received_digest_input(Some(request_mac), response, &loc).ok_or(TsigFailure::FormErr)?;
    if !key.mac_matches(&data, &tsig.mac) {
        return Err(TsigFailure::BadSig);
    }
    if let Some(error) = tsig.error {
        return Err(TsigFailure::from_peer(error, &tsig.other, tsig.time));
    }
    if now.abs_diff(tsig.time) > u64::from(fudge) {
        return Err(TsigFailure::BadTime {
            server_time: tsig.time,
        });
    }
    Ok(())
}
