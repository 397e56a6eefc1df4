-- soak.lua - wrk script of the soak test (tests/soak/soak.py runs it).
-- Sends a paced mix of absolute-form requests through the proxy to the soak
-- origin: cache hits (/hot), misses that evict and revalidate (/cold),
-- Vary variants (/vary with one of three Accept-Language values), no-store
-- (/nostore) and self-checking POSTs (/post). Every response is checked:
--   ok       200 whose body's adler32 equals the origin's X-Soak-Sum
--   badsum   200 with a missing or different X-Soak-Sum
--   e5xx_ps  5xx carrying Proxy-Status with error=...
--   e5xx_nops 5xx without one
--   other    any other status
-- done() prints one line "SOAKWRK key=value ..." for the driver.
-- Environment: SOAK_ORIGIN (host:port), SOAK_SEED, SOAK_DELAY_MS (pacing per
-- connection; 0 = none), SOAK_COLD_N, SOAK_VARY_N, SOAK_HOT_N.

local origin = os.getenv("SOAK_ORIGIN") or "127.0.0.1:80"
local seed = tonumber(os.getenv("SOAK_SEED") or "1")
local delay_ms = tonumber(os.getenv("SOAK_DELAY_MS") or "0")
local hot_n = tonumber(os.getenv("SOAK_HOT_N") or "8")
local cold_n = tonumber(os.getenv("SOAK_COLD_N") or "4000")
local vary_n = tonumber(os.getenv("SOAK_VARY_N") or "40")
local langs = { "en", "de", "fr" }

local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

local function adler32(s)
  local a, b = 1, 0
  local n = #s
  local i = 1
  local byte = string.byte
  while i <= n do
    local e = i + 3799
    if e > n then e = n end
    for j = i, e do
      a = a + byte(s, j)
      b = b + a
    end
    a = a % 65521
    b = b % 65521
    i = e + 1
  end
  return b * 65536 + a
end

local posts = {}
local c = { ok = 0, badsum = 0, e5xx_ps = 0, e5xx_nops = 0, other = 0,
            hot = 0, cold = 0, vary = 0, nostore = 0, post = 0 }

function init(args)
  -- each thread its own stream, derived from the printed seed
  math.randomseed(seed + (tonumber(wrk.thread:get("id") or 0) or 0))
  for k = 1, 16 do
    local t = {}
    local size = 200 + math.random(0, 3800)
    for i = 1, size do t[i] = string.char(math.random(0, 255)) end
    local payload = table.concat(t)
    local sum = tostring(adler32(payload))
    posts[k] = payload .. string.rep("0", 10 - #sum) .. sum
  end
end

function delay()
  if delay_ms <= 0 then return 0 end
  return math.random(delay_ms / 2, delay_ms * 3 / 2)
end

function request()
  local r = math.random(100)
  local hdrs = { ["Host"] = origin }
  if r <= 45 then
    return wrk.format("GET", "http://" .. origin .. "/hot/" .. math.random(0, hot_n - 1), hdrs)
  elseif r <= 70 then
    return wrk.format("GET", "http://" .. origin .. "/cold/" .. math.random(0, cold_n - 1), hdrs)
  elseif r <= 85 then
    hdrs["Accept-Language"] = langs[math.random(1, 3)]
    return wrk.format("GET", "http://" .. origin .. "/vary/" .. math.random(0, vary_n - 1), hdrs)
  elseif r <= 90 then
    return wrk.format("GET", "http://" .. origin .. "/nostore/" .. math.random(0, 15), hdrs)
  else
    hdrs["Content-Type"] = "application/octet-stream"
    return wrk.format("POST", "http://" .. origin .. "/post/" .. math.random(0, 99), hdrs,
                      posts[math.random(1, #posts)])
  end
end

local function field(headers, name, lname)
  return headers[name] or headers[lname]
end

-- the first few wrong responses, described in $SOAK_WRK_BAD for the driver
local bad_path = os.getenv("SOAK_WRK_BAD")
local bad_written = 0
local function note_bad(what, status, headers, body, got)
  if bad_path == nil or bad_written >= 20 then return end
  bad_written = bad_written + 1
  local f = io.open(bad_path, "a")
  if f == nil then return end
  local first = string.gsub(string.sub(body, 1, 48), "[^%w%p ]", function(ch)
    return string.format("\\x%02x", string.byte(ch)) end)
  f:write(string.format("%s %s status %d, %d body bytes, adler32 %s, X-Soak-Sum %s, X-Soak-Kind %s, " ..
                        "Cache-Status %s, Age %s, Content-Length %s; body starts %q\n",
                        os.date("!%H:%M:%S"), what, status, #body, tostring(got),
                        tostring(field(headers, "X-Soak-Sum", "x-soak-sum")),
                        tostring(field(headers, "X-Soak-Kind", "x-soak-kind")),
                        tostring(field(headers, "Cache-Status", "cache-status")),
                        tostring(field(headers, "Age", "age")),
                        tostring(field(headers, "Content-Length", "content-length")), first))
  f:close()
end

function response(status, headers, body)
  if status == 200 then
    local want = field(headers, "X-Soak-Sum", "x-soak-sum")
    local got = adler32(body)
    if want ~= nil and tonumber(want) == got then
      c.ok = c.ok + 1
      local kind = field(headers, "X-Soak-Kind", "x-soak-kind")
      if kind ~= nil and c[kind] ~= nil then c[kind] = c[kind] + 1 end
    else
      c.badsum = c.badsum + 1
      note_bad("badsum", status, headers, body, got)
    end
  elseif status >= 500 and status <= 599 then
    local ps = field(headers, "Proxy-Status", "proxy-status")
    if ps ~= nil and string.find(ps, "error=", 1, true) then
      c.e5xx_ps = c.e5xx_ps + 1
    else
      c.e5xx_nops = c.e5xx_nops + 1
      note_bad("5xx without Proxy-Status", status, headers, body, nil)
    end
  else
    c.other = c.other + 1
    note_bad("other status", status, headers, body, nil)
  end
end

function done(summary, latency, requests)
  local tot = { ok = 0, badsum = 0, e5xx_ps = 0, e5xx_nops = 0, other = 0,
                hot = 0, cold = 0, vary = 0, nostore = 0, post = 0 }
  for _, t in ipairs(threads) do
    for k, _ in pairs(tot) do
      tot[k] = tot[k] + (tonumber(t:get("c_" .. k)) or 0)
    end
  end
  local e = summary.errors
  io.write(string.format("SOAKWRK ok=%d badsum=%d e5xx_ps=%d e5xx_nops=%d other=%d hot=%d cold=%d vary=%d " ..
                         "nostore=%d post=%d requests=%d connect=%d read=%d write=%d timeout=%d status=%d " ..
                         "p99_us=%d max_us=%d\n",
                         tot.ok, tot.badsum, tot.e5xx_ps, tot.e5xx_nops, tot.other, tot.hot, tot.cold, tot.vary,
                         tot.nostore, tot.post, summary.requests, e.connect, e.read, e.write, e.timeout, e.status,
                         latency:percentile(99), latency.max))
end

-- publish the per-thread counters where done() (main thread) can read them
local publish = response
response = function(status, headers, body)
  publish(status, headers, body)
  for k, v in pairs(c) do wrk.thread:set("c_" .. k, v) end
end
