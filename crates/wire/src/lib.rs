//! Peer wire protocol messages: handshake, BEP 3/6/10 messages, extension payloads (BEP 9, 11, 52).
