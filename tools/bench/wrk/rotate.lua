-- rotate.lua - wrk script: one request per line of a file, in turn, so
-- consecutive requests name different players (or rows) and concurrent ones
-- never contend for the same row.
-- Usage: wrk ... -s tools/bench/wrk/rotate.lua URL -- FILE METHOD PATH [BODY [auth]]
-- "{}" in PATH and BODY is replaced by the line; with "auth" the line is also
-- sent as "Authorization: Bearer <line>". Bodies are JSON and carry no
-- Idempotency-Key.
local requests, n, i = {}, 0, 0

function init(args)
  local file, method, path, body, auth = args[1], args[2], args[3], args[4], args[5] == "auth"
  for line in io.lines(file) do
    local headers = { ["Content-Type"] = "application/json" }
    if auth then headers["Authorization"] = "Bearer " .. line end
    local function fill(s) return (s:gsub("{}", function() return line end)) end
    n = n + 1
    requests[n] = wrk.format(method, fill(path), headers, body and body ~= "" and fill(body) or nil)
  end
  assert(n > 0, "rotate.lua: " .. file .. " is empty")
end

function request()
  i = i % n + 1
  return requests[i]
end
