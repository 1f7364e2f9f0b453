-- Warm exchange, OAuth form: grant_type=client_credentials with the pair in
-- HTTP Basic (RFC 6749 §2.3.1). Also the request sent to the peer
-- (oidc-provider), with its client ids and secrets.
-- Usage: wrk ... -s basic.lua URL -- PAIRS_FILE NTHREADS
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
      r = bench.basic_request(creds[i][1], creds[i][2])
      cache[i] = r
   end
   return r
end
