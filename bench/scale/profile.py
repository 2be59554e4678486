"""Where the operator's CPU went, from py-spy's folded stacks (`BENCH_PROFILE=1
make bench-scale-kwok`, or `py-spy record --format raw`):

    .venv/bin/python bench/scale/profile.py bench/results/profile-webservices-1000-*.txt

Each sample of a running thread is put in the first bucket (the API client, kaci's
passes, kaci's index functions, kopf's event processing, ...) that a frame of its
stack matches, so the buckets add up to the operator's busy samples; samples of a
thread waiting (on the network, a lock, its queue) are counted apart.
"""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path

# A sample whose innermost frame is one of these is a thread waiting (py-spy samples
# every thread): on the network, a lock, its queue, the event loop's selector.
WAITING = (
    "EpollSelector.select",
    "_PollLikeSelector.select",
    "SSLSocket.read",
    "SSLObject.read",
    "do_poll",
    "wait (threading.py",
    "_worker (concurrent/futures/thread.py:81)",
)

# (bucket, substrings of a frame "function (file:line)"); the first bucket with a
# frame anywhere in the stack wins, so the more specific come first.
BUCKETS = (
    ("API client (the passes' requests)", ("kubernetes/", "urllib3/", "ssl.py")),
    ("kaci pass: render and status", ("kaci/render/", "kaci/status/")),
    ("kaci pass: the rest", ("kaci-pass", "kaci/reconcile/", "kaci/edges/")),
    ("kaci indexes and wake-ups", ("kaci/handlers/wiring.py", "kaci/handlers/store.py")),
    ("kaci queue and runner", ("kaci/handlers/",)),
    ("kopf: diff-base of every event", ("_detect_causes",)),
    ("kopf: sync handlers sent to a thread", ("run_in_executor", "_write_to_self")),
    ("kopf: indexing", ("kopf/_core/engines/indexing",)),
    ("kopf: watch stream (aiohttp, JSON)", ("kopf/_cogs/clients/", "aiohttp/", "json/")),
    ("kopf: handler invocation", ("kopf/_core/actions/",)),
    ("kopf: the rest", ("kopf/",)),
    ("asyncio loop", ("asyncio/",)),
    ("logging", ("logging/",)),
)


def bucket_of(stack: str) -> str:
    frames = stack.split(";")
    if any(w in frames[-1] for w in WAITING):
        return "waiting (not CPU)"
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
    busy = sum(v for k, v in counts.items() if not k.startswith("waiting"))
    print(f"{'where':45} {'samples':>8} {'of busy':>8}")
    for name, n in counts.most_common():
        share = "" if name.startswith("waiting") else f"{100 * n / max(busy, 1):7.1f}%"
        print(f"{name:45} {n:8d} {share:>8}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
