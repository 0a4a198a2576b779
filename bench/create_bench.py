#!/usr/bin/python3
"""Hashing throughput of `spore create` against libtorrent's create_torrent, in one run.

Usage: bench/create_bench.py [--size-mib 2048] [--rounds 3] [--spore target/release/spore]

Writes a file of pseudo-random bytes (in a temporary directory, removed afterwards), warms the page
cache, then for v1 and v2 alternately times `spore create` and libtorrent 2.0's
create_torrent + set_piece_hashes on the same file with the same piece size, and prints a
Markdown table of the best round of each: MiB/s, CPU seconds, and spore/libtorrent ratios.
The two must produce the same info-hash; the script stops if they do not.
Needs Debian's python3-libtorrent (../shared/peers/install.sh) and a release build of spore.
"""
import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time

LT_SCRIPT = r"""
import sys, libtorrent as lt
path, piece, kind = sys.argv[1], int(sys.argv[2]), sys.argv[3]
flags = lt.create_torrent.v1_only if kind == "v1" else lt.create_torrent.v2_only
fs = lt.file_storage()
lt.add_files(fs, path)
ct = lt.create_torrent(fs, piece, flags=flags)
import os
lt.set_piece_hashes(ct, os.path.dirname(path))
ti = lt.torrent_info(lt.bencode(ct.generate()))
ih = ti.info_hashes()
print(str(ih.v1) if kind == "v1" else str(ih.v2))
"""


def timed(cmd):
    """Runs cmd; returns (stdout, wall seconds, CPU seconds of the child)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return out, wall, cpu


def write_file(path, size_mib):
    chunk = os.urandom(1 << 20)
    with open(path, "wb") as f:
        for i in range(size_mib):
            # Vary every MiB so no two pieces are equal; cheap compared to urandom per MiB.
            f.write(i.to_bytes(8, "little") + chunk[8:])


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size-mib", type=int, default=2048)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--piece-length", type=int, default=4 << 20)
    ap.add_argument("--spore", default=os.path.join(os.path.dirname(__file__), "..", "target", "release", "spore"))
    args = ap.parse_args()
    if not os.path.exists(args.spore):
        sys.exit(f"error: {args.spore} not found: run `cargo build --release` first")

    with tempfile.TemporaryDirectory(prefix="spore-create-bench-") as tmp:
        data = os.path.join(tmp, "big.bin")
        write_file(data, args.size_mib)
        with open(data, "rb") as f:  # warm the page cache: we measure hashing, not the disk
            while f.read(16 << 20):
                pass
        rows = []
        for kind in ("v1", "v2"):
            best = {}
            for _ in range(args.rounds):
                out_path = os.path.join(tmp, f"out-{kind}.torrent")
                spore_out, wall, cpu = timed([args.spore, "--json", "-q", "create", data, f"--{kind}",
                                             "--piece-length", str(args.piece_length), "--force", "-o", out_path])
                spore_hash = json.loads(spore_out)[f"info_hash_{kind}"]
                lt_out, lt_wall, lt_cpu = timed(["/usr/bin/python3", "-c", LT_SCRIPT, data, str(args.piece_length), kind])
                if lt_out.strip() != spore_hash:
                    sys.exit(f"error: {kind} info-hash differs: spore {spore_hash}, libtorrent {lt_out.strip()}")
                for name, w, c in (("spore", wall, cpu), ("libtorrent", lt_wall, lt_cpu)):
                    if name not in best or w < best[name][0]:
                        best[name] = (w, c)
            mib = args.size_mib
            s, l = best["spore"], best["libtorrent"]
            rows.append((kind, mib / s[0], s[1], mib / l[0], l[1], l[0] / s[0]))
        print(f"| hash | spore MiB/s | spore CPU s | libtorrent MiB/s | libtorrent CPU s | ratio spore/libtorrent |")
        print("|---|---|---|---|---|---|")
        for kind, s_rate, s_cpu, l_rate, l_cpu, ratio in rows:
            print(f"| {kind} | {s_rate:.0f} | {s_cpu:.1f} | {l_rate:.0f} | {l_cpu:.1f} | {ratio:.2f}x |")
        print(f"\n{args.size_mib} MiB file, piece length {args.piece_length}, best of {args.rounds} rounds, "
              f"{os.cpu_count()} cores, page cache warm.")


if __name__ == "__main__":
    main()
