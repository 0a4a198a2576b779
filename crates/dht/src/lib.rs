//! Sans-IO Mainline DHT core: KRPC (BEP 5), routing table, lookups, BEP 42/44/51.
