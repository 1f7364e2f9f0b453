-- The cold exchanges of cold.lua (each pair of the file sent once, so every
-- request costs one database read and one argon2 verify) sent as if from one
-- client address: every request carries "X-Forwarded-For: ADDR" (believed
-- from TOKENMINT_TRUSTED_PROXIES). Also counts the answers by status
-- (" s200=N ...") next to cold.lua's exhausted= and cold_sent=, so
-- bench/flood knows how many of the server's argon2 verifies were this
-- client's: every 200 is one, and cold_sent minus the answers were cut off
-- when wrk stopped.
-- Usage: wrk ... -s cold_from.lua URL -- PAIRS_FILE NTHREADS ADDR
local dir = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
dofile(dir .. "cold.lua")

local xff

local cold_init = init
function init(args)
   xff = args[3] or error("cold_from.lua: the X-Forwarded-For address (3rd argument) is missing")
   cold_init(args)
end

-- cold.lua's request() calls bench.json_request at each request.
function bench.json_request(key, secret)
   return wrk.format("POST", nil, {
      ["Content-Type"] = "application/json",
      ["X-Forwarded-For"] = xff,
   }, '{"api_key":"' .. key .. '","api_secret":"' .. secret .. '"}')
end

statuses = {}

function response(status, headers, body)
   statuses[status] = (statuses[status] or 0) + 1
end

local cold_extra = bench.extra
function bench.extra(threads)
   local all = {}
   for _, t in ipairs(threads) do
      for code, count in pairs(t:get("statuses") or {}) do
         all[code] = (all[code] or 0) + count
      end
   end
   local codes = {}
   for code in pairs(all) do
      codes[#codes + 1] = code
   end
   table.sort(codes)
   local out = { cold_extra(threads) }
   for _, code in ipairs(codes) do
      out[#out + 1] = string.format(" s%d=%d", code, all[code])
   end
   return table.concat(out)
end
