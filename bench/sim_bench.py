#!/usr/bin/python3
"""Scale of `spore sim`: wall time, CPU time, peak memory and events per second per network size.

Usage: bench/sim_bench.py [--nodes 10000,100000] [--scenario scenarios/hour.toml]
                          [--spore target/release/spore] [--out sim-bench-out] [--threads 0]

For each size, runs `spore sim SCENARIO --nodes N --threads T --out OUT/N` (T = 0: one thread
per core) under /usr/bin/time -v (the
scenario's warm-up, then one simulated hour of lookups for scenarios/hour.toml) and prints a
Markdown table: simulated seconds, wall and CPU seconds, peak resident memory, bytes per simulated
node (peak RSS / N), simulated events and events per wall and per CPU second, lookup success and
mean hops from the run's report. The machine's load average before and after each run is printed
too: on a shared machine wall time depends on it, CPU time much less. Needs a release build of
spore (cargo build --release -p spore).
"""
import argparse
import json
import os
import re
import subprocess
import sys


def time_field(stderr, name):
    """A value from /usr/bin/time -v output, e.g. 'Maximum resident set size (kbytes)'."""
    match = re.search(re.escape(name) + r": (.+)", stderr)
    if not match:
        sys.exit(f"/usr/bin/time did not report {name!r}:\n{stderr}")
    return match.group(1).strip()


def wall_secs(text):
    """Seconds from time's 'h:mm:ss' or 'm:ss.ss'."""
    secs = 0.0
    for part in text.split(":"):
        secs = secs * 60 + float(part)
    return secs


def run(spore, scenario, nodes, threads, out):
    load_before = os.getloadavg()[0]
    cmd = ["/usr/bin/time", "-v", spore, "sim", scenario, "--nodes", str(nodes),
           "--threads", str(threads), "--out", out]
    # spore prints a progress line per 5% of simulated time to stderr: keep a log to follow.
    os.makedirs(out, exist_ok=True)
    log_path = os.path.join(out, "stderr.log")
    with open(log_path, "w") as log:
        done = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=log)
    with open(log_path) as log:
        err = log.read()
    if done.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed:\n{err}")
    load_after = os.getloadavg()[0]
    peak_bytes = int(time_field(err, "Maximum resident set size (kbytes)")) * 1024
    cpu = float(time_field(err, "User time (seconds)")) + float(
        time_field(err, "System time (seconds)"))
    wall = wall_secs(time_field(err, "Elapsed (wall clock) time (h:mm:ss or m:ss)"))
    with open(os.path.join(out, "report.json")) as f:
        report = json.load(f)
    run_report = report["runs"][0]
    scenario_used = report["scenario"]
    events = run_report["engine"]["events"]
    return {
        "nodes": nodes,
        "simulated_secs": scenario_used["warmup_secs"] + scenario_used["duration_secs"],
        "wall_secs": wall,
        "cpu_secs": cpu,
        "peak_bytes": peak_bytes,
        "bytes_per_node": peak_bytes // nodes,
        "events": events,
        "events_per_wall_sec": events / max(wall, 1e-9),
        "events_per_cpu_sec": events / max(cpu, 1e-9),
        "lookups": run_report["lookups"]["completed"],
        "success": run_report["lookups"]["success_rate"],
        "mean_hops": run_report["lookups"]["mean_hops"],
        "load": (load_before, load_after),
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--nodes", default="10000,100000")
    parser.add_argument("--scenario", default="scenarios/hour.toml")
    parser.add_argument("--spore", default=os.path.join(
        os.environ.get("CARGO_TARGET_DIR", "target"), "release", "spore"))
    parser.add_argument("--out", default="sim-bench-out")
    parser.add_argument("--threads", type=int, default=0, help="0: one per core")
    args = parser.parse_args()
    rows = []
    for nodes in [int(n) for n in args.nodes.split(",")]:
        row = run(args.spore, args.scenario, nodes, args.threads, os.path.join(args.out, str(nodes)))
        print(json.dumps(row), file=sys.stderr, flush=True)
        rows.append(row)
    print("| nodes | simulated | wall | CPU | peak RSS | bytes/node | events | events/s (wall) "
          "| events/s (CPU) | lookups | success | mean hops | load before/after |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    for r in rows:
        print(f"| {r['nodes']:,} | {r['simulated_secs'] / 60:.0f} min | {r['wall_secs']:.0f} s "
              f"| {r['cpu_secs']:.0f} s | {r['peak_bytes'] / 2**30:.2f} GiB "
              f"| {r['bytes_per_node']:,} | {r['events']:,} | {r['events_per_wall_sec']:,.0f} "
              f"| {r['events_per_cpu_sec']:,.0f} | {r['lookups']:,} | {r['success'] * 100:.1f}% "
              f"| {r['mean_hops']:.2f} | {r['load'][0]:.1f} / {r['load'][1]:.1f} |")


if __name__ == "__main__":
    main()
