-- Warm exchange, JSON form: POST {"api_key": ..., "api_secret": ...}.
-- Cycles through every pair of the file; each wrk thread starts at its own
-- offset, so the connections spread over many keys.
-- Usage: wrk ... -s json.lua URL -- PAIRS_FILE NTHREADS
local dir = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
dofile(dir .. "common.lua")

bench.cycle(bench.json_request)
