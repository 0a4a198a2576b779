#!/usr/bin/python3
"""libtorrent DHT nodes on loopback, driven line by line for spore's interop tests.

  lt_dht_helper.py --shared DIR --subnet S --nodes N --base-port P

Starts N libtorrent DHT sessions with ../shared/peers/lt_dht.py's settings (127.0.S.10 and up),
prints {"nodes": [[host, port], ...]} once they know each other, then answers one JSON command
per stdin line with one JSON line on stdout:
  {"cmd": "add_node", "addr": [host, port]}          every session learns a node
  {"cmd": "announce", "info_hash": hex}              session 1 joins a magnet-only torrent
  {"cmd": "get_peers", "info_hash": hex}             -> {"peers": [[host, port], ...]}
  {"cmd": "put_immutable", "value": text}            -> {"target": hex}
  {"cmd": "get_immutable", "target": hex}            -> {"value": text or null}
  {"cmd": "put_mutable", "seed": hex, "public_key": hex, "salt": text, "value": text}
                                                     -> {"seq": n, "num_success": n}
  {"cmd": "get_mutable", "public_key": hex, "salt": text} -> {"value": text or null, "seq": n}
Exits when stdin closes. Nothing leaves loopback.
"""
import argparse
import hashlib
import json
import sys
import time


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--shared", required=True)
    ap.add_argument("--subnet", type=int, required=True)
    ap.add_argument("--nodes", type=int, default=8)
    ap.add_argument("--base-port", type=int, required=True)
    a = ap.parse_args()
    sys.path.insert(0, a.shared + "/peers")
    import libtorrent as lt
    import lt_dht

    addrs = [(f"127.0.{a.subnet}.{10 + i}", a.base_port + i) for i in range(a.nodes)]
    first = "%s:%d" % addrs[0]
    sessions = [lt_dht.start(*addrs[0], [])]
    for i in range(1, a.nodes):
        sessions.append(lt_dht.start(*addrs[i], [first]))
    for s in sessions:
        # spore queries hard while it joins: do not ban it (default is 5 packets/s per source).
        try:
            s.apply_settings({"dht_block_ratelimit": 10000})
        except KeyError:
            pass
        for addr in addrs:
            s.add_dht_node(addr)
    end = time.monotonic() + 20
    while time.monotonic() < end:
        if all(s.status().dht_nodes >= min(3, a.nodes - 1) for s in sessions):
            break
        time.sleep(0.2)
    print(json.dumps({"nodes": [list(x) for x in addrs],
                      "routing_table_sizes": [s.status().dht_nodes for s in sessions]}), flush=True)

    def text(value):
        """An item as the bindings hand it back (entry, dict or bytes) as text."""
        if isinstance(value, dict):
            value = value.get("value", value.get(b"value"))
        if isinstance(value, bytes):
            value = value.decode("utf-8", "replace")
        return value

    def reply(obj):
        print(json.dumps(obj), flush=True)

    for line in sys.stdin:
        cmd = json.loads(line)
        kind = cmd["cmd"]
        last = sessions[-1]
        if kind == "add_node":
            for s in sessions:
                s.add_dht_node(tuple(cmd["addr"]))
            reply({"ok": True})
        elif kind == "announce":
            params = lt.parse_magnet_uri("magnet:?xt=urn:btih:" + cmd["info_hash"])
            params.save_path = "/tmp/lt-dht-helper-%d" % a.subnet
            sessions[1].add_torrent(params)
            reply({"ok": True})
        elif kind == "get_peers":
            ih = lt.sha1_hash(bytes.fromhex(cmd["info_hash"]))
            last.dht_get_peers(ih)
            got = lt_dht.wait_alert(last, lt.dht_get_peers_reply_alert, 20,
                                    lambda al: str(al.info_hash) == cmd["info_hash"])
            peers = [list(p) for p in got.peers()] if got else []
            reply({"peers": peers})
        elif kind == "put_immutable":
            target = sessions[2 % a.nodes].dht_put_immutable_item(cmd["value"])
            lt_dht.wait_alert(sessions[2 % a.nodes], lt.dht_put_alert, 20)
            reply({"target": str(target)})
        elif kind == "get_immutable":
            last.dht_get_immutable_item(lt.sha1_hash(bytes.fromhex(cmd["target"])))
            item = lt_dht.wait_alert(last, lt.dht_immutable_item_alert, 20)
            reply({"value": text(item.item) if item else None})
        elif kind == "put_mutable":
            sk = bytearray(hashlib.sha512(bytes.fromhex(cmd["seed"])).digest())
            sk[0] &= 248
            sk[31] &= 63
            sk[31] |= 64
            s = sessions[3 % a.nodes]
            s.dht_put_mutable_item(bytes(sk), bytes.fromhex(cmd["public_key"]), cmd["value"],
                                   cmd["salt"].encode())
            put = lt_dht.wait_alert(s, lt.dht_put_alert, 20)
            reply({"seq": put.seq if put else None, "num_success": put.num_success if put else 0})
        elif kind == "get_mutable":
            last.dht_get_mutable_item(bytes.fromhex(cmd["public_key"]), cmd["salt"].encode())
            best = None
            end = time.monotonic() + 20
            while time.monotonic() < end:
                al = lt_dht.wait_alert(last, lt.dht_mutable_item_alert, end - time.monotonic())
                if al is None:
                    break
                value, seq, authoritative = text(al.item), al.seq, al.authoritative
                if best is None or seq > best["seq"]:
                    best = {"value": value, "seq": seq}
                if authoritative:
                    break
            reply(best or {"value": None, "seq": None})
        else:
            reply({"error": "unknown command " + kind})


if __name__ == "__main__":
    main()
