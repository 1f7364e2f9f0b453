-- Single-use form bodies, one a line (bench/secretless: private_key_jwt
-- client assertions and RFC 8693 token exchanges, each JWT accepted once).
-- Thread k of n takes lines k+1, k+1+n, ... and sends each once, as an
-- application/x-www-form-urlencoded POST built in init() (so sending costs
-- wrk no more than json.lua's cached requests). A thread that runs out
-- stops; done() adds exhausted=N (threads that ran out) and bodies_sent=M,
-- and the harness marks the case invalid.
-- Usage: wrk ... -s bodies.lua URL -- BODIES_FILE NTHREADS
local dir = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
dofile(dir .. "common.lua")

local start = bench.send_once(function(r)
   return r
end)

function init(args)
   local path, n = args[1], tonumber(args[2]) or 1
   local f = io.open(path or "", "r")
   if not f then
      error("cannot open bodies file " .. tostring(path))
   end
   local headers = { ["Content-Type"] = "application/x-www-form-urlencoded" }
   local list, k = {}, 0
   for line in f:lines() do
      if k % n == id and line ~= "" then
         list[#list + 1] = wrk.format("POST", nil, headers, line)
      end
      k = k + 1
   end
   f:close()
   if #list == 0 then
      error("no bodies for thread " .. id .. " in " .. path)
   end
   start(list, 1, #list)
end

function bench.extra(threads)
   return bench.once_extra(threads, "bodies_sent")
end
