//! Arbitrary bytes as a .torrent file: parsing must never panic, and an accepted torrent must
//! survive a write and re-read with the same info-hashes, files and safe paths.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(torrent) = metainfo::Torrent::from_bytes(data) else {
        return;
    };
    let again = metainfo::Torrent::from_bytes(&torrent.to_bytes()).expect("own output parses");
    assert_eq!(again.info.info_hashes(), torrent.info.info_hashes());
    assert_eq!(again.info.files(), torrent.info.files());
    for file in torrent.info.files() {
        let path = metainfo::safe_relative_path(&file.path).expect("accepted paths are safe");
        assert!(path.is_relative());
    }
    let _ = torrent.magnet().to_string();
});
