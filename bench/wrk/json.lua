-- Warm exchange, JSON form: POST {"api_key": ..., "api_secret": ...}.
-- Cycles through every pair of the file; each wrk thread starts at its own
-- offset, so the connections spread over many keys.
-- Usage: wrk ... -s json.lua URL -- PAIRS_FILE NTHREADS
local dir = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
dofile(dir .. "common.lua")

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
      r = bench.json_request(creds[i][1], creds[i][2])
      cache[i] = r
   end
   return r
end
