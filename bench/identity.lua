-- wrk script for bench scenario (i), corporate identity (bench/identity.sh).
--
-- Sends the (a) request (absolute-form GET of the 1 KiB no-store object,
-- like absolute.lua) with, depending on BENCH_ID_MODE:
--
--   none     no Proxy-Authorization (policy off), or the fixed value of
--            BENCH_PROXY_AUTH on every request (Basic, l1)
--   conn     "Proxy-Authorization: Negotiate TOKEN" on the first request of
--            each connection only (n1, [auth] connection_auth = yes): the
--            first BENCH_CONNS_PER_THREAD requests a thread makes are the
--            first of its connections (wrk connects them all and writes
--            their first requests before it reads any response); later
--            requests carry no Proxy-Authorization. A connection wrk has
--            to reopen gets no token (its requests then count as 407s).
--   request  a new token on every request (n2, connection_auth = no)
--
-- Tokens (one base64 token a line) come from BENCH_TOKENS; each thread reads
-- its own slice of BENCH_TOKENS_PER_THREAD lines (thread i: lines
-- i*N+1 .. (i+1)*N) and never uses a token twice (the proxy keeps a replay
-- cache). A thread that runs out stops (wrk.thread:stop()); done() reports
-- it as exhausted=THREADS, and the rate is then too low (wrk divides by the
-- whole duration): run.sh sizes the token file so that it does not happen.
--
-- Every mode has a request() function, so wrk calls Lua once per request in
-- every timed run of (i), policy off included: the rows compare the proxy,
-- not two load generator set-ups. done() prints the line run.sh parses
-- (absolute.lua's BENCH line plus tokens_used=N exhausted=N).

local target = os.getenv("BENCH_TARGET") or "/1k"
local host = os.getenv("BENCH_HOST")
local mode = os.getenv("BENCH_ID_MODE") or "none"
local proxy_auth = os.getenv("BENCH_PROXY_AUTH")
local token_file = os.getenv("BENCH_TOKENS")
local per_thread = tonumber(os.getenv("BENCH_TOKENS_PER_THREAD") or "0")
local conns_per_thread = tonumber(os.getenv("BENCH_CONNS_PER_THREAD") or "0")

local threads = {}
local next_id = 0

function setup(thread)
   thread:set("id", next_id)
   next_id = next_id + 1
   table.insert(threads, thread)
end

local head, tail, plain
local tokens_fh
used = 0
exhausted = 0
local left = 0
-- wrk 4.1 calls request() once in thread 0 right after init(), to check
-- the request parses (script_verify_request), before any connection
-- exists: that call gets the request without a token.
local verify_call = false

function init(args)
   head = "GET " .. target .. " HTTP/1.1\r\n"
   if host and host ~= "" then
      head = head .. "Host: " .. host .. "\r\n"
   end
   head = head .. "User-Agent: hopcache-bench/wrk\r\n"
   local fixed = ""
   if proxy_auth and proxy_auth ~= "" then
      fixed = "Proxy-Authorization: " .. proxy_auth .. "\r\n"
   end
   plain = head .. fixed .. "\r\n"
   tail = "\r\n\r\n"
   verify_call = (id == 0)
   if mode == "conn" or mode == "request" then
      tokens_fh = assert(io.open(token_file, "r"))
      for _ = 1, id * per_thread do
         tokens_fh:read("*l")
      end
      left = per_thread
      if mode == "conn" and conns_per_thread < left then
         left = conns_per_thread
      end
   end
end

local function next_token()
   if left <= 0 then
      return nil
   end
   local t = tokens_fh:read("*l")
   if t == nil or t == "" then
      left = 0
      return nil
   end
   left = left - 1
   used = used + 1
   return t
end

function request()
   if mode == "none" then
      return plain
   end
   if verify_call then
      verify_call = false
      return plain
   end
   local t = next_token()
   if t ~= nil then
      return head .. "Proxy-Authorization: Negotiate " .. t .. tail
   end
   if mode == "request" then
      -- out of tokens: never reuse one; stop this thread
      if exhausted == 0 then
         exhausted = 1
         wrk.thread:stop()
      end
   end
   return plain
end

function done(summary, latency, requests)
   local e = summary.errors
   local secs = summary.duration / 1e6
   local rps = 0
   if secs > 0 then rps = summary.requests / secs end
   local tu, ex = 0, 0
   for _, t in ipairs(threads) do
      tu = tu + (t:get("used") or 0)
      ex = ex + (t:get("exhausted") or 0)
   end
   io.write(string.format(
      "BENCH requests=%d duration_us=%d rps=%.2f p50_us=%d p99_us=%d " ..
      "err_connect=%d err_read=%d err_write=%d err_timeout=%d err_status=%d " ..
      "tokens_used=%d exhausted=%d\n",
      summary.requests, summary.duration, rps,
      latency:percentile(50), latency:percentile(99),
      e.connect, e.read, e.write, e.timeout, e.status, tu, ex))
end
