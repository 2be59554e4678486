"""Draw the chart's Grafana dashboard as small PNG panels, from a real Prometheus.

Reads every panel's queries from charts/kaci/dashboards/kaci.json (the same ones
Grafana runs), asks Prometheus for their range data (/api/v1/query_range) and draws
one small chart per panel, all in one picture (dashboard.png).

    python bench/plots/dashboard.py --prometheus http://127.0.0.1:9090 \
        --start <epoch> [--end <epoch>] --namespace <ns> --out charts/kaci/docs/dashboard

tests/cluster/test_obs_dashboard.py runs it on its own Prometheus when
KACI_DASHBOARD_PICTURES=<folder> is set.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = ROOT / "charts" / "kaci" / "dashboards" / "kaci.json"
UNITS = {"s": "seconds", "ops": "per second", "reqps": "requests/s", "short": ""}


def panels(path: Path) -> list[dict[str, Any]]:
    """The dashboard's panels that have queries, in reading order (rows' too)."""
    out: list[dict[str, Any]] = []

    def walk(items: list[dict[str, Any]]) -> None:
        for p in items:
            if p.get("targets"):
                out.append(p)
            walk(p.get("panels") or [])

    walk(json.loads(path.read_text())["panels"])
    return sorted(out, key=lambda p: (p["gridPos"]["y"], p["gridPos"]["x"]))


def concrete(expr: str, variables: dict[str, str]) -> str:
    for name in sorted(variables, key=len, reverse=True):
        expr = expr.replace("${" + name + "}", variables[name]).replace("$" + name, variables[name])
    return expr


def legend(fmt: str, labels: dict[str, str]) -> str:
    return re.sub(r"\{\{\s*(\w+)\s*\}\}", lambda m: labels.get(m.group(1), ""), fmt).strip()


def query_range(url: str, expr: str, start: float, end: float, step: float) -> list[Any]:
    params = urllib.parse.urlencode({"query": expr, "start": start, "end": end, "step": step})
    with urllib.request.urlopen(f"{url}/api/v1/query_range?{params}", timeout=60) as resp:
        body = json.load(resp)
    if body.get("status") != "success":
        raise RuntimeError(f"{expr}: {body}")
    return list(body["data"]["result"])


def draw(ax: Any, panel: dict[str, Any], series: list[tuple[str, list[Any]]], t0: float) -> None:
    unit = panel.get("fieldConfig", {}).get("defaults", {}).get("unit", "short")
    for name, values in series:
        xs = [(float(t) - t0) / 60 for t, _ in values]
        ys = [float(v) for _, v in values]
        ys = [math.nan if math.isinf(y) else y for y in ys]
        ax.plot(xs, ys, linewidth=1.2, label=name or "value")
    ax.set_title(panel["title"], fontsize=9, loc="left")
    ax.set_xlabel("minutes", fontsize=7)
    if UNITS.get(unit):
        ax.set_ylabel(UNITS[unit], fontsize=7)
    ax.tick_params(labelsize=7)
    ax.set_ylim(bottom=0)
    ax.grid(True, linewidth=0.3)
    if series:
        ax.legend(fontsize=6, loc="upper left", frameon=False)
    else:
        ax.text(0.5, 0.5, "no data", ha="center", va="center", transform=ax.transAxes)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--prometheus", required=True)
    ap.add_argument("--start", type=float, required=True, help="epoch seconds")
    ap.add_argument("--end", type=float, default=None, help="epoch seconds (default: now)")
    ap.add_argument("--namespace", default=".+", help="the dashboard's $namespace")
    ap.add_argument("--webservice", default=".+", help="the dashboard's $webservice")
    ap.add_argument("--window", default="1h", help="the dashboard's $window")
    ap.add_argument("--rate-interval", default="1m", help="Grafana's $__rate_interval")
    ap.add_argument("--dashboard", type=Path, default=DASHBOARD)
    ap.add_argument("--out", type=Path, required=True, help="folder for the PNGs")
    args = ap.parse_args()
    end = args.end or time.time()
    step = max(5.0, (end - args.start) / 200)
    variables = {
        "namespace": args.namespace,
        "webservice": args.webservice,
        "window": args.window,
        "__rate_interval": args.rate_interval,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    found = panels(args.dashboard)
    data = []
    for p in found:
        series = []
        for t in p["targets"]:
            expr = concrete(t["expr"], variables)
            for s in query_range(args.prometheus, expr, args.start, end, step):
                series.append((legend(t.get("legendFormat", ""), s["metric"]), s["values"]))
        data.append((p, series))

    cols = 3
    rows = math.ceil(len(data) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(cols * 4.0, rows * 2.6), squeeze=False)
    for ax, (p, series) in zip(axes.flat, data, strict=False):
        draw(ax, p, series, args.start)
    for ax in list(axes.flat)[len(data) :]:
        ax.axis("off")
    fig.suptitle("kaci dashboard (charts/kaci/dashboards/kaci.json), from a real Prometheus")
    fig.tight_layout()
    fig.savefig(args.out / "dashboard.png", dpi=80)
    plt.close(fig)
    print(f"{len(data)} panels drawn in {args.out / 'dashboard.png'}")


if __name__ == "__main__":
    main()
