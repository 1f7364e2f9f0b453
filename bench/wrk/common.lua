-- Shared by the bench/wrk scripts (loaded with dofile from each of them).
--
-- * setup() gives every wrk thread an `id` (0, 1, ...) so each thread can
--   start at its own offset in the pairs file;
-- * bench.load_pairs() reads "api_key api_secret" lines;
-- * bench.cycle() (warm cases) and bench.send_once() (each item sent once,
--   for cold keys and single-use JWTs);
-- * bench.base64() for HTTP Basic;
-- * done() prints ONE machine-readable line that bench/run parses:
--     BENCH rps=... p50_ms=... p99_ms=... max_ms=... requests=... seconds=...
--           non2xx=... connect_err=... read_err=... write_err=... timeouts=...
--   followed by whatever the script's bench.extra(threads) adds.
--   non2xx is wrk's count of responses with a status >= 400 (tokenmint never
--   answers 3xx), so for the exchange cases it counts every non-200 answer.

bench = bench or {}

local threads = {}
local next_id = 0

function setup(thread)
   thread:set("id", next_id)
   next_id = next_id + 1
   table.insert(threads, thread)
end

function bench.load_pairs(path)
   local list = {}
   local f = io.open(path, "r")
   if not f then
      error("cannot open pairs file " .. tostring(path))
   end
   for line in f:lines() do
      local a, b = line:match("^(%S+)%s+(%S+)")
      if a and a:sub(1, 1) ~= "#" then
         list[#list + 1] = { a, b }
      end
   end
   f:close()
   if #list == 0 then
      error("no pairs in " .. path)
   end
   return list
end

-- This thread's share of n items when nthreads threads split them:
-- first and last index (1-based, inclusive).
function bench.slice(n, nthreads)
   local lo = math.floor(n * id / nthreads) + 1
   local hi = math.floor(n * (id + 1) / nthreads)
   return lo, hi
end

-- Defines wrk's init() and request(): cycle through every pair of the file
-- (each thread from its own offset, so connections spread over many keys),
-- building each request once with build(api_key, secret).
function bench.cycle(build)
   local creds, n, i
   local cache = {}
   function init(args)
      creds = bench.load_pairs(args[1])
      n = #creds
      i = bench.slice(n, tonumber(args[2]) or 1) - 1
   end
   function request()
      i = i % n + 1
      local r = cache[i]
      if not r then
         r = build(creds[i][1], creds[i][2])
         cache[i] = r
      end
      return r
   end
end

-- Defines wrk's request() for one pass over a list: init() hands the list
-- and this thread's range to the returned start(list, lo, hi); each item is
-- built with build(item) when it is sent, and sent once. A thread that runs
-- out stops (wrk.thread:stop()) and sets exhausted = 1, which
-- bench.once_extra() reports, with how many were sent: the rate is then
-- understated and the harness marks the figure invalid.
function bench.send_once(build)
   local items, i, hi = {}, 1, 0
   exhausted = 0
   sent = 0
   function request()
      if i > hi then
         if exhausted == 0 then
            exhausted = 1
            wrk.thread:stop()
         end
         -- Something must be returned; a cheap GET that is not an exchange.
         return wrk.format("GET", "/healthz")
      end
      local r = build(items[i])
      items[i] = nil
      i = i + 1
      sent = sent + 1
      return r
   end
   return function(list, lo, last)
      items, i, hi = list, lo, last
   end
end

-- " exhausted=N <sent_name>=M": threads that ran out, items sent.
function bench.once_extra(threads, sent_name)
   local ex, total = 0, 0
   for _, t in ipairs(threads) do
      ex = ex + (t:get("exhausted") or 0)
      total = total + (t:get("sent") or 0)
   end
   return string.format(" exhausted=%d %s=%d", ex, sent_name, total)
end

local b64chars = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"

function bench.base64(s)
   local out = {}
   for i = 1, #s, 3 do
      local a, b, c = s:byte(i, i + 2)
      local n = a * 65536 + (b or 0) * 256 + (c or 0)
      local c1 = math.floor(n / 262144) % 64
      local c2 = math.floor(n / 4096) % 64
      local c3 = math.floor(n / 64) % 64
      local c4 = n % 64
      out[#out + 1] = b64chars:sub(c1 + 1, c1 + 1) .. b64chars:sub(c2 + 1, c2 + 1)
         .. (b and b64chars:sub(c3 + 1, c3 + 1) or "=")
         .. (c and b64chars:sub(c4 + 1, c4 + 1) or "=")
   end
   return table.concat(out)
end

function bench.json_request(key, secret)
   return wrk.format("POST", nil, { ["Content-Type"] = "application/json" },
      '{"api_key":"' .. key .. '","api_secret":"' .. secret .. '"}')
end

function bench.basic_request(key, secret)
   return wrk.format("POST", nil, {
      ["Content-Type"] = "application/x-www-form-urlencoded",
      ["Authorization"] = "Basic " .. bench.base64(key .. ":" .. secret),
   }, "grant_type=client_credentials")
end

function done(summary, latency, requests)
   local secs = summary.duration / 1e6
   local e = summary.errors
   local extra = ""
   if bench.extra then
      extra = bench.extra(threads)
   end
   io.write(string.format(
      "BENCH rps=%.1f p50_ms=%.3f p99_ms=%.3f max_ms=%.3f requests=%d seconds=%.2f "
         .. "non2xx=%d connect_err=%d read_err=%d write_err=%d timeouts=%d%s\n",
      summary.requests / secs,
      latency:percentile(50) / 1000, latency:percentile(99) / 1000, latency.max / 1000,
      summary.requests, secs, e.status, e.connect, e.read, e.write, e.timeout, extra))
end
