-- Cold exchange: every request uses a key that this server has not seen yet,
-- so each one costs a database read and a full argon2 verify. The threads
-- split the pairs file; each pair is sent exactly once. A thread that runs
-- out stops (wrk.thread:stop()) and done() reports exhausted=N (threads that
-- ran out): the rate is then understated and bench/run marks the figure
-- invalid, so seed more cold keys (BENCH_COLD_KEYS).
-- Usage: wrk ... -s cold.lua URL -- PAIRS_FILE NTHREADS
local dir = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
dofile(dir .. "common.lua")

local creds, hi
local i
exhausted = 0
sent = 0

function init(args)
   creds = bench.load_pairs(args[1])
   local lo
   lo, hi = bench.slice(#creds, tonumber(args[2]) or 1)
   i = lo
end

function request()
   if i > hi then
      if exhausted == 0 then
         exhausted = 1
         wrk.thread:stop()
      end
      -- Something must be returned; a cheap GET that is not an exchange.
      return wrk.format("GET", "/healthz")
   end
   local r = bench.json_request(creds[i][1], creds[i][2])
   i = i + 1
   sent = sent + 1
   return r
end

function bench.extra(threads)
   local ex, total = 0, 0
   for _, t in ipairs(threads) do
      ex = ex + (t:get("exhausted") or 0)
      total = total + (t:get("sent") or 0)
   end
   return string.format(" exhausted=%d cold_sent=%d", ex, total)
end
