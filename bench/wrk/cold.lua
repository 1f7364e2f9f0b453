-- Cold exchange: every request uses a key that this server has not seen yet,
-- so each one costs a database read and a full argon2 verify. The threads
-- split the pairs file; each pair is sent exactly once. A thread that runs
-- out stops and done() reports exhausted=N (threads that ran out): the rate
-- is then understated and bench/run marks the figure invalid, so seed more
-- cold keys (BENCH_COLD_KEYS).
-- Usage: wrk ... -s cold.lua URL -- PAIRS_FILE NTHREADS
local dir = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
dofile(dir .. "common.lua")

-- bench.json_request is looked up at each request (cold_from.lua replaces it).
local start = bench.send_once(function(pair)
   return bench.json_request(pair[1], pair[2])
end)

function init(args)
   local creds = bench.load_pairs(args[1])
   start(creds, bench.slice(#creds, tonumber(args[2]) or 1))
end

function bench.extra(threads)
   return bench.once_extra(threads, "cold_sent")
end
