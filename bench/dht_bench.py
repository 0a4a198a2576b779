#!/usr/bin/python3
"""DHT node benchmarks, spore next to libtorrent, on loopback only.

Usage: bench/dht_bench.py [--spore target/release/spore] [--seconds 10] [--sources 4000]
                          [--peers 20000] [--items 600] [--parts flood,memory]

Starts a small libtorrent DHT (../shared/peers/lt_dht.py, 8 nodes on 127.0.70.x) for both targets
to join, then one target node of each kind: `spore dht node` on 127.0.70.2 and a one-session
libtorrent process on 127.0.70.3 (DHT upload limit lifted, its per-source block rate left at the
default, as spore's rate limit is). Then, for each target:

  flood   --sources sockets (127.1.x.y, one address each) send get_peers for random info-hashes,
          4 a second each (under both nodes' per-address limits), for --seconds; counts replies
          and reads the target's CPU time from /proc: queries answered per second and per
          CPU-second (per core). Then one address floods as fast as Python can: what a
          single-source flood gets answered, and what dropping it costs.
  memory  gets a token per source, announces --peers peers (distinct address:port pairs over
          1,000 info-hashes), then puts --items immutable items of 200 bytes, reading the
          target's resident memory (VmRSS) before and after each step: bytes per stored peer and
          per stored item.

  lookup  (with --parts lookup) a loopback network of 50 libtorrent nodes (127.0.72.x) and 50
          `spore dht node`s (127.0.73.x); --lookups times a fresh spore node joins through a
          random member and runs find_node for a random target (`spore dht find-node --json`:
          seconds, hops, queries). libtorrent's Python bindings report no hop counts, and
          their get_peers reply alert did not arrive here, so libtorrent's own lookups are not
          timed.

Prints a Markdown table and a JSON line. Needs a release build of spore and Debian's
python3-libtorrent (../shared/peers/install.sh). Every socket is on 127.0.0.0/8.
"""
import argparse
import hashlib
import json
import os
import random
import selectors
import socket
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SHARED = os.environ.get("SPORE_SHARED", os.path.join(HERE, "..", "..", "shared"))
SUBNET = 70
LT_BASE_PORT = 17810
SPORE_ADDR = (f"127.0.{SUBNET}.2", 17800)
LT_ADDR = (f"127.0.{SUBNET}.3", 17801)

LT_TARGET = r"""
import sys, time
sys.path.insert(0, sys.argv[1] + "/peers")
import lt_dht
s = lt_dht.start(sys.argv[2], int(sys.argv[3]), [sys.argv[4]])
s.apply_settings({"dht_upload_rate_limit": 1 << 30})
host, port = sys.argv[4].split(":")
s.add_dht_node((host, int(port)))
print("ready", flush=True)
sys.stdin.read()
"""


def bencode(v):
    if isinstance(v, int):
        return b"i%de" % v
    if isinstance(v, str):
        v = v.encode()
    if isinstance(v, bytes):
        return b"%d:%s" % (len(v), v)
    if isinstance(v, dict):
        out = b"d"
        for k in sorted(v, key=lambda k: k.encode() if isinstance(k, str) else k):
            out += bencode(k) + bencode(v[k])
        return out + b"e"
    raise TypeError(type(v))


def bdecode_token(data):
    """The `token` value of a reply, or None (enough parsing for this script)."""
    i = data.find(b"5:token")
    if i < 0:
        return None
    j = data.index(b":", i + 7)
    n = int(data[i + 7:j])
    return data[j + 1:j + 1 + n]


def query(method, args, tid):
    return bencode({"t": tid, "y": "q", "q": method, "a": args})


def sources(count):
    socks = []
    for i in range(count):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind((f"127.1.{i // 250}.{i % 250 + 1}", 0))
        s.setblocking(False)
        socks.append(s)
    return socks


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_bytes(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def drain(sel, counts):
    for key, _ in sel.select(timeout=0):
        while True:
            try:
                data = key.fileobj.recv(2048)
            except BlockingIOError:
                break
            if b"1:y1:q" in data:
                continue  # the target querying us (it may add sources to its table): not a reply
            kind = b"1:y1:r" in data and "answered" or "errors"
            counts[kind] += 1


def flood(target, pid, socks, seconds, rng, per_source_per_s=None):
    sel = selectors.DefaultSelector()
    for s in socks:
        sel.register(s, selectors.EVENT_READ)
    counts = {"sent": 0, "answered": 0, "errors": 0}
    ids = [rng.randbytes(20) for _ in socks]
    cpu0, t0 = cpu_seconds(pid), time.perf_counter()
    end = t0 + seconds
    round_s = 1.0 / per_source_per_s if per_source_per_s else 0.0
    while time.perf_counter() < end:
        round_start = time.perf_counter()
        next_round = round_start + round_s
        for i, s in enumerate(socks):
            # Spread each round evenly (bursts would overflow the target's receive buffer).
            while round_s and time.perf_counter() < round_start + round_s * i / len(socks):
                drain(sel, counts)
            msg = query("get_peers", {"id": ids[i], "info_hash": rng.randbytes(20)}, rng.randbytes(2))
            try:
                s.sendto(msg, target)
                counts["sent"] += 1
            except BlockingIOError:
                pass
            if i % 64 == 0:
                drain(sel, counts)
        drain(sel, counts)
        while time.perf_counter() < next_round:
            drain(sel, counts)
            time.sleep(0.001)
    wall = time.perf_counter() - t0
    settle = time.perf_counter() + 0.5
    while time.perf_counter() < settle:
        drain(sel, counts)
        time.sleep(0.01)
    cpu = cpu_seconds(pid) - cpu0
    sel.close()
    return {
        "sent_per_s": counts["sent"] / wall,
        "answered_per_s": counts["answered"] / wall,
        "cpu_cores": cpu / wall,
        "answered_per_cpu_s": counts["answered"] / cpu if cpu > 0 else 0.0,
        "errors": counts["errors"],
    }


def ask_all(target, socks, make, timeout=3.0):
    """Sends make(i) from every socket and waits for each reply; returns {i: reply}."""
    replies = {}
    for i, s in enumerate(socks):
        s.sendto(make(i), target)
        if i % 100 == 99:
            time.sleep(0.005)  # spread the burst: a default UDP receive buffer holds ~300
    end = time.perf_counter() + timeout
    while len(replies) < len(socks) and time.perf_counter() < end:
        for i, s in enumerate(socks):
            if i in replies:
                continue
            try:
                data = s.recv(2048)
            except BlockingIOError:
                continue
            if b"1:y1:q" not in data:  # skip the target's own queries (pings of new contacts)
                replies[i] = data
        time.sleep(0.001)
    return replies


def settle_rate_limits():
    # Both targets refill per-source allowances within a few seconds.
    time.sleep(4)


def store_round(target, socks, ids, keys, token_query, store_query):
    """Every socket gets a write token for its key (libtorrent binds tokens to the key as well
    as the address), then stores; returns how many stores were acknowledged."""
    tokens = ask_all(target, socks, lambda j: token_query(ids[j], keys[j]), timeout=2.0)
    tokens = {j: bdecode_token(reply) for j, reply in tokens.items()}
    ready = [j for j, t in tokens.items() if t]
    replies = ask_all(target, [socks[j] for j in ready],
                      lambda n: store_query(ids[ready[n]], ready[n], tokens[ready[n]]), timeout=2.0)
    return sum(b"1:y1:r" in reply for reply in replies.values())


def memory(target, pid, socks, peers, items, rng):
    ids = [rng.randbytes(20) for _ in socks]
    info_hashes = [hashlib.sha1(b"bench-%d" % k).digest() for k in range(1000)]
    acked = 0
    rss0 = rss_bytes(pid)
    for round_no in range((peers + len(socks) - 1) // len(socks)):
        # Two queries per source per 0.5 s keeps every source under both rate limits; each
        # round sends a source to another info-hash, so every stored peer is a new address.
        started = time.perf_counter()
        count = min(len(socks), peers - round_no * len(socks))
        keys = [info_hashes[(j + 37 * round_no) % 1000] for j in range(count)]
        acked += store_round(
            target, socks[:count], ids, keys,
            lambda node_id, key: query("get_peers", {"id": node_id, "info_hash": key}, b"tk"),
            lambda node_id, j, token, keys=keys: query("announce_peer", {
                "id": node_id, "info_hash": keys[j], "port": 6881, "token": token}, b"an"))
        time.sleep(max(0.0, 0.5 - (time.perf_counter() - started)))
    time.sleep(1)
    rss1 = rss_bytes(pid)
    settle_rate_limits()
    values = [(b"item-%08d-" % n).ljust(200, b"x") for n in range(items)]
    items_acked = 0
    for first in range(0, items, len(socks)):
        chunk = values[first:first + len(socks)]
        keys = [hashlib.sha1(bencode(v)).digest() for v in chunk]
        items_acked += store_round(
            target, socks[:len(chunk)], ids, keys,
            lambda node_id, key: query("get", {"id": node_id, "target": key}, b"gt"),
            lambda node_id, j, token, chunk=chunk: query("put", {
                "id": node_id, "token": token, "v": chunk[j]}, b"pt"))
        time.sleep(0.5)
    time.sleep(1)
    rss2 = rss_bytes(pid)
    return {
        "peers": peers, "peers_acknowledged": acked, "items": items, "items_acknowledged": items_acked,
        "bytes_per_peer": (rss1 - rss0) / max(acked, 1),
        "bytes_per_item": (rss2 - rss1) / max(items_acked, 1),
        "rss_mib": rss2 / (1 << 20),
    }


def lookups(spore_bin, count, rng):
    """Lookup time and hops in 50 libtorrent + 50 spore nodes."""
    procs = []
    try:
        net = subprocess.Popen(
            ["/usr/bin/python3", "-W", "ignore", os.path.join(SHARED, "peers", "lt_dht.py"),
             "--nodes", "50", "--subnet", "72", "--base-port", "18000", "--seconds", "3600"],
            stdout=subprocess.PIPE, text=True)
        procs.append(net)
        lt_nodes = ["%s:%d" % tuple(n) for n in json.loads(net.stdout.readline())["nodes"]]
        spore_nodes = [f"127.0.73.{10 + i}:{18100 + i}" for i in range(50)]
        for i, addr in enumerate(spore_nodes):
            boot = [lt_nodes[i % 50]] + ([spore_nodes[0]] if i else [])
            cmd = [spore_bin, "dht", "--bind", addr]
            for b in boot:
                cmd += ["--bootstrap", b]
            procs.append(subprocess.Popen(cmd + ["node", "--interval", "3600"],
                                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        time.sleep(15)  # tables fill: spore nodes query libtorrent ones and the other way round
        everyone = lt_nodes + spore_nodes
        rows = []
        for j in range(count):
            target = rng.randbytes(20).hex()
            out = subprocess.run(
                [spore_bin, "--json", "dht", "--bind", f"127.0.74.{1 + j % 250}:0",
                 "--bootstrap", rng.choice(everyone), "find-node", target],
                capture_output=True, text=True, timeout=60)
            if out.returncode == 0:
                rows.append(json.loads(out.stdout))
    finally:
        for p in procs:
            p.kill()
            p.wait()

    def median(xs):
        xs = sorted(xs)
        return xs[len(xs) // 2] if xs else float("nan")
    return {
        "spore_lookups": len(rows),
        "spore_seconds_median": median([r["seconds"] for r in rows]),
        "spore_hops_median": median([r["hops"] for r in rows]),
        "spore_hops_max": max([r["hops"] for r in rows], default=0),
        "spore_queries_median": median([r["queried"] for r in rows]),
        "spore_seconds_max": max([r["seconds"] for r in rows], default=0),
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--spore", default=os.path.join(HERE, "..", "target", "release", "spore"))
    ap.add_argument("--seconds", type=float, default=10)
    ap.add_argument("--sources", type=int, default=4000)
    ap.add_argument("--peers", type=int, default=20000)
    ap.add_argument("--items", type=int, default=600)
    ap.add_argument("--parts", default="flood,memory")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--lookups", type=int, default=30)
    a = ap.parse_args()
    parts = set(a.parts.split(","))
    rng = random.Random(a.seed)
    if "lookup" in parts:
        result = lookups(a.spore, a.lookups, rng)
        print("| lookups | median (max) seconds | median (max) hops | median queries |")
        print("|---|---|---|---|")
        print("| spore find_node, %d | %.3f (%.3f) | %s (%s) | %s |" % (
            result["spore_lookups"], result["spore_seconds_median"], result["spore_seconds_max"],
            result["spore_hops_median"], result["spore_hops_max"], result["spore_queries_median"]))
        print(json.dumps(result))
        parts.discard("lookup")
        if not parts:
            return
    procs = []
    try:
        net = subprocess.Popen(
            ["/usr/bin/python3", "-W", "ignore", os.path.join(SHARED, "peers", "lt_dht.py"),
             "--nodes", "8", "--subnet", str(SUBNET), "--base-port", str(LT_BASE_PORT),
             "--seconds", "3600"], stdout=subprocess.PIPE, text=True)
        procs.append(net)
        json.loads(net.stdout.readline())
        bootstrap = f"127.0.{SUBNET}.10:{LT_BASE_PORT}"
        spore = subprocess.Popen(
            [a.spore, "dht", "--bind", "%s:%d" % SPORE_ADDR, "--bootstrap", bootstrap, "node",
             "--interval", "3600"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        procs.append(spore)
        lt = subprocess.Popen(
            ["/usr/bin/python3", "-W", "ignore", "-c", LT_TARGET, SHARED, LT_ADDR[0], str(LT_ADDR[1]),
             bootstrap], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        procs.append(lt)
        assert lt.stdout.readline().strip() == "ready"
        time.sleep(3)  # both join and settle
        results = {}
        for name, target, pid in (("spore", SPORE_ADDR, spore.pid), ("libtorrent", LT_ADDR, lt.pid)):
            row = {}
            if "flood" in parts:
                socks = sources(a.sources)
                # Every source stays under both nodes' per-address limits (4 queries/s).
                row.update(flood(target, pid, socks, a.seconds, rng, per_source_per_s=4))
                for s in socks:
                    s.close()
                settle_rate_limits()
                one = sources(1)
                single = flood(target, pid, one, a.seconds, rng)
                row["one_address_sent_per_s"] = single["sent_per_s"]
                row["one_address_answered_per_s"] = single["answered_per_s"]
                row["one_address_cpu_cores"] = single["cpu_cores"]
                one[0].close()
                settle_rate_limits()
            if "memory" in parts:
                socks = sources(a.sources)
                row.update(memory(target, pid, socks, a.peers, a.items, rng))
                for s in socks:
                    s.close()
            results[name] = row
            print(name, json.dumps(row), file=sys.stderr, flush=True)
        print("| node | sent/s | answered/s | CPU cores | answered per CPU-second "
              "| one-address flood: sent/s, answered/s, CPU | bytes/peer | bytes/item | RSS MiB |")
        print("|---|---|---|---|---|---|---|---|---|")
        for name, r in results.items():
            one = ("%.0f, %.1f, %.2f" % (r["one_address_sent_per_s"], r["one_address_answered_per_s"],
                                          r["one_address_cpu_cores"])
                   if "one_address_sent_per_s" in r else "-")
            print("| %s | %s | %s | %s | %s | %s | %s | %s | %s |" % (
                name,
                "%.0f" % r["sent_per_s"] if "sent_per_s" in r else "-",
                "%.0f" % r["answered_per_s"] if "answered_per_s" in r else "-",
                "%.2f" % r["cpu_cores"] if "cpu_cores" in r else "-",
                "%.0f" % r["answered_per_cpu_s"] if "answered_per_cpu_s" in r else "-",
                one,
                "%.0f" % r["bytes_per_peer"] if "bytes_per_peer" in r else "-",
                "%.0f" % r["bytes_per_item"] if "bytes_per_item" in r else "-",
                "%.1f" % r["rss_mib"] if "rss_mib" in r else "-"))
        print(json.dumps(results))
    finally:
        for p in procs:
            p.kill()
            p.wait()


if __name__ == "__main__":
    main()
