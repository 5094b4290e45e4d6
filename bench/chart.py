"""One PNG of the latest benchmark results (bench/results/*.json): ``python -m bench.chart``.

Needs matplotlib (``pip install -e '.[bench]'``; ``make bench`` installs it).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

RESULTS = Path(__file__).parent / "results"


def _load(name: str) -> Any:
    path = RESULTS / f"{name}.json"
    return json.loads(path.read_text()) if path.exists() else None


def main() -> None:
    backfill, stream, reconcile = _load("backfill"), _load("stream"), _load("reconcile")
    fig, axes = plt.subplots(2, 2, figsize=(14, 9))
    (ax_backfill, ax_latency), (ax_reconcile, ax_scale) = axes
    if backfill:
        names = [r["name"].split(" (")[0] for r in backfill]
        colors = ["tab:green" if n.startswith("ddbridge") else "tab:gray" for n in names]
        ax_backfill.barh(names, [r["rate"] for r in backfill], color=colors)
        ax_backfill.invert_yaxis()
        ax_backfill.set_xlabel("rows/s")
        ax_backfill.set_title("Backfill throughput (same run, same endpoint)")
    if stream:
        segments = [
            ("commit_to_kafka", "commit→Kafka"),
            ("kafka_to_dynamodb", "Kafka→DynamoDB"),
            ("putitem_under_load", "one PutItem"),
        ]
        runs = stream["latency"]
        width = 0.8 / len(runs)
        for i, run in enumerate(runs):
            xs = [j + (i - (len(runs) - 1) / 2) * width for j in range(len(segments))]
            ax_latency.bar(xs, [run[key]["p99"] for key, _ in segments], width, label=f"p99 at {run['rate']:.0f}/s")
        ax_latency.set_xticks(range(len(segments)), [label for _, label in segments])
        ax_latency.set_yscale("log")
        ax_latency.set_ylabel("ms")
        ax_latency.legend()
        ax_latency.set_title("Streaming latency p99 (PutItem probed under load)")
        drains = stream["drains"]
        ax_scale.bar(
            [str(d["processes"]) for d in drains], [d["events"] / d["seconds"] for d in drains], color="tab:blue"
        )
        ax_scale.set_xlabel("ddbridge stream processes")
        ax_scale.set_ylabel("events/s")
        ax_scale.set_title("Draining a backlog: one vs two processes")
    if reconcile:
        sizes = [f"{r['size']:,}" for r in reconcile]
        positions = range(len(sizes))
        ax_reconcile.bar(
            [x - 0.2 for x in positions],
            [r["raw"] / r["ours"] for r in reconcile],
            0.4,
            color="tab:purple",
            label="lean",
        )
        ax_reconcile.bar(
            [x + 0.2 for x in positions],
            [r["raw_boto3"] / r["ours"] for r in reconcile],
            0.4,
            color="tab:gray",
            label="boto3",
        )
        ax_reconcile.set_xticks(list(positions), sizes)
        ax_reconcile.axhline(0.8, color="tab:red", linestyle="--", label="target 0.8")
        ax_reconcile.set_ylabel("full comparison / raw reading (lean or boto3 Scan)")
        ax_reconcile.set_ylim(0, 1.25 * max(1.0, *(r["raw_boto3"] / r["ours"] for r in reconcile)))
        rss = ", ".join(f"{r['rss']:.0f} MB" for r in reconcile)
        ax_reconcile.set_title(f"Reconcile speed vs raw reading (peak RSS {rss})")
        ax_reconcile.legend(loc="upper left", ncols=3)
    fig.tight_layout()
    fig.savefig(RESULTS / "benchmarks.png", dpi=90)
    print(f"wrote {RESULTS / 'benchmarks.png'}")


if __name__ == "__main__":
    main()
