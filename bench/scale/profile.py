"""Where the operator's CPU went, from py-spy's folded stacks (`BENCH_PROFILE=1
make bench-scale-kwok`, or `py-spy record --format raw`):

    .venv/bin/python bench/scale/profile.py bench/results/profile-webservices-1000-*.txt

Each sample is put in the first bucket (top-down: kaci's passes, the API client,
kopf's event processing, ...) that a frame of its stack matches, so the buckets add
up to every sample taken while the operator ran Python; idle samples (a thread
waiting in select/epoll/a lock) are counted apart.
"""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path

# (bucket, a substring of a frame "function (file:line)"); the first match wins.
BUCKETS = (
    (
        "idle (waiting)",
        ("select (selectors.py", "_worker (concurrent/futures", "wait (threading.py"),
    ),
    ("kaci pass: render and status", ("kaci/render/", "kaci/status/")),
    ("API client: requests", ("kubernetes/", "urllib3/")),
    ("kaci pass: the rest", ("kaci/reconcile/", "kaci/edges/")),
    ("kaci indexes and wake-ups", ("kaci/handlers/wiring.py", "kaci/handlers/store.py")),
    ("kaci queue and runner", ("kaci/handlers/",)),
    (
        "kopf: diff-base and change detection",
        ("_detect_causes", "diffbase", "kopf/_cogs/structs/diffs"),
    ),
    ("kopf: indexing", ("kopf/_core/engines/indexing",)),
    ("kopf: watch stream (aiohttp, JSON)", ("kopf/_cogs/clients/watching", "aiohttp/", "json/")),
    ("kopf: handler invocation", ("kopf/_core/actions/",)),
    ("kopf: the rest", ("kopf/",)),
    ("asyncio loop", ("asyncio/",)),
    ("logging", ("logging/",)),
)


def bucket_of(stack: str) -> str:
    frames = stack.split(";")
    for name, needles in BUCKETS:
        if any(n in f for f in frames for n in needles):
            return name
    return "other"


def main(paths: list[str]) -> int:
    counts: Counter[str] = Counter()
    for path in paths:
        for line in Path(path).read_text().splitlines():
            stack, _, n = line.rpartition(" ")
            if stack and n.isdigit():
                counts[bucket_of(stack)] += int(n)
    busy = sum(v for k, v in counts.items() if not k.startswith("idle"))
    print(f"{'where':45} {'samples':>8} {'of busy':>8}")
    for name, n in counts.most_common():
        share = "" if name.startswith("idle") else f"{100 * n / max(busy, 1):7.1f}%"
        print(f"{name:45} {n:8d} {share:>8}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
