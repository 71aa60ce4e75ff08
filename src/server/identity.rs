//! How the server names itself, when the operator says so: the NSID option
//! (RFC 5001, sent by `edns`) and the class CH TXT names of RFC 4892 and
//! BIND (`id.server`, `hostname.bind`, `version.server`, `version.bind`).
//!
//! Each is off by default (an operator may not want to tell the internet
//! which host or version answered): unset, the CH names are REFUSED like any
//! name we do not serve. Set, they are answered as Knot answers them: TXT
//! only, class CH, TTL 0, no AA; any other CH query is REFUSED.

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::rdata::TXT;
use hickory_proto::rr::{DNSClass, Name, RData, Record, RecordType};
use hickory_server::server::Request;

use super::edns::Ede;
use super::response::Reply;
use crate::config::Config;

/// The configured names (`nsid`, `identity`, `version` in the config).
#[derive(Debug, Clone, Default)]
pub struct Identity {
    pub nsid: Option<Vec<u8>>,
    pub identity: Option<String>,
    pub version: Option<String>,
}

impl Identity {
    pub fn from_config(config: &Config) -> Self {
        Self {
            nsid: config.nsid.clone().map(String::into_bytes),
            identity: config.identity.clone(),
            version: config.version.clone(),
        }
    }

    /// The TXT string for a CH name, if it is one we answer and it is set.
    fn text_for(&self, qname: &Name) -> Option<&str> {
        let lower = qname.to_lowercase().to_ascii();
        match lower.as_str() {
            "id.server." | "hostname.bind." => self.identity.as_deref(),
            "version.server." | "version.bind." => self.version.as_deref(),
            _ => None,
        }
    }
}

/// The answer to a class CH query for `qname`/`qtype`.
pub fn answer(request: &Request, identity: &Identity, qname: &Name, qtype: RecordType) -> Reply {
    let text = (qtype == RecordType::TXT)
        .then(|| identity.text_for(qname))
        .flatten();
    let Some(text) = text else {
        return Reply::new(request, ResponseCode::Refused).with_ede(Some(Ede::NotAuthoritative));
    };
    let mut reply = Reply::new(request, ResponseCode::NoError);
    let mut record = Record::from_rdata(
        qname.clone(),
        0,
        RData::TXT(TXT::new(vec![text.to_string()])),
    );
    record.dns_class = DNSClass::CH;
    reply.answers.push(record);
    reply
}
