"""The speed issue's targets against a benchmark run's JSON (benchmarks/run.py --json).

    python benchmarks/targets.py docs/benchmark.json

Prints one line per target: what was asked, what was measured, met or not.
"""
import json
import sys

import numpy as np

# (widths, batch, minimum ratio fastmlp / best peer), float32, all cores.
RATIO_TARGETS = [
    ("3-4-2", 1, 4.0), ("64-128-128-10", 1, 4.0), ("256-256-256-256-1", 1, 2.0),
    ("784-512-256-10", 1, 1.5), ("64-128-128-10", 32, 1.5), ("784-512-256-10", 32, 1.0),
    ("64-128-128-10", 16384, 1.3), ("256-256-256-256-1", 16384, 1.2),
    ("784-512-256-10", 16384, 1.05), ("1024-4096-1024", 16384, 1.0),
]


# Issue 8, reduced precision, all cores: (precision, widths, batch, against, minimum ratio
# tool time / fastmlp-<precision> time). `against`: "float32" = fastmlp's own float32,
# "peer" = the best peer of that precision, or one peer's name.
AMX_TARGETS = [
    ("bfloat16", "784-512-256-10", 16384, "float32", 4.0),
    ("bfloat16", "784-512-256-10", 16384, "torch bf16", 1.3),
    ("int8", "784-512-256-10", 16384, "peer", 1.3),
    ("bfloat16", "784-512-256-10", 32, "peer", 1.5),
    ("int8", "784-512-256-10", 32, "peer", 1.5),
    ("int8", "64-128-128-10", 1, "float32", 1.5),
]
# Without AMX (AVX512-BF16 / VNNI only): beat fastmlp float32 at batch 1024 and up.
NO_AMX_MIN_BATCH, NO_AMX_NETWORK = 1024, "784-512-256-10"
TORCH_BF16 = ("torch-autocast-bf16", "torch-bf16")


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


def precision_cell(cases, precision, name, batch, threads):
    for case in cases:
        if (case["precision"] == precision and widths_name(case) == name
                and case["batch"] == batch and case["threads"] == threads):
            return case
    return None


def _against(case, against):
    """(label, ratio) of one target's comparison in a precision cell, or None."""
    ratios = case["ratios"]
    if against == "float32":
        names = ["fastmlp"]
    elif against == "torch bf16":
        names = [n for n in TORCH_BF16 if n in ratios]
    else:
        names = [n for n in ratios if n != "fastmlp"]
    names = [n for n in names if n in ratios]
    if not names:
        return None
    best = min(names, key=ratios.get)
    return ("fastmlp float32" if best == "fastmlp" else best), ratios[best]


def _verdict(ratio, want, strict=False):
    ok = ratio > want if strict else ratio >= want
    return "met" if ok else f"MISSED by {want / ratio:.2f}x"


def precision_targets(data):
    """Print issue 8's targets: which apply to the measured machine, and met or missed."""
    cases = data.get("precision_cases") or []
    flags = data["meta"]["machine"].get("cpu_flags", {})
    amx = {p: flags.get("amx_tile", False) and flags.get(f, False)
           for p, f in (("bfloat16", "amx_bf16"), ("int8", "amx_int8"))}
    fast = {"bfloat16": flags.get("avx512_bf16", False),
            "int8": flags.get("avx512_vnni", False) or flags.get("avx_vnni", False)}
    if not cases:
        print("reduced precision (issue 8): not measured (run without --precisions none)")
        return
    threads = max(c["threads"] for c in cases)
    have = ", ".join(f for f, v in flags.items() if v) or "none of the flags"
    print(f"reduced precision (issue 8), threads={threads}; this CPU has {have}")
    for precision in ("bfloat16", "int8"):
        if amx[precision]:
            where = "AMX: the AMX targets apply"
        elif fast[precision]:
            where = "no AMX, AVX512-BF16/VNNI: the no-AMX targets apply"
        else:
            where = ("neither AMX nor AVX512-BF16/VNNI: no target applies to this machine "
                     "(printed for information)")
        print(f"  {precision}: {where}")
    for precision, name, batch, against, want in AMX_TARGETS:
        applies = "" if amx[precision] else " [AMX target, n/a here]"
        what = f"{precision:8s} {name:15s} batch {batch:5d} vs {against}"
        case = precision_cell(cases, precision, name, batch, threads)
        got = _against(case, against) if case else None
        if got is None:
            print(f"  {what}: not measured{applies}")
            continue
        label, ratio = got
        print(f"  {what}: {ratio:5.2f}x vs {label}, target {want}x: "
              f"{_verdict(ratio, want)}{applies}")
    for precision in ("bfloat16", "int8"):
        applies = "" if fast[precision] and not amx[precision] else " [no-AMX target, n/a here]"
        big = [c for c in cases if c["precision"] == precision and c["threads"] == threads
               and widths_name(c) == NO_AMX_NETWORK and c["batch"] >= NO_AMX_MIN_BATCH
               and "fastmlp" in c["ratios"]]
        what = (f"{precision:8s} {NO_AMX_NETWORK:15s} batch >= {NO_AMX_MIN_BATCH} beats "
                "fastmlp float32")
        if not big:
            print(f"  {what}: not measured{applies}")
            continue
        worst = min(big, key=lambda c: c["ratios"]["fastmlp"])
        ratio = worst["ratios"]["fastmlp"]
        print(f"  {what}: worst {ratio:5.2f}x (batch {worst['batch']}), target > 1x: "
              f"{_verdict(ratio, 1.0, strict=True)}{applies}")


# Issue 10, the execution plan: every cell of the float32 and float64 tables, both thread
# counts, at least 1.0x the best peer; float32 geomean at least 1.3x; two threads at least
# 1.8x one thread at batch >= 1024 wherever one thread takes over 200 us; 784-512-256-10 at
# batch 1 at least 1.5x ONNX Runtime on both thread counts.
CELL_MIN, GEOMEAN_MIN = 1.0, 1.3
SPEEDUP_MIN, SPEEDUP_MIN_BATCH, SPEEDUP_MIN_US = 1.8, 1024, 200.0
ORT = ("onnxruntime", "ort-iobind")


def cell_ratio(case):
    peer, peer_us = best_peer(case)
    return peer_us / case["tools"]["fastmlp"]["median_us"], peer


def plan_targets(cases):
    """Print issue 10's targets: cells below 1.0x, the geomean, the thread speed-ups."""
    print("execution plan (issue 10), every cell of the float tables:")
    for dtype in ("float32", "float64"):
        cells = [c for c in cases if c["dtype"] == dtype]
        if not cells:
            print(f"  {dtype}: not measured")
            continue
        ratios = [cell_ratio(c) for c in cells]
        below = [(r, p, c) for (r, p), c in zip(ratios, cells) if r < CELL_MIN]
        geomean = float(np.exp(np.mean(np.log([r for r, _ in ratios]))))
        print(f"  {dtype}: {len(cells) - len(below)} of {len(cells)} cells at least "
              f"{CELL_MIN}x the best peer, geomean {geomean:.2f}x"
              + (f" (target {GEOMEAN_MIN}x: {_verdict(geomean, GEOMEAN_MIN)})"
                 if dtype == "float32" else ""))
        for ratio, peer, case in sorted(below, key=lambda item: item[0]):
            print(f"    below: {widths_name(case):18s} batch {case['batch']:5d} threads "
                  f"{case['threads']}: {ratio:.2f}x vs {peer}")
    for case in cases:
        if case["threads"] != 1 or case["batch"] < SPEEDUP_MIN_BATCH:
            continue
        one = case["tools"]["fastmlp"]["median_us"]
        two_case = find(cases, widths_name(case), case["batch"], case["dtype"], threads=2)
        if one <= SPEEDUP_MIN_US or two_case is None:
            continue
        speedup = one / two_case["tools"]["fastmlp"]["median_us"]
        print(f"  two threads {case['dtype']} {widths_name(case):18s} batch {case['batch']:5d}: "
              f"{speedup:.2f}x one thread ({one:,.0f} us), target {SPEEDUP_MIN}x: "
              f"{_verdict(speedup, SPEEDUP_MIN)}")
    for threads in (1, 2):
        case = find(cases, "784-512-256-10", 1, threads=threads)
        if case is None:
            continue
        peer, peer_us = best_peer(case, only=ORT)
        ratio = peer_us / case["tools"]["fastmlp"]["median_us"]
        print(f"  784-512-256-10 batch 1 threads {threads}: {ratio:.2f}x vs {peer}, target 1.5x: "
              f"{_verdict(ratio, 1.5)}")


def main(path):
    data = json.load(open(path))
    cases = data["cases"]
    if not cases:
        precision_targets(data)
        return
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
              f"({gemm:.0f} GFLOP/s), target 92%: {'met' if share >= 0.92 else 'MISSED'}")
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
    plan_targets(cases)
    precision_targets(data)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "docs/benchmark.json")
