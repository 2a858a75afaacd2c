#!/usr/bin/env python3
"""The README's speed tables, in Markdown, from a run's JSON (benchmarks/run.py --json).

    python benchmarks/tables.py docs/benchmark.json

Prints the float tables (fastmlp's time and the best peer's time / fastmlp's, per network,
batch, dtype and thread count) and the reduced-precision tables (784-512-256-10), so that
the README shows exactly what the committed JSON holds.
"""
import json
import sys

PRECISION_NETWORK = "784-512-256-10"


def format_us(us: float) -> str:
    """Three significant figures below 100 µs, whole µs with thousands commas above."""
    if us < 10:
        return f"{us:.2f}"
    if us < 1000:
        return f"{us:.1f}"
    return f"{us:,.0f}"


def best_peer(tools: dict, own: str) -> tuple[str, float]:
    peers = {name: t["median_us"] for name, t in tools.items() if name != own}
    name = min(peers, key=peers.get)
    return name, peers[name]


def float_table(cases: list, dtype: str, threads: int, batches: list) -> list[str]:
    who = "both cores" if threads > 1 else "one thread"
    lines = [f"{dtype}, {who}: µs per call, and the best peer's time / fastmlp's "
             "(>1: fastmlp faster)", "",
             "| network | " + " | ".join(f"batch {b}" for b in batches) + " |",
             "|---" * (len(batches) + 1) + "|"]
    networks = dict.fromkeys(c["network"] for c in cases)
    for network in networks:
        cells = []
        for batch in batches:
            case = next(c for c in cases if c["network"] == network and c["dtype"] == dtype
                        and c["threads"] == threads and c["batch"] == batch)
            own = case["tools"]["fastmlp"]["median_us"]
            peer, peer_us = best_peer(case["tools"], "fastmlp")
            cells.append(f"{format_us(own)} ({peer_us / own:.2f}x {peer})")
        lines.append(f"| {network} | " + " | ".join(cells) + " |")
    return lines


def precision_cell(tools: dict, names: list) -> str:
    present = [n for n in names if n in tools]
    name = min(present, key=lambda n: tools[n]["median_us"])
    tool = tools[name]
    suffix = f" {name}" if len(names) > 1 else ""
    return f"{format_us(tool['median_us'])} ({tool['max_rel_err']:.1e}){suffix}"


def precision_table(cases: list, threads: int) -> list[str]:
    lines = ["| batch | fastmlp float32 | fastmlp bf16 | best PyTorch bf16 | fastmlp int8 "
             "| best int8 peer |", "|---|---|---|---|---|---|"]
    mine = [c for c in cases if c["widths"] and "-".join(map(str, c["widths"])) ==
            PRECISION_NETWORK and c["threads"] == threads]
    for batch in sorted({c["batch"] for c in mine}):
        bf16 = next(c["tools"] for c in mine if c["batch"] == batch
                    and c["precision"] == "bfloat16")
        int8 = next(c["tools"] for c in mine if c["batch"] == batch
                    and c["precision"] == "int8")
        cells = [precision_cell(bf16, ["fastmlp"]), precision_cell(bf16, ["fastmlp-bf16"]),
                 precision_cell(bf16, ["torch-autocast-bf16", "torch-bf16"]),
                 precision_cell(int8, ["fastmlp-int8"]),
                 precision_cell(int8, ["torch-int8", "ort-int8"])]
        lines.append(f"| {batch} | " + " | ".join(cells) + " |")
    return lines


def main(argv: list) -> int:
    if len(argv) != 1:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    with open(argv[0]) as f:
        run = json.load(f)
    batches = run["meta"]["batches"]
    for dtype in ("float32", "float64"):
        for threads in sorted({c["threads"] for c in run["cases"]}, reverse=True):
            print("\n".join(float_table(run["cases"], dtype, threads, batches)), end="\n\n")
    for threads in sorted({c["threads"] for c in run.get("precision_cases", [])},
                          reverse=True):
        print(f"reduced precision, {PRECISION_NETWORK}, threads={threads}:")
        print("\n".join(precision_table(run["precision_cases"], threads)), end="\n\n")
    print("gemm GFLOP/s:", {k: round(v) for k, v in run["gemm"].items()})
    print("overhead ns:", {k: round(v) for k, v in run["overhead_ns"].items()})
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
