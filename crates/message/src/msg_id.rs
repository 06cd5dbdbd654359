//! offsetMsgId (spec §1.6): the store host's address and port and the record's physical offset,
//! upper-case hex (32 characters for IPv4, 56 for IPv6). Clients send VIEW_MESSAGE_BY_ID to the
//! address inside it.

use std::net::{IpAddr, SocketAddr};

/// The offsetMsgId of the record at `physical_offset` stored by `store_host`.
pub fn offset_msg_id(store_host: SocketAddr, physical_offset: i64) -> String {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut bytes = [0u8; 28];
    let ip_len = match store_host.ip() {
        IpAddr::V4(ip) => {
            bytes[..4].copy_from_slice(&ip.octets());
            4
        }
        IpAddr::V6(ip) => {
            bytes[..16].copy_from_slice(&ip.octets());
            16
        }
    };
    bytes[ip_len..ip_len + 4].copy_from_slice(&i32::from(store_host.port()).to_be_bytes());
    bytes[ip_len + 4..ip_len + 12].copy_from_slice(&physical_offset.to_be_bytes());
    let mut hex = String::with_capacity((ip_len + 12) * 2);
    for b in &bytes[..ip_len + 12] {
        hex.push(char::from(HEX[usize::from(b >> 4)]));
        hex.push(char::from(HEX[usize::from(b & 0xF)]));
    }
    hex
}

/// Reads an offsetMsgId back: the store host and the physical offset. `None` for anything but
/// 32 or 56 hex characters.
pub fn decode_offset_msg_id(id: &str) -> Option<(SocketAddr, i64)> {
    if !id.is_ascii() || (id.len() != 32 && id.len() != 56) {
        return None;
    }
    let bytes: Vec<u8> = (0..id.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&id[i..i + 2], 16))
        .collect::<Result<_, _>>()
        .ok()?;
    let (ip, rest): (IpAddr, &[u8]) = if bytes.len() == 16 {
        let b: [u8; 4] = bytes[..4].try_into().ok()?;
        (b.into(), &bytes[4..])
    } else {
        let b: [u8; 16] = bytes[..16].try_into().ok()?;
        (b.into(), &bytes[16..])
    };
    let port = i32::from_be_bytes(rest[..4].try_into().ok()?);
    let offset = i64::from_be_bytes(rest[4..12].try_into().ok()?);
    Some((SocketAddr::new(ip, u16::try_from(port).ok()?), offset))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn java_ids_both_ways() {
        // Capture 029: the record at 3171 stored by 127.0.0.1:20931.
        let host: SocketAddr = "127.0.0.1:20931".parse().unwrap();
        assert_eq!(
            offset_msg_id(host, 3171),
            "7F000001000051C30000000000000C63"
        );
        assert_eq!(
            decode_offset_msg_id("7F000001000051C30000000000000C63"),
            Some((host, 3171))
        );
        let v6: SocketAddr = "[::1]:10911".parse().unwrap();
        let id = offset_msg_id(v6, 42);
        assert_eq!(id.len(), 56);
        assert_eq!(decode_offset_msg_id(&id), Some((v6, 42)));
        assert_eq!(decode_offset_msg_id("nothex"), None);
        assert_eq!(
            decode_offset_msg_id("ZZ000001000051C30000000000000C63"),
            None
        );
    }
}
