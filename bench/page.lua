-- wrk script for bench/h2.sh, scenario (h) "page load over the HTTPS proxy
-- port", HTTP/1.1 form: every connection cycles through the page's objects.
--
-- wrk connects to the URL given on its command line (https://127.0.0.1:PORT/,
-- the proxy's TLS port) and sends, one request at a time per connection
-- (keep-alive, no pipelining), absolute-form targets:
--
--   BENCH_PAGE_PREFIX  "http://127.0.0.1:ORIGINPORT/page/" (the object N is
--                      PREFIX .. N)
--   BENCH_PAGE_COUNT   number of objects on the page (default 100): N = 0 ..
--                      COUNT - 1, in turn; each connection starts at a
--                      different offset, so the connections together walk
--                      the whole page
--   BENCH_HOST         Host header value ("127.0.0.1:ORIGINPORT")
--
-- done() prints the same machine-readable line as absolute.lua:
--   BENCH requests=N duration_us=N rps=N p50_us=N p99_us=N
--         err_connect=N err_read=N err_write=N err_timeout=N err_status=N

local prefix = os.getenv("BENCH_PAGE_PREFIX") or "/page/"
local count = tonumber(os.getenv("BENCH_PAGE_COUNT") or "100")
local host = os.getenv("BENCH_HOST")

-- Every request of the page, built once (no string work per request).
local reqs = {}
local headers = { ["User-Agent"] = "hopcache-bench/wrk-page" }
if host and host ~= "" then
   headers["Host"] = host
end
for i = 0, count - 1 do
   reqs[i] = wrk.format("GET", prefix .. i, headers)
end

local next_i = 0
local started = 0

function setup(thread)
   thread:set("thread_no", started)
   started = started + 1
end

function init(args)
   next_i = ((thread_no or 0) * 17) % count
end

function request()
   local r = reqs[next_i]
   next_i = next_i + 1
   if next_i >= count then next_i = 0 end
   return r
end

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
