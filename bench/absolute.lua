-- wrk script for bench/run.sh.
--
-- wrk connects to the host:port given on its command line (the proxy, or
-- the origin for the "direct" baseline) and sends the request built here:
--
--   BENCH_TARGET  request-target: "http://127.0.0.1:PORT/1k" (absolute-form,
--                 what a client sends to a forward proxy) or "/1k"
--                 (origin-form, for the origin served directly)
--   BENCH_HOST    Host header value ("127.0.0.1:PORT" of the origin)
--   BENCH_CLOSE   "1" adds "Connection: close" to every request (scenario b);
--                 wrk then opens a fresh connection for each request
--   BENCH_PROXY_AUTH  if set, sent as the Proxy-Authorization header value
--                 (e.g. "Basic YmVuY2g6..."; scenario f, policy on)
--
-- done() prints one machine-readable line that run.sh parses:
--   BENCH requests=N duration_us=N rps=N p50_us=N p99_us=N
--         err_connect=N err_read=N err_write=N err_timeout=N err_status=N
-- (err_status counts responses with status >= 400, i.e. wrk's
-- "Non-2xx or 3xx responses").

local target = os.getenv("BENCH_TARGET") or "/1k"
local host = os.getenv("BENCH_HOST")
local close = os.getenv("BENCH_CLOSE") == "1"
local proxy_auth = os.getenv("BENCH_PROXY_AUTH")

wrk.method = "GET"
wrk.path = target
if host and host ~= "" then
   wrk.headers["Host"] = host
end
wrk.headers["User-Agent"] = "hopcache-bench/wrk"
if close then
   wrk.headers["Connection"] = "close"
end
if proxy_auth and proxy_auth ~= "" then
   wrk.headers["Proxy-Authorization"] = proxy_auth
end

-- No request() function on purpose: wrk then builds the request once
-- (wrk.format() in wrk.init) and sends the static buffer, so the load
-- generator spends no Lua time per request.

function done(summary, latency, requests)
   local e = summary.errors
   local secs = summary.duration / 1e6
   local rps = 0
   if secs > 0 then rps = summary.requests / secs end
   io.write(string.format(
      "BENCH requests=%d duration_us=%d rps=%.2f p50_us=%d p99_us=%d " ..
      "err_connect=%d err_read=%d err_write=%d err_timeout=%d err_status=%d\n",
      summary.requests, summary.duration, rps,
      latency:percentile(50), latency:percentile(99),
      e.connect, e.read, e.write, e.timeout, e.status))
end
