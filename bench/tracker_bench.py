#!/usr/bin/python3
"""Announces per second and memory per tracked peer: `spore tracker` against opentracker, in one run.

Usage: bench/tracker_bench.py [--torrents 1000] [--peers 200] [--seconds 10] [--rounds 2]
                              [--spore target/release/spore] [--load target/release/examples/tracker_load]

Both trackers run on loopback with the same whitelist (opentracker's Debian build only serves
whitelisted torrents) and get the same load from `tracker_load` (crates/tracker/examples): first
every peer of a `torrents * peers` population announces once over UDP (the RSS growth over the
idle process, divided by the peers, is the memory per tracked peer), then for each round UDP
announces (BEP 15, a window of requests in flight per thread) and HTTP announces (BEP 3, one
HTTP/1.0 connection per announce) for `--seconds` each, the trackers alternating. Every announce
asks for 50 peers. Prints a Markdown table of the best round of each.
Build first: cargo build --release -p spore && cargo build --release -p tracker --example tracker_load
"""
import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
TARGET = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for {pid}")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_tcp(port, proc, seconds=20):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            sys.exit(f"error: tracker exited early ({proc.returncode})")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    sys.exit(f"error: nothing listens on 127.0.0.1:{port} after {seconds} s")


def load(args, mode, port, threads, extra=()):
    addr = f"127.0.0.1:{port}"
    cmd = [args.load, mode, "--udp" if mode != "http" else "--http", addr,
           "--torrents", str(args.torrents), "--peers", str(args.peers),
           "--threads", str(threads), "--seconds", str(args.seconds), *extra]
    print(" ".join(cmd), file=sys.stderr, flush=True)
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, timeout=900).stdout
    print(out.strip(), file=sys.stderr, flush=True)
    return json.loads(out)


def start_spore(args, tmp, port, whitelist):
    cmd = [args.spore, "tracker", "--http", f"127.0.0.1:{port}", "--udp", f"127.0.0.1:{port}",
           "--whitelist", whitelist, "--rate-limit", "0"]
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=tmp)


def start_opentracker(args, tmp, port, whitelist):
    conf = os.path.join(tmp, "opentracker.conf")
    with open(conf, "w") as f:
        f.write(f"access.whitelist {whitelist}\nlisten.tcp_udp 127.0.0.1:{port}\n")
    return subprocess.Popen(["opentracker", "-f", conf], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, cwd=tmp)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--torrents", type=int, default=1000)
    ap.add_argument("--peers", type=int, default=200, help="peers per torrent")
    ap.add_argument("--seconds", type=float, default=10)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--udp-threads", type=int, default=2)
    ap.add_argument("--http-threads", type=int, default=8)
    ap.add_argument("--spore", default=os.path.join(TARGET, "release", "spore"))
    ap.add_argument("--load", default=os.path.join(TARGET, "release", "examples", "tracker_load"))
    args = ap.parse_args()
    for path in (args.spore, args.load):
        if not os.path.exists(path):
            sys.exit(f"error: {path} not found: build first (see --help)")

    trackers = {"spore": start_spore, "opentracker": start_opentracker}
    results = {name: {"udp": 0, "http": 0} for name in trackers}
    with tempfile.TemporaryDirectory(prefix="spore-tracker-bench-") as tmp:
        # opentracker started as root chroots into its working directory and drops to `nobody`
        # before it reads the whitelist: both must be readable by everyone.
        os.chmod(tmp, 0o755)
        whitelist = os.path.join(tmp, "whitelist.txt")
        hashes = subprocess.run([args.load, "hashes", "--torrents", str(args.torrents)],
                                check=True, capture_output=True, text=True).stdout
        with open(whitelist, "w") as f:
            f.write(hashes)
        procs, ports = {}, {}
        try:
            for name, start in trackers.items():
                ports[name] = free_port()
                procs[name] = start(args, tmp, ports[name], whitelist)
                wait_for_tcp(ports[name], procs[name])
                idle = rss_kib(procs[name].pid)
                populated = load(args, "populate", ports[name], args.udp_threads)
                peers = args.torrents * args.peers
                if populated["ok"] != peers:
                    sys.exit(f"error: {name} answered {populated['ok']} of {peers} populating announces")
                full = rss_kib(procs[name].pid)
                results[name]["idle_kib"] = idle
                results[name]["full_kib"] = full
                results[name]["bytes_per_peer"] = (full - idle) * 1024 / peers
            for _ in range(args.rounds):
                for mode, threads in (("udp", args.udp_threads), ("http", args.http_threads)):
                    for name in trackers:
                        r = load(args, mode, ports[name], threads)
                        if r["per_second"] > results[name][mode]:
                            results[name][mode] = r["per_second"]
                            results[name][f"{mode}_run"] = r
            for name in trackers:
                results[name]["end_kib"] = rss_kib(procs[name].pid)
        finally:
            for proc in procs.values():
                proc.terminate()
                proc.wait(timeout=10)

    s, o = results["spore"], results["opentracker"]
    print("| tracker | UDP announces/s | HTTP announces/s | RSS idle | RSS with peers | bytes per peer |")
    print("|---|---|---|---|---|---|")
    for name, r in results.items():
        print(f"| {name} | {r['udp']:.0f} | {r['http']:.0f} | {r['idle_kib'] / 1024:.1f} MiB "
              f"| {r['full_kib'] / 1024:.1f} MiB | {r['bytes_per_peer']:.0f} |")
    print(f"| spore / opentracker | {s['udp'] / o['udp']:.2f}x | {s['http'] / o['http']:.2f}x | | | "
          f"{s['bytes_per_peer'] / o['bytes_per_peer']:.2f}x |")
    print(f"\n{args.torrents} torrents x {args.peers} peers = {args.torrents * args.peers} peers, "
          f"numwant 50, {args.seconds:g} s per run, best of {args.rounds} rounds, UDP {args.udp_threads} "
          f"threads x 32 in flight, HTTP {args.http_threads} threads, {os.cpu_count()} cores "
          f"shared by tracker and load generator.")
    print("\nraw: " + json.dumps(results))


if __name__ == "__main__":
    main()
