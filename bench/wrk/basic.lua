-- Warm exchange, OAuth form: grant_type=client_credentials with the pair in
-- HTTP Basic (RFC 6749 §2.3.1). Also the request sent to the peer
-- (oidc-provider), with its client ids and secrets.
-- Usage: wrk ... -s basic.lua URL -- PAIRS_FILE NTHREADS
local dir = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
dofile(dir .. "common.lua")

bench.cycle(bench.basic_request)
