//! Signing the answers to a verified request: single answers (RFC 8945
//! §5.3) and the messages of a multi-message answer, AXFR and IXFR
//! (§5.3.1 chaining).

use std::sync::{Arc, Mutex, PoisonError};

use hickory_proto::rr::Record;
use hickory_proto::rr::rdata::tsig::{TSIG, make_tsig_record};

use super::Key;
use super::wire::{message_id, push_mac, sign_message, tsig_timers};

/// Everything needed to sign the answer(s) to a verified request.
#[derive(Debug)]
pub struct SignContext {
    /// The key the request was signed with.
    pub key: Arc<Key>,
    /// The request's MAC, as received (possibly truncated).
    pub request_mac: Vec<u8>,
    /// The request's Time Signed.
    pub time_signed: u64,
    pub(super) request_id: u16,
    pub(super) fudge: u16,
    pub(super) mac_len: usize,
    /// MAC of the last message signed, for §5.3.1 chaining.
    pub(super) running_mac: Mutex<Option<Vec<u8>>>,
}

impl SignContext {
    /// Length of the MACs this context produces: the request's MAC length.
    /// §7: "a reply SHOULD be sent with a MAC at least as long as that in
    /// the corresponding request"; a client that truncates accepts its own
    /// length, and one that does not gets the full MAC.
    pub fn mac_len(&self) -> usize {
        self.mac_len
    }

    /// A TSIG RR for `response` with no MAC yet; Original ID is the response's.
    fn stub(&self, response: &[u8], now: u64) -> TSIG {
        TSIG::new(
            self.key.algorithm.to_hickory(),
            now,
            self.fudge,
            Vec::new(),
            message_id(response).unwrap_or(self.request_id),
            None,
            Vec::new(),
        )
    }

    /// The TSIG RR to append to the response whose wire bytes without the
    /// TSIG RR are `response` (ARCOUNT not counting it, ID the request's).
    /// §5.3: the digest is "Request MAC", "DNS Message (response)", "TSIG
    /// Variables (response)"; Original ID is the response's ID.
    ///
    /// Hand the record to hickory as the message signature (it becomes the
    /// last additional record), or use [`append_tsig`](super::append_tsig),
    /// which also keeps the owner name uncompressed as BIND does.
    pub fn sign_response(&self, response: &[u8], now: u64) -> Record<TSIG> {
        let stub = self.stub(response, now);
        let (record, mac) = sign_message(
            &self.key,
            Some(&self.request_mac),
            response,
            stub,
            self.mac_len,
        );
        *self
            .running_mac
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(mac);
        record
    }

    /// The TSIG RR for a later message of a multi-message answer (AXFR,
    /// IXFR). §5.3.1: the digest is "Prior MAC (running)", "DNS Messages
    /// (any unsigned messages since the last TSIG)" and "TSIG Timers
    /// (current message)". Call [`SignContext::sign_response`] for the first
    /// message; if it was not called, this signs as the first message.
    pub fn sign_next(&mut self, response: &[u8], now: u64) -> Record<TSIG> {
        let prior = self
            .running_mac
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        let Some(prior) = prior else {
            return self.sign_response(response, now);
        };
        let stub = self.stub(response, now);
        let mut data = Vec::with_capacity(prior.len() + response.len() + 10);
        push_mac(&mut data, &prior);
        data.extend_from_slice(response);
        data.extend_from_slice(&tsig_timers(now, self.fudge));
        let mut mac = self.key.mac(&data);
        mac.truncate(self.mac_len);
        *self
            .running_mac
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner) = Some(mac.clone());
        make_tsig_record(self.key.name.clone(), stub.set_mac(mac))
    }
}
