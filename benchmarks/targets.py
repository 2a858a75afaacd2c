"""The speed issue's targets against a benchmark run's JSON (benchmarks/run.py --json).

    python benchmarks/targets.py docs/benchmark.json

Prints one line per target: what was asked, what was measured, met or not.
"""
import json
import sys

# (widths, batch, minimum ratio fastmlp / best peer), float32, all cores.
RATIO_TARGETS = [
    ("3-4-2", 1, 4.0), ("64-128-128-10", 1, 4.0), ("256-256-256-256-1", 1, 2.0),
    ("784-512-256-10", 1, 1.5), ("64-128-128-10", 32, 1.5), ("784-512-256-10", 32, 1.0),
    ("64-128-128-10", 16384, 1.3), ("256-256-256-256-1", 16384, 1.2),
    ("784-512-256-10", 16384, 1.05), ("1024-4096-1024", 16384, 1.0),
]


def widths_name(case):
    return "-".join(str(w) for w in case["widths"])


def find(cases, name, batch, dtype="float32", threads=None):
    for case in cases:
        if (widths_name(case) == name and case["batch"] == batch and case["dtype"] == dtype
                and (threads is None or case["threads"] == threads)):
            return case
    return None


def best_peer(case, only=None):
    peers = {k: v["median_us"] for k, v in case["tools"].items()
             if k != "fastmlp" and "median_us" in v and (only is None or k in only)}
    name = min(peers, key=peers.get)
    return name, peers[name]


def main(path):
    data = json.load(open(path))
    cases = data["cases"]
    all_cores = max(c["threads"] for c in cases)
    print(f"targets against {path} (float32 unless said, threads={all_cores})")
    for name, batch, want in RATIO_TARGETS:
        case = find(cases, name, batch, threads=all_cores)
        if case is None:
            print(f"  {name} batch {batch}: not measured")
            continue
        peer, peer_us = best_peer(case)
        ours = case["tools"]["fastmlp"]["median_us"]
        ratio = peer_us / ours
        verdict = "met" if ratio >= want else f"MISSED by {want / ratio:.2f}x"
        print(f"  {name:18s} batch {batch:5d}: {ratio:5.2f}x vs {peer} "
              f"({ours:,.2f} us vs {peer_us:,.2f} us), target {want}x: {verdict}")
    gemm = data["gemm"].get(f"float32/threads={all_cores}")
    case = find(cases, "784-512-256-10", 16384, threads=all_cores)
    if gemm and case:
        share = case["tools"]["fastmlp"]["gflops"] / gemm
        print(f"  784-512-256-10 batch 16384: {share:.0%} of numpy's float32 GEMM rate "
              f"({gemm:.0f} GFLOP/s), target 90%: {'met' if share >= 0.9 else 'MISSED'}")
    worst = None
    for case in cases:
        if case["dtype"] != "float64":
            continue
        peer, peer_us = best_peer(case, only=("numpy", "numpy-careful"))
        ratio = peer_us / case["tools"]["fastmlp"]["median_us"]
        if worst is None or ratio < worst[0]:
            worst = (ratio, widths_name(case), case["batch"], case["threads"], peer)
    if worst:
        ratio, name, batch, threads, peer = worst
        print(f"  float64, never slower than numpy: worst {ratio:.2f}x ({name}, batch {batch}, "
              f"threads {threads}, vs {peer}): {'met' if ratio >= 1 else 'MISSED'}")
    memory = data.get("memory", {}).get("fastmlp")
    if memory:
        mib = memory["peak_beyond_mib"]
        print(f"  memory at {memory['rows']:,} rows: {mib:.1f} MiB beyond input and output, "
              f"target < 64 MiB: {'met' if mib < 64 else 'MISSED'}")
    imported = data.get("import")
    if imported:
        ms = imported.get("fastmlp_ms", imported.get("median_ms"))
        if ms is not None:
            print(f"  import fastmlp after numpy: {ms:.1f} ms, target <= 20 ms: "
                  f"{'met' if ms <= 20 else 'MISSED'}")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "docs/benchmark.json")
