//! Torrents v1, v2 (BEP 52) and hybrid, magnet links, and torrent creation.
