-- The flood: real api_keys (production argon2 cost) with wrong but
-- well-formed secrets (valid checksum), so every request passes the cheap
-- checks and costs the server a full argon2 verify before a 401. Run with
-- TOKENMINT_FAILED_AUTH_PER_MINUTE raised so the per-address failure limit
-- does not cut it short. Counts answers by status (the response() hook costs
-- wrk some throughput; the flood's own rate is not a measured figure).
-- Usage: wrk ... -s flood.lua URL -- WRONG_PAIRS_FILE NTHREADS
local dir = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
dofile(dir .. "common.lua")

statuses = {}
bench.cycle(bench.json_request)

function response(status, headers, body)
   statuses[status] = (statuses[status] or 0) + 1
end

function bench.extra(threads)
   local all = {}
   for _, t in ipairs(threads) do
      local s = t:get("statuses") or {}
      for code, count in pairs(s) do
         all[code] = (all[code] or 0) + count
      end
   end
   local codes = {}
   for code in pairs(all) do
      codes[#codes + 1] = code
   end
   table.sort(codes)
   local out = {}
   for _, code in ipairs(codes) do
      out[#out + 1] = string.format(" s%d=%d", code, all[code])
   end
   return table.concat(out)
end
