//! The TSIG RR on the wire: finding it at the end of a received message
//! (RFC 8945 §5.2 placement), the data a MAC covers (§4.3) and signing a
//! message with a key (§4.3, §5.3). Everything works on wire bytes as
//! received or as about to be sent, never on re-encoded messages.

use hickory_proto::rr::rdata::tsig::{TSIG, make_tsig_record};
use hickory_proto::rr::{DNSClass, Name, RData, Record, RecordType};
use hickory_proto::serialize::binary::{BinDecodable, BinDecoder, BinEncoder};

use super::Key;

/// Length of the DNS message header.
const HEADER_LEN: usize = 12;

pub(super) fn be16(bytes: &[u8], at: usize) -> Option<u16> {
    let pair = bytes.get(at..at.checked_add(2)?)?;
    Some(u16::from_be_bytes(pair.try_into().ok()?))
}

/// The ID of an encoded message.
pub(super) fn message_id(message: &[u8]) -> Option<u16> {
    be16(message, 0)
}

/// A TSIG RR found at the end of a message.
pub(super) struct Located {
    pub(super) key_name: Name,
    pub(super) dns_class: DNSClass,
    pub(super) ttl: u32,
    pub(super) tsig: TSIG,
    /// Offset where the TSIG RR starts.
    start: usize,
    header: [u8; HEADER_LEN],
}

const MALFORMED: &str = "malformed message";
pub(super) const NOT_LAST: &str = "TSIG RR is not the last record of the additional section";
pub(super) const BAD_TSIG_RR: &str = "TSIG RR cannot be interpreted";
pub(super) const TRAILING: &str = "bytes after the TSIG RR";

/// Finds the TSIG RR. RFC 8945 §5.2: "If an incoming message contains a
/// TSIG record, it MUST be the last record in the additional section.
/// Multiple TSIG records are not allowed. If multiple TSIG records are
/// detected or a TSIG record is present in any other position, the DNS
/// message is dropped and a response with RCODE 1 (FORMERR) MUST be
/// returned." `Err` carries the reason for that FORMERR.
pub(super) fn locate_tsig(message: &[u8]) -> Result<Option<Located>, &'static str> {
    let header: [u8; HEADER_LEN] = message
        .get(..HEADER_LEN)
        .and_then(|h| h.try_into().ok())
        .ok_or("message shorter than a DNS header")?;
    let count = |at| usize::from(be16(&header, at).unwrap_or(0));
    let (questions, additionals) = (count(4), count(10));
    let records = count(6) + count(8) + additionals;

    let mut decoder = BinDecoder::new(message);
    decoder.read_slice(HEADER_LEN).map_err(|_| MALFORMED)?;
    for _ in 0..questions {
        Name::read(&mut decoder).map_err(|_| MALFORMED)?;
        decoder.read_u16().map_err(|_| MALFORMED)?;
        decoder.read_u16().map_err(|_| MALFORMED)?;
    }
    let tsig_type = u16::from(RecordType::TSIG);
    let mut found = None;
    for index in 0..records {
        let start = decoder.index();
        Name::read(&mut decoder).map_err(|_| MALFORMED)?;
        let rr_type = decoder.read_u16().map_err(|_| MALFORMED)?.unverified();
        decoder.read_u16().map_err(|_| MALFORMED)?; // CLASS
        decoder.read_u32().map_err(|_| MALFORMED)?; // TTL
        let rdlength = decoder.read_u16().map_err(|_| MALFORMED)?.unverified();
        decoder
            .read_slice(usize::from(rdlength))
            .map_err(|_| MALFORMED)?;
        if rr_type != tsig_type {
            continue;
        }
        if additionals == 0 || index + 1 != records {
            return Err(NOT_LAST);
        }
        // Parse the whole RR again with hickory, from its first octet.
        let mut rr_decoder = BinDecoder::new(message);
        rr_decoder.read_slice(start).map_err(|_| MALFORMED)?;
        let record = Record::read(&mut rr_decoder).map_err(|_| BAD_TSIG_RR)?;
        if rr_decoder.index() != decoder.index() {
            return Err(BAD_TSIG_RR);
        }
        let RData::TSIG(tsig) = record.data else {
            return Err(BAD_TSIG_RR);
        };
        found = Some(Located {
            key_name: record.name,
            dns_class: record.dns_class,
            ttl: record.ttl,
            tsig,
            start,
            header,
        });
    }
    if found.is_some() && !decoder.is_empty() {
        return Err(TRAILING);
    }
    Ok(found)
}

/// The TSIG variables of RFC 8945 §4.3.3, in canonical wire format.
fn tsig_variables(tsig: &TSIG, key_name: &Name) -> Option<Vec<u8>> {
    let mut buf = Vec::with_capacity(128);
    let mut encoder = BinEncoder::new(&mut buf);
    tsig.emit_tsig_for_mac(&mut encoder, key_name).ok()?;
    Some(buf)
}

/// The "Timers" of RFC 8945 §4.3.1 for later messages: Time Signed, Fudge.
pub(super) fn tsig_timers(time: u64, fudge: u16) -> [u8; 8] {
    let t = time.to_be_bytes();
    let f = fudge.to_be_bytes();
    [t[2], t[3], t[4], t[5], t[6], t[7], f[0], f[1]]
}

/// A 48-bit time for Other Data (§5.2.3).
pub(super) fn u48_bytes(time: u64) -> Vec<u8> {
    time.to_be_bytes().into_iter().skip(2).collect()
}

/// Appends a MAC as a digest component: MAC Size, then the MAC.
pub(super) fn push_mac(data: &mut Vec<u8>, mac: &[u8]) {
    let len = u16::try_from(mac.len()).unwrap_or(u16::MAX);
    data.extend_from_slice(&len.to_be_bytes());
    data.extend_from_slice(mac);
}

/// The data a received message's MAC covers (RFC 8945 §4.3, §5.2): the
/// optional request MAC, then the message up to its TSIG RR with ARCOUNT
/// decremented and the ID replaced by the Original ID, then the TSIG
/// variables.
pub(super) fn received_digest_input(
    prior: Option<&[u8]>,
    message: &[u8],
    loc: &Located,
) -> Option<Vec<u8>> {
    let variables = tsig_variables(&loc.tsig, &loc.key_name)?;
    let body = message.get(HEADER_LEN..loc.start)?;
    let additionals = be16(&loc.header, 10)?.checked_sub(1)?;
    let mut data = Vec::with_capacity(loc.start + variables.len() + 80);
    if let Some(prior) = prior {
        push_mac(&mut data, prior);
    }
    data.extend_from_slice(&loc.tsig.oid.to_be_bytes());
    data.extend_from_slice(loc.header.get(2..10)?);
    data.extend_from_slice(&additionals.to_be_bytes());
    data.extend_from_slice(body);
    data.extend_from_slice(&variables);
    Some(data)
}

/// Signs `message` (encoded without its TSIG RR): digest = optional prior
/// MAC + message + TSIG variables of `stub`; the MAC is cut to `mac_len`.
/// Returns the TSIG RR and the MAC as sent.
pub(super) fn sign_message(
    key: &Key,
    prior: Option<&[u8]>,
    message: &[u8],
    stub: TSIG,
    mac_len: usize,
) -> (Record<TSIG>, Vec<u8>) {
    let Some(variables) = tsig_variables(&stub, &key.name) else {
        tracing::error!(key = %key.name, "cannot encode TSIG variables; sending an empty MAC");
        return (make_tsig_record(key.name.clone(), stub), Vec::new());
    };
    let mut data = Vec::with_capacity(message.len() + variables.len() + 80);
    if let Some(prior) = prior {
        push_mac(&mut data, prior);
    }
    data.extend_from_slice(message);
    data.extend_from_slice(&variables);
    let mut mac = key.mac(&data);
    mac.truncate(mac_len);
    let record = make_tsig_record(key.name.clone(), stub.set_mac(mac.clone()));
    (record, mac)
}
