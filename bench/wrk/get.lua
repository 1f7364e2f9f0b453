-- A plain GET of the URL, used for /healthz during the flood: it polls like
-- a health checker, waiting DELAY_MS (default 10) between requests on each
-- connection (wrk's delay() hook; the wait is not part of the latency).
-- Adds the machine-readable done() line.
-- Usage: wrk ... -s get.lua http://127.0.0.1:PORT/healthz -- [DELAY_MS]
local dir = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
dofile(dir .. "common.lua")

local delay_ms = 10

function init(args)
   delay_ms = tonumber(args[1]) or 10
end

function delay()
   return delay_ms
end
