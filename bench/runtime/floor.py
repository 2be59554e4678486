"""The in-process floor: what one request costs with no HTTP at all.

json.loads (the standard module, as an unchanged score.py uses it) + predict +
json.dumps, in a loop, on the same pinned core. Prints one JSON line.
"""

import json
import statistics
import sys
import time

import joblib
import numpy as np

model = joblib.load(sys.argv[1])
body = open(sys.argv[2]).read()  # noqa: SIM115, PTH123
seconds = float(sys.argv[3])


def once() -> str:
    return json.dumps(model.predict(np.array(json.loads(body)["data"])).tolist())


for _ in range(20):
    once()
times = []
cpu_start = time.process_time()
end = time.perf_counter() + seconds
while time.perf_counter() < end:
    t0 = time.perf_counter()
    once()
    times.append(time.perf_counter() - t0)
cpu = time.process_time() - cpu_start
times.sort()
print(
    json.dumps(
        {
            "rps": len(times) / sum(times),
            "p50_ms": statistics.median(times) * 1000,
            "p99_ms": times[int(len(times) * 0.99)] * 1000,
            "requests": len(times),
            "cpu_ms": cpu * 1000 / len(times),
        }
    )
)
