-- The flood of flood.lua (real api_keys, wrong but checksum-valid secrets,
-- answers counted by status) sent as if from one client address: every
-- request carries "X-Forwarded-For: ADDR", which tokenmint believes when the
-- socket peer is in TOKENMINT_TRUSTED_PROXIES (bench/flood runs it with
-- 127.0.0.1/32). Used by bench/flood with the default failure budget, so
-- most answers are 429.
-- Usage: wrk ... -s flood_from.lua URL -- WRONG_PAIRS_FILE NTHREADS ADDR
local dir = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
dofile(dir .. "flood.lua") -- statuses, response(), bench.extra (by status)

local xff

-- Replaces flood.lua's init() and request() with the same cycle, built with
-- the header.
bench.cycle(function(key, secret)
   return wrk.format("POST", nil, {
      ["Content-Type"] = "application/json",
      ["X-Forwarded-For"] = xff,
   }, '{"api_key":"' .. key .. '","api_secret":"' .. secret .. '"}')
end)

local cycle_init = init
function init(args)
   xff = args[3] or error("flood_from.lua: the X-Forwarded-For address (3rd argument) is missing")
   cycle_init(args)
end
