//! BEP 6 canonical allowed-fast set.

use std::net::Ipv4Addr;

use sha1::{Digest, Sha1};

/// The `k` pieces a peer at `ip` may request while choked, as BEP 6 defines them: hashes of the
/// masked address (/24) and the info-hash, chained until `k` distinct indices are found.
/// IPv6 peers have no canonical set in BEP 6; callers skip them.
pub fn allowed_fast_set(
    k: usize,
    piece_count: u32,
    info_hash: &[u8; 20],
    ip: Ipv4Addr,
) -> Vec<u32> {
    let k = k.min(piece_count as usize);
    let mut set = Vec::with_capacity(k);
    if piece_count == 0 {
        return set;
    }
    let masked = u32::from(ip) & 0xffff_ff00;
    let mut x = [0u8; 24];
    x[..4].copy_from_slice(&masked.to_be_bytes());
    x[4..].copy_from_slice(info_hash);
    let mut digest: Vec<u8> = x.to_vec();
    while set.len() < k {
        digest = Sha1::digest(&digest).to_vec();
        for chunk in digest.chunks_exact(4) {
            if set.len() >= k {
                break;
            }
            let y = u32::from_be_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
            let index = y % piece_count;
            if !set.contains(&index) {
                set.push(index);
            }
        }
    }
    set
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bep6_test_vector() {
        let ip = Ipv4Addr::new(80, 4, 4, 200);
        let info_hash = [0xaa; 20];
        assert_eq!(
            allowed_fast_set(7, 1313, &info_hash, ip),
            [1059, 431, 808, 1217, 287, 376, 1188]
        );
        assert_eq!(
            allowed_fast_set(9, 1313, &info_hash, ip),
            [1059, 431, 808, 1217, 287, 376, 1188, 353, 508]
        );
    }

    #[test]
    fn small_torrents_terminate() {
        assert_eq!(
            allowed_fast_set(10, 3, &[1; 20], Ipv4Addr::LOCALHOST).len(),
            3
        );
        assert!(allowed_fast_set(10, 0, &[1; 20], Ipv4Addr::LOCALHOST).is_empty());
    }
}
