#!/usr/bin/python3
"""A libtorrent peer for spore's peer exchange (BEP 11) tests.

  lt_pex_helper.py TORRENT OUT_DIR --listen HOST:PORT [--peer HOST:PORT] [--want N] [--seconds S]

Joins TORRENT (downloading into OUT_DIR), through --peer if given, with DHT, LSD, UPnP and
NAT-PMP off, so that peer exchange is the only way to learn of anyone else. Prints one JSON
line {"peers": ["host:port", ...]} (the addresses it is connected to) as soon as it has --want
connections, or {"peers": [...], "timeout": true} after --seconds; then stays in the swarm until
--seconds pass in all. Nothing leaves loopback.
"""
import argparse
import json
import time

import libtorrent as lt


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("torrent")
    ap.add_argument("dir")
    ap.add_argument("--listen", required=True)
    ap.add_argument("--peer")
    ap.add_argument("--want", type=int, default=2)
    ap.add_argument("--seconds", type=float, default=60)
    a = ap.parse_args()
    s = lt.session({
        "listen_interfaces": a.listen,
        "outgoing_interfaces": a.listen.rsplit(":", 1)[0],
        "enable_dht": False, "enable_lsd": False, "enable_upnp": False, "enable_natpmp": False,
        "enable_incoming_utp": False, "enable_outgoing_utp": False,
        # One connection per IP (each peer has its own): libtorrent then settles two peers
        # dialling each other at once by a rule both ends agree on, rather than closing both.
        "allow_multiple_connections_per_ip": False,
        "user_agent": "lt-pex-oracle",
    })
    params = lt.add_torrent_params()
    params.ti = lt.torrent_info(a.torrent)
    params.save_path = a.dir
    h = s.add_torrent(params)
    if a.peer:
        host, port = a.peer.rsplit(":", 1)
        h.connect_peer((host, int(port)))
    deadline = time.monotonic() + a.seconds
    reported = False
    while time.monotonic() < deadline:
        peers = sorted(f"{p.ip[0]}:{p.ip[1]}" for p in h.get_peer_info())
        if not reported and len(peers) >= a.want:
            print(json.dumps({"peers": peers}), flush=True)
            reported = True
        s.pop_alerts()
        time.sleep(0.1)
    if not reported:
        print(json.dumps({"peers": peers, "timeout": True}), flush=True)


if __name__ == "__main__":
    main()
