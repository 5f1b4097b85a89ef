#!/usr/bin/env python3
"""Turns criterion's saved estimates (target/criterion/*/*/new/) into a Markdown table of
throughputs, for docs/benchmarks.md:

    cargo bench --bench engine && python3 benches/criterion_summary.py | python3 benches/doc_section.py engine
"""

import json
import os
import time
from pathlib import Path

target = Path(os.environ.get("CARGO_TARGET_DIR", "target")) / "criterion"


def rate(value, unit):
    for prefix in ("", "k", "M", "G"):
        if value < 1000 or prefix == "G":
            return f"{value:.1f} {prefix + ' ' if prefix else ''}{unit}/s"
        value /= 1000
    return ""


def bytes_rate(value):
    for prefix in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or prefix == "GiB":
            return f"{value:.1f} {prefix}/s"
        value /= 1024
    return ""


rows = []
for bench in sorted(target.glob("*/**/new/benchmark.json")):
    meta = json.loads(bench.read_text())
    mean_ns = json.loads((bench.parent / "estimates.json").read_text())["mean"]["point_estimate"]
    throughput = meta.get("throughput") or {}
    if "Bytes" in throughput:
        shown = bytes_rate(throughput["Bytes"] / (mean_ns * 1e-9))
    elif "Elements" in throughput:
        shown = rate(throughput["Elements"] / (mean_ns * 1e-9), "lookups")
    else:
        shown = f"{mean_ns / 1e3:.1f} µs"
    rows.append(f"| {meta['full_id']} | {shown} |")

print(f"`cargo bench --bench engine` on {time.strftime('%Y-%m-%d')}, one core per benchmark, "
      "text-like data that zstd compresses about 3:1; index benchmarks on 200 k blobs.\n")
print("| benchmark | throughput |\n|---|---:|")
print("\n".join(rows))
