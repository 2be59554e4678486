"""Draw the benchmarks' results as small PNGs for bench/README.md.

Reads the result files the benchmarks write themselves: bench/runtime/bench.py's
bench/results/runtime-*.json, bench/deploy/run.py's deploy-*.json and
bench/scale/run.py's scale-*.json (the newest of each there). Without one, it takes
the files kept in bench/plots/data/ and bench/scale/ for the runs bench/README.md
quotes.

    python bench/plots/bench.py [--runtime F] [--deploy F ...] [--scale F] [--out bench/plots]
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "bench" / "results"
KEPT = Path(__file__).resolve().parent / "data"
CELLS = ("b1c1", "b1c16", "b64c1", "b64c16")
CASES = ("cold", "new image", "warm")
OPTIONS = {"1": "1 modelFiles", "2": "2 models", "3": "3 image"}


def newest(pattern: str, *folders: Path) -> list[Path]:
    """The newest matching file of the first folder that has one."""
    for folder in folders:
        found = sorted(folder.glob(pattern))
        if found:
            return [found[-1]]
    return []


def load(path: Path) -> Any:
    return json.loads(path.read_text())


def runtime(path: Path, out: Path) -> Path:
    """req/s and p99 per server, for each batch/concurrency cell (medians of the runs)."""
    data = load(path)
    results = data["results"]
    servers = [r["server"] for r in results]
    fig, (rps_ax, p99_ax) = plt.subplots(1, 2, figsize=(9, 3))
    width = 0.8 / len(servers)
    for i, r in enumerate(results):
        xs = [c + i * width for c in range(len(CELLS))]
        rps = [
            statistics.median(x["rps"] for x in r["runs"].get(cell, [{"rps": 0}])) for cell in CELLS
        ]
        p99 = [
            statistics.median(x["p99_ms"] for x in r["runs"].get(cell, [{"p99_ms": 0}]))
            for cell in CELLS
        ]
        rps_ax.bar(xs, rps, width, label=r["server"])
        p99_ax.bar(xs, p99, width, label=r["server"])
    for ax, title in (
        (rps_ax, "requests/s (higher is better)"),
        (p99_ax, "p99 ms (lower is better)"),
    ):
        ax.set_xticks([c + 0.4 - width / 2 for c in range(len(CELLS))])
        ax.set_xticklabels(
            ["batch 1\nconc 1", "batch 1\nconc 16", "batch 64\nconc 1", "batch 64\nconc 16"],
            fontsize=7,
        )
        ax.set_title(title, fontsize=9, loc="left")
        ax.tick_params(labelsize=7)
        ax.grid(True, axis="y", linewidth=0.3)
    rps_ax.set_yscale("log")  # batch 64 does 1/10 of batch 1's requests
    p99_ax.set_yscale("log")
    handles, labels = rps_ax.get_legend_handles_labels()
    fig.legend(handles, labels, fontsize=7, ncol=len(servers), frameon=False, loc="lower center")
    fig.suptitle(f"Scoring runtime, {data['meta']['started']} ({path.name})", fontsize=9)
    fig.tight_layout(rect=(0, 0.07, 1, 1))
    target = out / "runtime.png"
    fig.savefig(target, dpi=80)
    plt.close(fig)
    return target


def deploy(paths: list[Path], out: Path) -> Path:
    """Seconds from kubectl apply to Ready per Azure option and case, one panel per file."""
    fig, axes = plt.subplots(1, len(paths), figsize=(4.2 * len(paths), 2.8), squeeze=False)
    for ax, path in zip(axes.flat, paths, strict=True):
        data = load(path)
        medians = data["medians"]
        width = 0.8 / len(CASES)
        for i, case in enumerate(CASES):
            options = sorted(medians)
            xs = [n + i * width for n in range(len(options))]
            ys = [medians[o][case]["total"] for o in options]
            bars = ax.bar(xs, ys, width, label=case)
            ax.bar_label(bars, fmt="%.0f", fontsize=6)
        ax.set_xticks([n + width for n in range(len(medians))])
        ax.set_xticklabels([OPTIONS.get(o, o) for o in sorted(medians)], fontsize=7)
        ax.set_ylabel("seconds to Ready", fontsize=7)
        ax.set_title(f"cpuCores {data['cpu_cores']} ({path.name})", fontsize=8, loc="left")
        ax.tick_params(labelsize=7)
        ax.grid(True, axis="y", linewidth=0.3)
        ax.set_ylim(0, max(medians[o]["cold"]["total"] for o in medians) * 1.3)
        ax.legend(fontsize=6, frameon=False, ncol=3, loc="upper center")
    fig.suptitle("Deploy: kubectl apply to Ready (Azure ACI: 6-8 minutes)", fontsize=9)
    fig.tight_layout()
    target = out / "deploy.png"
    fig.savefig(target, dpi=80)
    plt.close(fig)
    return target


def scale(path: Path, out: Path) -> Path:
    """Webservices: time to applied and to all Ready, and operator CPU and RSS, by N."""
    data = load(path)
    ws = data["webservices"]
    n = [w["n"] for w in ws]
    fig, (t_ax, cpu_ax) = plt.subplots(1, 2, figsize=(8, 2.8))
    t_ax.plot(n, [w["applied_s"] for w in ws], marker="o", label="all Deployments applied")
    t_ax.plot(n, [w["ready_s"] for w in ws], marker="o", label="all Ready")
    t_ax.set_ylabel("seconds", fontsize=7)
    cpu_ax.plot(n, [w["operator_cpu_s"] for w in ws], marker="o", color="C2", label="CPU s")
    rss = cpu_ax.twinx()
    rss.plot(
        n, [w["operator_peak_rss_mb"] for w in ws], marker="s", color="C3", label="peak RSS MB"
    )
    rss.set_ylim(0, max(w["operator_peak_rss_mb"] for w in ws) * 1.2)
    rss.tick_params(labelsize=7)
    rss.set_ylabel("MB", fontsize=7)
    cpu_ax.set_ylabel("CPU seconds", fontsize=7)
    t_ax.set_title("time to converge", fontsize=8, loc="left")
    cpu_ax.set_title("operator CPU and memory", fontsize=8, loc="left")
    for ax in (t_ax, cpu_ax):
        ax.set_xlabel("Webservices", fontsize=7)
        ax.tick_params(labelsize=7)
        ax.grid(True, linewidth=0.3)
        ax.set_ylim(bottom=0)
    t_ax.legend(fontsize=6, frameon=False)
    lines = cpu_ax.get_legend_handles_labels()
    more = rss.get_legend_handles_labels()
    cpu_ax.legend(
        lines[0] + more[0], lines[1] + more[1], fontsize=6, frameon=False, loc="upper left"
    )
    fig.suptitle(f"Scale, {data['when']} ({path.name})", fontsize=9)
    fig.tight_layout()
    target = out / "scale.png"
    fig.savefig(target, dpi=80)
    plt.close(fig)
    return target


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runtime", type=Path)
    ap.add_argument("--deploy", type=Path, nargs="*")
    ap.add_argument("--scale", type=Path)
    ap.add_argument("--out", type=Path, default=Path(__file__).resolve().parent)
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    runtime_files = [args.runtime] if args.runtime else newest("runtime-*.json", RESULTS, KEPT)
    deploy_files = args.deploy or (
        sorted(RESULTS.glob("deploy-*.json"))[-1:] or sorted(KEPT.glob("deploy-*.json"))
    )
    scale_files = (
        [args.scale]
        if args.scale
        else newest("scale-*.json", RESULTS) or newest("result-*.json", ROOT / "bench" / "scale")
    )
    for f in runtime_files:
        print(runtime(f, args.out))
    if deploy_files:
        print(deploy(deploy_files, args.out))
    for f in scale_files:
        print(scale(f, args.out))


if __name__ == "__main__":
    main()
