//! The BEP 10 extended handshake (extension message id 0).

use std::collections::BTreeMap;
use std::net::IpAddr;

use bencode::{Limits, Owned};

use crate::Error;

/// Bencode limits for extension payloads: shallow and small.
pub(crate) const EXTENSION_LIMITS: Limits = Limits {
    depth_max: 8,
    values_max: 4096,
    allow_unsorted_keys: true,
};

/// Extension names (and other keys) longer than this are ignored.
const EXTENSION_NAME_LEN_MAX: usize = 64;

/// What a peer says about itself in its extended handshake.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ExtendedHandshake {
    /// `m`: extension name to the id the sender wants to receive it with (0 = disabled).
    pub extensions: BTreeMap<String, u8>,
    /// `v`: client name and version.
    pub client: Option<String>,
    /// `p`: the sender's listen port.
    pub listen_port: Option<u16>,
    /// `metadata_size` (BEP 9): size of the info dictionary in bytes.
    pub metadata_size: Option<u64>,
    /// `reqq`: how many outstanding requests the sender accepts.
    pub request_queue_len: Option<u32>,
    /// `yourip`: our address as the sender sees it.
    pub your_ip: Option<IpAddr>,
}

impl ExtendedHandshake {
    /// Parses the bencoded payload; unknown keys and ill-typed optional keys are ignored.
    pub fn parse(payload: &[u8]) -> Result<ExtendedHandshake, Error> {
        let value = bencode::decode_with(payload, EXTENSION_LIMITS)
            .map_err(|_| Error::BadExtension("extended handshake is not bencode"))?;
        let dict = value.as_dict().ok_or(Error::BadExtension(
            "extended handshake is not a dictionary",
        ))?;
        let mut extensions = BTreeMap::new();
        if let Some(m) = dict.get_dict("m") {
            for (name, id) in m.iter() {
                let (Ok(name), Some(id)) = (std::str::from_utf8(name), id.as_int()) else {
                    continue;
                };
                if name.len() <= EXTENSION_NAME_LEN_MAX {
                    if let Ok(id) = u8::try_from(id) {
                        extensions.insert(name.to_owned(), id);
                    }
                }
            }
        }
        let your_ip = dict.get_bytes("yourip").and_then(|b| match b.len() {
            4 => Some(IpAddr::from(<[u8; 4]>::try_from(b).ok()?)),
            16 => Some(IpAddr::from(<[u8; 16]>::try_from(b).ok()?)),
            _ => None,
        });
        Ok(ExtendedHandshake {
            extensions,
            client: dict
                .get_str("v")
                .filter(|v| v.len() <= EXTENSION_NAME_LEN_MAX)
                .map(str::to_owned),
            listen_port: dict.get_int("p").and_then(|p| u16::try_from(p).ok()),
            metadata_size: dict
                .get_int("metadata_size")
                .and_then(|s| u64::try_from(s).ok()),
            request_queue_len: dict.get_int("reqq").and_then(|r| u32::try_from(r).ok()),
            your_ip,
        })
    }

    /// The bencoded payload.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut m = Owned::dict();
        for (name, id) in &self.extensions {
            m.insert(name, i64::from(*id));
        }
        let mut dict = Owned::dict().with("m", m);
        if let Some(v) = &self.client {
            dict.insert("v", v.as_str());
        }
        if let Some(p) = self.listen_port {
            dict.insert("p", i64::from(p));
        }
        if let Some(size) = self.metadata_size {
            dict.insert("metadata_size", size);
        }
        if let Some(reqq) = self.request_queue_len {
            dict.insert("reqq", i64::from(reqq));
        }
        match self.your_ip {
            Some(IpAddr::V4(ip)) => dict.insert("yourip", ip.octets().to_vec()),
            Some(IpAddr::V6(ip)) => dict.insert("yourip", ip.octets().to_vec()),
            None => {}
        }
        dict.to_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_libtorrent_style_handshake() {
        let payload = b"d1:md11:ut_metadatai2e6:ut_pexi1ee13:metadata_sizei31235e1:pi6881e4:reqqi500e1:v14:libtorrent 2.06:yourip4:\x7f\x00\x00\x01e";
        let hs = ExtendedHandshake::parse(payload).unwrap();
        assert_eq!(hs.extensions.get("ut_metadata"), Some(&2));
        assert_eq!(hs.metadata_size, Some(31235));
        assert_eq!(hs.listen_port, Some(6881));
        assert_eq!(hs.request_queue_len, Some(500));
        assert_eq!(hs.your_ip, Some(IpAddr::from([127, 0, 0, 1])));
        assert_eq!(ExtendedHandshake::parse(&hs.to_bytes()), Ok(hs));
    }

    #[test]
    fn garbage_is_an_error() {
        assert!(ExtendedHandshake::parse(b"i3e").is_err());
        assert!(ExtendedHandshake::parse(b"d1:m").is_err());
    }
}
