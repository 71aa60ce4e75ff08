//! What the parent's nameservers serve for the zone's DS, as last asked
//! (`writer::keys` asks each of them directly, like BIND's checkds): the
//! rollover (`roll`) proceeds only on what every one of them serves.

/// A DS RDATA, compared field by field (RFC 4034 §5.1).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DsId {
    pub tag: u16,
    pub algorithm: u8,
    pub digest_type: u8,
    pub digest: Vec<u8>,
}

impl std::fmt::Display for DsId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {} {} ", self.tag, self.algorithm, self.digest_type)?;
        for b in &self.digest {
            write!(f, "{b:02X}")?;
        }
        Ok(())
    }
}

impl DsId {
    pub fn of(ds: &hickory_proto::dnssec::rdata::DS) -> Self {
        Self {
            tag: ds.key_tag(),
            algorithm: u8::from(ds.algorithm()),
            digest_type: u8::from(ds.digest_type()),
            digest: ds.digest().to_vec(),
        }
    }
}

/// One parent nameserver's answer: its DS set and TTL, or why there is none.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerDs {
    /// The nameserver, as address:port.
    pub server: String,
    pub answer: Result<(Vec<DsId>, u32), String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParentView {
    /// When they were asked (Unix seconds).
    pub at: u64,
    /// Every nameserver of the parent (never empty: no nameservers is an
    /// error before a view is made).
    pub servers: Vec<ServerDs>,
}

impl ParentView {
    /// Whether every nameserver serves `ds`: the longest DS TTL they gave,
    /// or which did not, in words.
    pub fn all_have(&self, ds: &DsId) -> Result<u32, String> {
        let mut ttl = 0;
        let mut missing = Vec::new();
        for s in &self.servers {
            match &s.answer {
                Ok((set, t)) if set.contains(ds) => ttl = ttl.max(*t),
                Ok((set, _)) if set.is_empty() => missing.push(format!("{} has no DS", s.server)),
                Ok((set, _)) => missing.push(format!(
                    "{} has only key {}",
                    s.server,
                    set.iter()
                        .map(|d| d.tag.to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                )),
                Err(e) => missing.push(e.clone()),
            }
        }
        if self.servers.is_empty() {
            missing.push("no parent nameservers".into());
        }
        if missing.is_empty() {
            Ok(ttl)
        } else {
            Err(missing.join("; "))
        }
    }

    /// Whether every nameserver answers with no DS at all for the zone,
    /// or which does not, in words.
    pub fn none_has_any(&self) -> Result<(), String> {
        let mut left = Vec::new();
        for s in &self.servers {
            match &s.answer {
                Ok((set, _)) if set.is_empty() => {}
                Ok((set, _)) => left.push(format!(
                    "{} still has key {}",
                    s.server,
                    set.iter()
                        .map(|d| d.tag.to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                )),
                Err(e) => left.push(e.clone()),
            }
        }
        if self.servers.is_empty() {
            left.push("no parent nameservers".into());
        }
        if left.is_empty() {
            Ok(())
        } else {
            Err(left.join("; "))
        }
    }

    /// Whether any nameserver still serves `ds` (or could: one that did
    /// not answer counts as serving it).
    pub fn any_has(&self, ds: &DsId) -> bool {
        self.servers.iter().any(|s| match &s.answer {
            Ok((set, _)) => set.contains(ds),
            Err(_) => true,
        })
    }
}
