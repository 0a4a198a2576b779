#!/usr/bin/python3
"""Swarm throughput on loopback: every seeder -> downloader pair among spore, libtorrent and aria2.

Usage: bench/swarm_bench.py [--size-mib 1024] [--spore target/release/spore] [--timeout 240]
                            [--only spore,libtorrent] [--rounds 3] [--json results.json]

Writes one file of pseudo-random bytes (in a temporary directory, removed afterwards), makes a v1
torrent of it with `spore create` (1 MiB pieces) announcing to Debian's opentracker on loopback,
then for every pair of seeder and downloader (and two four-seeder swarms: 2 spore + 2 libtorrent
seeders to a spore downloader and to a libtorrent downloader) runs the seeders, waits until the
tracker lists them, and times one downloader from start to exit. Peers find each other only
through the tracker (aria2 cannot be given a peer address). Every peer has its own 127.0.0.x
address, TCP only, DHT and local discovery off. Prints a Markdown table: MiB/s over the
downloader's whole run, its CPU seconds per GiB (wait4's rusage) and peak RSS (VmHWM), and the
ratios to libtorrent -> libtorrent; with --rounds N, the median of N interleaved rounds. A pair
that fails or times out is reported as such.
Needs ../shared/peers/install.sh (libtorrent, aria2, opentracker) and a release build of spore.
"""
import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
SHARED = os.environ.get("SPORE_SHARED", os.path.join(ROOT, "..", "shared"))
LT_PEER = os.path.join(SHARED, "peers", "lt_peer.py")
TRACKER_IP = "127.0.0.1"
KINDS = ["spore", "libtorrent", "aria2"]


def free_port(ip):
    """A port on ip free for both TCP and UDP now."""
    for _ in range(50):
        with socket.socket() as tcp:
            tcp.bind((ip, 0))
            port = tcp.getsockname()[1]
            try:
                with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
                    udp.bind((ip, port))
                    return port
            except OSError:
                continue
    raise RuntimeError(f"no free port on {ip}")


def write_file(path, size_mib):
    chunk = os.urandom(1 << 20)
    with open(path, "wb") as f:
        for i in range(size_mib):
            # Vary every MiB so no two pieces are equal; cheap compared to urandom per MiB.
            f.write(i.to_bytes(8, "little") + chunk[8:])


def bdecode(data, i=0):
    """A minimal bencode reader for scrape answers: returns (value, next index)."""
    c = data[i:i + 1]
    if c == b"i":
        end = data.index(b"e", i)
        return int(data[i + 1:end]), end + 1
    if c == b"l":
        out, i = [], i + 1
        while data[i:i + 1] != b"e":
            v, i = bdecode(data, i)
            out.append(v)
        return out, i + 1
    if c == b"d":
        out, i = {}, i + 1
        while data[i:i + 1] != b"e":
            k, i = bdecode(data, i)
            v, i = bdecode(data, i)
            out[k] = v
        return out, i + 1
    colon = data.index(b":", i)
    n = int(data[i:colon])
    return data[colon + 1:colon + 1 + n], colon + 1 + n


class Tracker:
    """opentracker with the torrent whitelisted, restarted fresh for every pair."""

    def __init__(self, workdir, port, info_hash_hex):
        self.addr = f"{TRACKER_IP}:{port}"
        self.info_hash = bytes.fromhex(info_hash_hex)
        whitelist = os.path.join(workdir, "whitelist.txt")
        with open(whitelist, "w") as f:
            f.write(info_hash_hex + "\n")
        self.config = os.path.join(workdir, "opentracker.conf")
        with open(self.config, "w") as f:
            f.write(f"access.whitelist {whitelist}\nlisten.tcp_udp {self.addr}\n")
        self.proc = None

    def start(self):
        self.proc = subprocess.Popen(["opentracker", "-f", self.config],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(500):
            try:
                with socket.create_connection(self.addr.split(":"), timeout=0.2):
                    return
            except OSError:
                time.sleep(0.02)
        raise RuntimeError("opentracker did not start")

    def stop(self):
        if self.proc:
            self.proc.kill()
            self.proc.wait()
            self.proc = None

    def seeders(self):
        query = "".join(f"%{b:02X}" for b in self.info_hash)
        with urllib.request.urlopen(f"http://{self.addr}/scrape?info_hash={query}", timeout=5) as r:
            files = bdecode(r.read())[0].get(b"files", {})
        return files.get(self.info_hash, {}).get(b"complete", 0)


def seeder_cmd(kind, args, torrent, data_dir, ip, port):
    if kind == "spore":
        return [args.spore, "--quiet", "seed", torrent, data_dir, "--listen", f"{ip}:{port}",
                "--bind", ip, "--no-dht"]
    if kind == "libtorrent":
        return ["/usr/bin/python3", LT_PEER, "seed", torrent, data_dir, "--listen", f"{ip}:{port}",
                "--until-stdin-eof"]
    return ["aria2c", f"--dir={data_dir}", "--bt-seed-unverified=true", "--seed-ratio=0.0",
            "--seed-time=600", f"--interface={ip}", f"--listen-port={port}", "--enable-dht=false",
            "--enable-dht6=false", "--bt-enable-lpd=false", "--enable-peer-exchange=false",
            "--summary-interval=0", "--console-log-level=error", torrent]


def downloader_cmd(kind, args, torrent, out_dir, ip, port):
    if kind == "spore":
        return [args.spore, "--quiet", "get", torrent, "-o", out_dir, "--listen", f"{ip}:{port}",
                "--bind", ip, "--no-dht"]
    if kind == "libtorrent":
        return ["/usr/bin/python3", LT_PEER, "get", torrent, out_dir, "--listen", f"{ip}:{port}",
                "--seconds", str(args.timeout)]
    return ["aria2c", f"--dir={out_dir}", "--seed-time=0", f"--interface={ip}",
            f"--listen-port={port}", "--file-allocation=none", "--enable-dht=false",
            "--enable-dht6=false", "--bt-enable-lpd=false", "--enable-peer-exchange=false",
            "--summary-interval=0", "--console-log-level=error", torrent]


def vm_hwm_kib(pid):
    """The process's peak RSS so far (VmHWM), 0 if it is gone. wait4's ru_maxrss would count
    the Python interpreter that forked it, before exec."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def stop(proc):
    """Asks a seeder to leave (stdin EOF, Ctrl-C), then kills it if it lingers."""
    if proc.poll() is None:
        if proc.stdin:
            proc.stdin.close()
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def run_pair(args, work, torrent, data_dir, payload, seeders, downloader, tracker, ip_base):
    """One measurement: returns a dict with the figures or the failure."""
    tracker.start()
    procs = []
    result = {"seeders": seeders, "downloader": downloader}
    out_dir = os.path.join(work, "out")
    try:
        for n, kind in enumerate(seeders):
            ip = f"127.0.{ip_base}.{10 + n}"
            procs.append(subprocess.Popen(seeder_cmd(kind, args, torrent, data_dir, ip,
                                                     free_port(ip)),
                                          stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                          stderr=subprocess.DEVNULL))
        deadline = time.monotonic() + 120
        while tracker.seeders() < len(seeders):
            if time.monotonic() > deadline:
                result["status"] = "seeders never announced"
                return result
            if any(p.poll() is not None for p in procs):
                result["status"] = "a seeder exited"
                return result
            time.sleep(0.2)
        os.makedirs(out_dir)
        ip = f"127.0.{ip_base}.50"
        cmd = downloader_cmd(downloader, args, torrent, out_dir, ip, free_port(ip))
        start = time.monotonic()
        # stderr to a file: a full pipe would stall the downloader.
        err_path = os.path.join(work, "downloader.err")
        with open(err_path, "wb") as err:
            proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=err)
        deadline = start + args.timeout
        status, usage, peak_kib = None, None, 0
        while True:
            peak_kib = max(peak_kib, vm_hwm_kib(proc.pid))
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if time.monotonic() > deadline:
                proc.kill()
                os.wait4(proc.pid, 0)
                result["status"] = f"timeout ({args.timeout} s)"
                return result
            time.sleep(0.02)
        wall = time.monotonic() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        if proc.returncode != 0:
            with open(err_path, "rb") as err:
                tail = err.read()[-300:].decode(errors="replace").strip()
            result["status"] = f"exit {proc.returncode}: {tail}"
            return result
        got = os.path.join(out_dir, os.path.basename(payload))
        same = subprocess.run(["cmp", "-s", payload, got]).returncode == 0
        if not same:
            result["status"] = "wrong data"
            return result
        size_gib = os.path.getsize(payload) / 2**30
        cpu = usage.ru_utime + usage.ru_stime
        result.update(status="ok", seconds=round(wall, 2),
                      mib_s=round(os.path.getsize(payload) / 2**20 / wall, 1),
                      cpu_s_per_gib=round(cpu / size_gib, 2),
                      rss_mb=round(peak_kib / 1024, 1))
        return result
    finally:
        for p in procs:
            stop(p)
        tracker.stop()
        subprocess.run(["rm", "-rf", out_dir])


def label(r):
    seeders = r["seeders"]
    left = seeders[0] if len(seeders) == 1 else "4 (2 spore + 2 libtorrent)"
    return f"{left} → {r['downloader']}"


def median_result(results):
    """One pair's runs folded into one: the median of each figure over the runs that worked
    (any failure is reported instead)."""
    ok = [r for r in results if r["status"] == "ok"]
    if len(ok) < len(results):
        return next(r for r in results if r["status"] != "ok")
    folded = dict(ok[0])
    for key in ("seconds", "mib_s", "cpu_s_per_gib", "rss_mb"):
        values = sorted(r[key] for r in ok)
        folded[key] = values[len(values) // 2]
    return folded


def table(results):
    base = next((r for r in results if r["seeders"] == ["libtorrent"]
                 and r["downloader"] == "libtorrent" and r["status"] == "ok"), None)
    lines = ["| seeder → downloader | MiB/s | CPU s/GiB (downloader) | peak RSS MB | "
             "MiB/s vs lt→lt | CPU vs lt→lt | result |",
             "|---|---:|---:|---:|---:|---:|---|"]
    for r in results:
        if r["status"] != "ok":
            lines.append(f"| {label(r)} | – | – | – | – | – | {r['status']} |")
            continue
        speed = f"{r['mib_s'] / base['mib_s']:.2f}×" if base else "–"
        cpu = f"{r['cpu_s_per_gib'] / base['cpu_s_per_gib']:.2f}×" if base else "–"
        lines.append(f"| {label(r)} | {r['mib_s']} | {r['cpu_s_per_gib']} | {r['rss_mb']} | "
                     f"{speed} | {cpu} | ok ({r['seconds']} s) |")
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size-mib", type=int, default=1024)
    ap.add_argument("--spore", default=os.path.join(ROOT, "target", "release", "spore"))
    ap.add_argument("--timeout", type=int, default=240, help="seconds for one download")
    ap.add_argument("--only", default=",".join(KINDS),
                    help="comma-separated kinds to include (spore, libtorrent, aria2)")
    ap.add_argument("--rounds", type=int, default=1,
                    help="run the whole matrix this many times, interleaved, and report medians "
                         "(CPU time on a shared VM varies from run to run)")
    ap.add_argument("--json", help="also write the results here")
    args = ap.parse_args()
    kinds = [k for k in args.only.split(",") if k in KINDS]
    with tempfile.TemporaryDirectory(prefix="swarm-bench-") as work:
        # opentracker drops privileges before it reads its whitelist.
        os.chmod(work, 0o755)
        data_dir = os.path.join(work, "data")
        os.makedirs(data_dir)
        payload = os.path.join(data_dir, "payload.bin")
        print(f"writing {args.size_mib} MiB ...", file=sys.stderr)
        write_file(payload, args.size_mib)
        port = free_port(TRACKER_IP)
        torrent = os.path.join(work, "payload.torrent")
        subprocess.run([args.spore, "--quiet", "create", "--v1", "--piece-length", "1M",
                        "--tracker", f"http://{TRACKER_IP}:{port}/announce", payload,
                        "-o", torrent], check=True, stdout=subprocess.DEVNULL)
        info = json.loads(subprocess.run([args.spore, "--json", "info", torrent], check=True,
                                         capture_output=True, text=True).stdout)
        tracker = Tracker(work, port, info["info_hash_v1"])
        runs = [([s], d) for s in kinds for d in kinds]
        if "spore" in kinds and "libtorrent" in kinds:
            four = ["spore", "spore", "libtorrent", "libtorrent"]
            runs += [(four, "spore"), (four, "libtorrent")]
        rounds = [[] for _ in runs]
        for round_no in range(args.rounds):
            for n, (seeders, downloader) in enumerate(runs):
                r = run_pair(args, work, torrent, data_dir, payload, seeders, downloader, tracker,
                             ip_base=10 + n)
                print(f"round {round_no + 1}, {label(r)}: {r}", file=sys.stderr, flush=True)
                rounds[n].append(r)
        results = [median_result(rs) for rs in rounds]
    print(table(results))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
