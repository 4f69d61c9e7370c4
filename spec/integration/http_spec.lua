-- http_spec.lua - HTTP/1.1 behaviour of a real host: keep-alive, pipelining,
-- limits and their statuses, routing answers, CORS, errors.
local support = require "spec.support.host"
local http = require "spec.support.http"
local socket = require "socket"

describe("HTTP", function()
  local host

  setup(function()
    host = support.start {
      WORKERS = "1",
      MAX_HEADER_BYTES = "2048",
      MAX_BODY_BYTES = "1024",
      HEADER_TIMEOUT_S = "0.5",
      MAX_CONNECTIONS = "20",
    }
  end)

  teardown(function() host:stop() end)

  it("keeps a connection alive across requests", function()
    local c = assert(http.connect(host.port))
    for _ = 1, 3 do
      local res = assert(c:request("GET", "/"))
      assert.equal(200, res.status)
      assert.equal("Casino-Club F2P Backend API", res.json.message)
      assert.is_nil(res.headers.connection)
    end
    c:close()
  end)

  it("answers pipelined requests in order", function()
    local c = assert(http.connect(host.port))
    -- the slow request first: its answer must still come first
    assert(c:send(http.format("GET", "/test/sleep?seconds=0.2") .. http.format("GET", "/api")
      .. http.format("GET", "/nope") .. http.format("GET", "/")))
    local a, b, d, e = c:read_response(), c:read_response(), c:read_response(), c:read_response()
    assert.equal(0.2, a.json.slept)
    assert.equal("Casino-Club F2P API", b.json.name)
    assert.equal(404, d.status)
    assert.equal("running", e.json.status)
    c:close()
  end)

  it("gives 404 with the contract body for an unknown path", function()
    local res = host:request("GET", "/no/such/path")
    assert.equal(404, res.status)
    assert.equal('{"detail":"Not Found"}', res.body)
    assert.equal("application/json", res.headers["content-type"])
  end)

  it("gives 405 with Allow for a known path and wrong method", function()
    local res = host:request("DELETE", "/health")
    assert.equal(405, res.status)
    assert.equal('{"detail":"Method Not Allowed"}', res.body)
    assert.equal("GET, HEAD", res.headers.allow)
  end)

  it("treats a trailing slash as equal only on collection roots", function()
    local a, b = host:request("GET", "/test/items"), host:request("GET", "/test/items/")
    assert.equal(200, a.status)
    assert.equal(200, b.status)
    assert.equal("[]", a.body)
    assert.equal("[]", b.body)
    assert.equal(404, host:request("GET", "/api/").status)
    assert.equal(404, host:request("GET", "/health/").status)
  end)

  it("answers HEAD on every GET route with headers and no body", function()
    local c = assert(http.connect(host.port))
    local res = assert(c:request("HEAD", "/"))
    assert.equal(200, res.status)
    assert.equal("", res.body)
    assert.is_true(tonumber(res.headers["content-length"]) > 0)
    -- the connection is still in sync: the next answer is the next request's
    local nxt = assert(c:request("GET", "/api"))
    assert.equal("Casino-Club F2P API", nxt.json.name)
    c:close()
  end)

  it("gives 400 and closes on a malformed request", function()
    local c = assert(http.connect(host.port))
    c:send("GARBAGE\r\n\r\n")
    local res = assert(c:read_response())
    assert.equal(400, res.status)
    assert.equal("close", res.headers.connection)
    local _, err = c.sock:receive(1)
    assert.equal("closed", err)
    c:close()
  end)

  it("gives 431 for headers over the limit", function()
    local res = host:request("GET", "/", nil, { ["X-Big"] = string.rep("a", 3000) })
    assert.equal(431, res.status)
  end)

  it("gives 413 for a declared body over the limit", function()
    local res = host:request("POST", "/test/raw", string.rep("x", 2000))
    assert.equal(413, res.status)
    assert.equal('{"detail":"Request body too large"}', res.body)
  end)

  it("gives 413 for a chunked body that grows over the limit", function()
    local c = assert(http.connect(host.port))
    local chunk = string.rep("y", 600)
    c:send("POST /test/raw HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
      .. string.format("%x\r\n%s\r\n", #chunk, chunk) .. string.format("%x\r\n%s\r\n", #chunk, chunk) .. "0\r\n\r\n")
    local res = assert(c:read_response())
    assert.equal(413, res.status)
    c:close()
  end)

  it("reads chunked request bodies", function()
    local c = assert(http.connect(host.port))
    c:send("POST /test/raw HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n")
    local res = assert(c:read_response())
    assert.equal(200, res.status)
    assert.equal(11, res.json.length)
    c:close()
  end)

  it("sends 100 Continue before reading an expected body", function()
    local c = assert(http.connect(host.port))
    c:send("POST /test/raw HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n")
    local interim = assert(c:read_response())
    assert.equal(100, interim.status)
    c:send("abcd")
    local res = assert(c:read_response())
    assert.equal(4, res.json.length)
    c:close()
  end)

  it("gives 408 when headers do not arrive in time", function()
    local c = assert(http.connect(host.port))
    c:send("GET / HTTP/1.1\r\nHost: x\r\n") -- never finished
    local res = assert(c:read_response())
    assert.equal(408, res.status)
    local _, err = c.sock:receive(1)
    assert.equal("closed", err)
    c:close()
  end)

  it("gives 422 in the FastAPI shape, all errors in declaration order", function()
    local res = host:request("POST", "/test/echo/abc", { bet_amount = 1.5, choice = "lizard" })
    assert.equal(422, res.status)
    local d = res.json.detail
    assert.same({ "path", "item_id" }, d[1].loc)
    assert.equal("int_parsing", d[1].type)
    assert.same({ "body", "bet_amount" }, d[2].loc)
    assert.equal("int_from_float", d[2].type)
    assert.same({ "body", "choice" }, d[3].loc)
    assert.equal("Input should be 'rock', 'paper' or 'scissors'", d[3].msg)
  end)

  it("gives 422 json_invalid for a body that is not JSON, and for invalid UTF-8", function()
    local res = host:request("POST", "/test/echo/1", "{not json", { ["Content-Type"] = "application/json" })
    assert.equal(422, res.status)
    assert.equal("json_invalid", res.json.detail[1].type)
    assert.equal("body", res.json.detail[1].loc[1])
    local bad = host:request("POST", "/test/echo/1", '{"bet_amount":50,"note":"\255"}')
    assert.equal(422, bad.status)
    assert.equal("json_invalid", bad.json.detail[1].type)
    local nan = host:request("POST", "/test/echo/1", '{"bet_amount":NaN}')
    assert.equal("json_invalid", nan.json.detail[1].type)
  end)

  it("answers 422, not 500, when a path or query value is not UTF-8", function()
    local res = host:request("POST", "/test/echo/%FF", { bet_amount = 50 })
    assert.equal(422, res.status, res.body)
    assert.equal("\239\191\189", res.json.detail[1].input)
    local q = host:request("GET", "/test/sleep?seconds=%FF")
    assert.equal(422, q.status, q.body)
    assert.same({ "query", "seconds" }, q.json.detail[1].loc)
  end)

  it("accepts camelCase aliases and digit strings for integers", function()
    local res = host:request("POST", "/test/echo/7?flag=true", '{"betAmount":"50","choice":"rock"}')
    assert.equal(200, res.status)
    assert.equal(7, res.json.item_id)
    assert.equal(true, res.json.flag)
    assert.equal(50, res.json.body.bet_amount)
  end)

  it("turns a Lua error into a 500 with the request id, and keeps serving", function()
    local res = host:request("GET", "/test/error", nil, { ["X-Request-Id"] = "spec-req-1" })
    assert.equal(500, res.status)
    assert.equal("Internal Server Error", res.json.detail)
    assert.equal("spec-req-1", res.json.request_id)
    assert.equal("spec-req-1", res.headers["x-request-id"])
    assert.equal(200, host:request("GET", "/").status)
    assert.truthy(host:log_text():find("deliberate failure", 1, true))
  end)

  it("refuses a global write in a script", function()
    local res = host:request("GET", "/test/global")
    assert.equal(500, res.status)
    assert.truthy(host:log_text():find("assignment to undeclared global 'leaked_global'", 1, true))
  end)

  it("gives scripts no io, ffi, load*, dofile, debug or os.execute, and no way to require them", function()
    local seen = host:request("GET", "/test/sandbox").json
    for name, present in pairs(seen) do assert.is_false(present, name .. " is reachable") end
    assert.equal(20, (function() local n = 0 for _ in pairs(seen) do n = n + 1 end return n end)())
  end)

  it("generates a request id when none is given", function()
    local res = host:request("GET", "/")
    assert.truthy(res.headers["x-request-id"]:match("^%x+$"))
  end)

  it("answers CORS preflight for allowed origins only", function()
    local ok = host:request("OPTIONS", "/api/anything", nil, {
      Origin = "http://localhost:3000", ["Access-Control-Request-Method"] = "POST",
      ["Access-Control-Request-Headers"] = "authorization,content-type",
    })
    assert.equal(200, ok.status)
    assert.equal("http://localhost:3000", ok.headers["access-control-allow-origin"])
    assert.equal("true", ok.headers["access-control-allow-credentials"])
    assert.equal("authorization,content-type", ok.headers["access-control-allow-headers"])
    local bad = host:request("OPTIONS", "/", nil, {
      Origin = "http://evil.example", ["Access-Control-Request-Method"] = "GET",
    })
    assert.equal(400, bad.status)
    local simple = host:request("GET", "/", nil, { Origin = "http://127.0.0.1:3000" })
    assert.equal("http://127.0.0.1:3000", simple.headers["access-control-allow-origin"])
  end)

  it("closes connections beyond the per-worker limit at once", function()
    local held = {}
    for i = 1, 20 do held[i] = assert(http.connect(host.port)) end
    local extra = assert(http.connect(host.port))
    extra.sock:settimeout(2)
    extra:send(http.format("GET", "/"))
    local res, err = extra:read_response()
    assert.is_nil(res)
    assert.truthy(err == "closed" or err:find("reset"))
    for _, c in ipairs(held) do c:close() end
    socket.sleep(0.2)
    assert.equal(200, host:request("GET", "/").status)
  end)

  it("writes one JSON access line per request", function()
    host:request("GET", "/api?secret=hidden", nil, { ["X-Request-Id"] = "log-line-1" })
    local line = host:log_text():match('[^\n]*"request_id":"log%-line%-1"[^\n]*')
    assert.truthy(line)
    local entry = http.json.decode(line)
    assert.equal("GET", entry.method)
    assert.equal("/api", entry.path)
    assert.equal(200, entry.status)
    assert.equal(0, entry.worker)
    assert.is_number(entry.duration_ms)
    assert.is_number(entry.bytes)
    assert.is_falsy(line:find("hidden", 1, true))
  end)
end)
