//! TSIG keys (name, algorithm, secret) and the server's key ring.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use hickory_proto::rr::Name;
use ring::rand::{SecureRandom, SystemRandom};
use subtle::ConstantTimeEq as _;

use super::Algorithm;

/// A TSIG key: name, algorithm and secret. `Debug` redacts the secret.
#[derive(Clone)]
pub struct Key {
    /// The key name, fully qualified (TSIG owner name).
    pub name: Name,
    /// The one algorithm this key is used with.
    pub algorithm: Algorithm,
    pub(super) secret: Vec<u8>,
}

impl Key {
    /// A key from its parts. The name is made fully qualified.
    pub fn new(mut name: Name, algorithm: Algorithm, secret: Vec<u8>) -> Self {
        name.set_fqdn(true);
        Self {
            name,
            algorithm,
            secret,
        }
    }

    /// A new key with 32 random octets from the system RNG.
    pub fn generate(name: Name, algorithm: Algorithm) -> Result<Self, ring::error::Unspecified> {
        let mut secret = vec![0u8; 32];
        SystemRandom::new().fill(&mut secret)?;
        Ok(Self::new(name, algorithm, secret))
    }

    /// The secret in base64, as BIND writes it.
    pub fn secret_base64(&self) -> String {
        BASE64.encode(&self.secret)
    }

    /// The key in BIND key-file syntax, exactly as `tsig-keygen` prints it.
    pub fn to_key_file(&self) -> String {
        format!(
            "key \"{}\" {{\n\talgorithm {};\n\tsecret \"{}\";\n}};\n",
            key_name_text(&self.name),
            self.algorithm.key_file_name(),
            self.secret_base64()
        )
    }

    /// The full HMAC of `data` with this key's algorithm and secret.
    pub fn mac(&self, data: &[u8]) -> Vec<u8> {
        self.algorithm.hmac(&self.secret, data)
    }

    /// Whether `received` (possibly truncated) is the MAC of `data`,
    /// compared in constant time (RFC 8945 §5.2.2). A MAC shorter than
    /// §5.2.2.1 allows ("the larger of 10 (octets) and half the length of
    /// the hash function in use") or longer than the algorithm's output
    /// never matches, whatever the caller checked before: a truncated
    /// prefix that short would be guessable.
    pub(super) fn mac_matches(&self, data: &[u8], received: &[u8]) -> bool {
        if received.len() < self.algorithm.min_mac_len() {
            return false;
        }
        let full = self.mac(data);
        full.get(..received.len())
            .is_some_and(|prefix| bool::from(prefix.ct_eq(received)))
    }
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Key")
            .field("name", &self.name)
            .field("algorithm", &self.algorithm)
            .field("secret", &"<redacted>")
            .finish()
    }
}

/// A key name as BIND writes it: no trailing dot.
fn key_name_text(name: &Name) -> String {
    let text = name.to_ascii();
    match text.strip_suffix('.') {
        Some(stripped) if !stripped.is_empty() => stripped.to_owned(),
        _ => text,
    }
}

/// The form names take as map keys: lowercase, fully qualified.
pub(super) fn canonical_name(name: &Name) -> Name {
    let mut name = name.to_lowercase();
    name.set_fqdn(true);
    name
}

/// The server's keys, found by name (case-insensitively).
#[derive(Clone, Default)]
pub struct KeyRing {
    keys: HashMap<Name, Arc<Key>>,
}

impl KeyRing {
    /// A key ring; of two keys with the same name, the later wins.
    pub fn new(keys: impl IntoIterator<Item = Key>) -> Self {
        let keys = keys
            .into_iter()
            .map(|key| (canonical_name(&key.name), Arc::new(key)))
            .collect();
        Self { keys }
    }

    /// The key called `name`, if any.
    pub fn get(&self, name: &Name) -> Option<Arc<Key>> {
        self.keys.get(&canonical_name(name)).cloned()
    }

    /// Number of keys.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether the ring has no key.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The key names (lowercase, fully qualified), in no particular order.
    pub fn names(&self) -> impl Iterator<Item = &Name> {
        self.keys.keys()
    }
}

impl fmt::Debug for KeyRing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.keys.keys()).finish()
    }
}
