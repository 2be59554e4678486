-- wrk: POST the file named by the BODY_FILE environment variable to every request.
local f = assert(io.open(os.getenv("BODY_FILE"), "rb"))
wrk.method = "POST"
wrk.body = f:read("*a")
f:close()
wrk.headers["Content-Type"] = "application/json"

-- Count non-2xx answers (wrk reports only socket errors and "Non-2xx" totals).
done = function(summary, latency, requests)
  local p = function(q) return latency:percentile(q) / 1000.0 end
  io.write(string.format("KACI_RESULT rps=%.2f p50_ms=%.3f p99_ms=%.3f requests=%d non2xx=%d errors=%d\n",
    summary.requests / (summary.duration / 1e6), p(50), p(99), summary.requests,
    summary.errors.status, summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
end
