-- pipelining_spec.lua - pipelined requests behind a first request that is
-- answered without yielding: GET /, a 404 and a 405 (answered in C before any
-- Lua runs), 422s (refused by validation in Lua), a HEAD. http.c answers such
-- a request from inside its parse loop, so this is the other path from
-- http_spec's yielding case. Each batch goes out in one write, then again
-- split at every byte position (one write per piece); the answers must be the
-- reference answers (each request alone on its own connection), in order,
-- none lost and none duplicated. A 413 still answers and closes, whatever is
-- pipelined behind it.
local support = require "spec.support.host"
local http = require "spec.support.http"
local socket = require "socket"

local MAX_BODY = 1024

-- The requests that follow every first request: a JSON answer, a body the
-- parser must frame exactly, and a fixture collection.
local FOLLOWERS = {
  { "GET", "/api" },
  { "POST", "/test/raw", "hello" },
  { "GET", "/test/items/" },
}

-- The first requests, none of which yields, and what their answer must be.
local FIRSTS = {
  { name = "GET /", req = { "GET", "/" }, status = 200,
    check = function(res) assert.equal("Casino-Club F2P Backend API", res.json.message) end },
  { name = "a 404", req = { "GET", "/no/such/path" }, status = 404,
    check = function(res) assert.equal('{"detail":"Not Found"}', res.body) end },
  { name = "a 405", req = { "DELETE", "/health" }, status = 405,
    check = function(res)
      assert.equal('{"detail":"Method Not Allowed"}', res.body)
      assert.equal("GET, HEAD", res.headers.allow)
    end },
  { name = "a 422 on a typed path parameter", req = { "POST", "/test/echo/abc", '{"bet_amount":50}' }, status = 422,
    check = function(res)
      assert.same({ "path", "item_id" }, res.json.detail[1].loc)
      assert.equal("int_parsing", res.json.detail[1].type)
    end },
  { name = "a 422 on a body that is not JSON", req = { "POST", "/test/echo/1", "{not json" }, status = 422,
    check = function(res) assert.equal("json_invalid", res.json.detail[1].type) end },
  { name = "a HEAD", req = { "HEAD", "/" }, status = 200,
    check = function(res)
      assert.equal("", res.body)
      assert.is_true(tonumber(res.headers["content-length"]) > 0)
    end },
}

-- One request's bytes with a fixed X-Request-Id (echoed in the answer).
local function format(r, id)
  return http.format(r[1], r[2], r[3], { ["X-Request-Id"] = id })
end

local function connect(port)
  local c = assert(http.connect(port))
  c.sock:setoption("tcp-nodelay", true) -- each piece leaves as its own segment
  return c
end

-- Reads #reqs answers and checks each equals its reference: status, every
-- header (the request id included) and body. Then a last request on the same
-- connection must get its own answer: a duplicated or stray answer would be
-- read in its place.
local function expect_answers(c, reqs, refs, where)
  for i, r in ipairs(reqs) do
    local res, err = c:read_response(r[1] == "HEAD")
    assert(res, where .. ": answer " .. i .. " missing: " .. tostring(err))
    assert.equal(refs[i].status, res.status, where .. ": answer " .. i)
    assert.same(refs[i].headers, res.headers, where .. ": answer " .. i)
    assert.equal(refs[i].body, res.body, where .. ": answer " .. i)
  end
  local last = assert(c:request("GET", "/api", nil, { ["X-Request-Id"] = "last" }), where .. ": last request")
  assert.equal(200, last.status, where)
  assert.equal("last", last.headers["x-request-id"], where)
end

-- How many access-log lines carry request id `id`.
local function handled(host, id)
  local log, needle, count, at = host:log_text(), '"request_id":"' .. id .. '"', 0, 1
  while true do
    at = log:find(needle, at, true)
    if not at then return count end
    count, at = count + 1, at + #needle
  end
end

describe("HTTP pipelining", function()
  local host

  setup(function()
    host = support.start { WORKERS = "1", MAX_BODY_BYTES = tostring(MAX_BODY), MAX_CONNECTIONS = "20" }
  end)

  teardown(function() host:stop() end)

  for n, first in ipairs(FIRSTS) do
    describe("first " .. first.name, function()
      local reqs, parts, refs = { first.req }, {}, {}
      for _, f in ipairs(FOLLOWERS) do reqs[#reqs + 1] = f end
      for i, r in ipairs(reqs) do parts[i] = format(r, "p" .. n .. "-" .. i) end
      local bytes = table.concat(parts)

      setup(function()
        -- The reference answers: each request alone on a fresh connection.
        for i, r in ipairs(reqs) do
          local c = connect(host.port)
          assert(c:send(parts[i]))
          refs[i] = assert(c:read_response(r[1] == "HEAD"))
          c:close()
        end
      end)

      it("answers as it should alone", function()
        assert.equal(first.status, refs[1].status)
        first.check(refs[1])
        assert.equal("p" .. n .. "-1", refs[1].headers["x-request-id"])
        for i = 2, #reqs do assert.equal(200, refs[i].status) end
      end)

      it("answers the requests written behind it in one write, in order", function()
        local before = {}
        for i = 1, #reqs do before[i] = handled(host, "p" .. n .. "-" .. i) end
        local c = connect(host.port)
        assert(c:send(bytes))
        expect_answers(c, reqs, refs, "one write")
        c:close()
        for i = 1, #reqs do -- each was handled exactly once
          assert.equal(before[i] + 1, handled(host, "p" .. n .. "-" .. i), "request " .. i)
        end
      end)

      it("answers the same when the bytes are split at any position", function()
        for k = 1, #bytes - 1 do
          local c = connect(host.port)
          assert(c:send(bytes:sub(1, k)))
          socket.sleep(0.001) -- lets the host read the first piece alone
          assert(c:send(bytes:sub(k + 1)))
          expect_answers(c, reqs, refs, "split at " .. k)
          c:close()
        end
      end)
    end)
  end

  describe("behind a 413", function()
    local too_large = http.format("POST", "/test/raw", string.rep("x", MAX_BODY + 1), { ["X-Request-Id"] = "big" })
    local chunk = string.rep("y", 600)
    local chunked_too_large = "POST /test/raw HTTP/1.1\r\nHost: x\r\nX-Request-Id: big\r\nTransfer-Encoding: chunked\r\n\r\n"
      .. string.format("%x\r\n%s\r\n", #chunk, chunk):rep(2) .. "0\r\n\r\n"
    local behind = http.format("GET", "/", nil, { ["X-Request-Id"] = "behind-1" })
      .. http.format("POST", "/test/raw", "abc", { ["X-Request-Id"] = "behind-2" })

    -- Reads the 413 and then the end of the connection: nothing else.
    local function expect_413_then_close(c, where)
      local res, err = c:read_response()
      assert(res, where .. ": no 413: " .. tostring(err))
      assert.equal(413, res.status, where)
      assert.equal('{"detail":"Request body too large"}', res.body, where)
      assert.equal("close", res.headers.connection, where)
      local extra, rerr = c.sock:receive(1)
      assert.is_nil(extra, where .. ": bytes after the 413")
      assert.truthy(rerr == "closed" or rerr:find("reset"), where .. ": " .. tostring(rerr))
    end

    local function never_handled()
      assert.equal(0, handled(host, "behind-1") + handled(host, "behind-2"), "a request behind the 413 was handled")
      assert.equal(0, handled(host, "big"), "the 413 reached the handler")
    end

    it("answers 413 and closes, for a declared or a chunked body, in one write", function()
      for _, big in ipairs { too_large, chunked_too_large } do
        local c = connect(host.port)
        assert(c:send(big .. behind))
        expect_413_then_close(c, "one write")
        c:close()
      end
      never_handled()
    end)

    it("answers the request before it, then 413 and close", function()
      local c = connect(host.port)
      assert(c:send(http.format("GET", "/", nil, { ["X-Request-Id"] = "before" }) .. too_large .. behind))
      local res = assert(c:read_response())
      assert.equal(200, res.status)
      assert.equal("before", res.headers["x-request-id"])
      expect_413_then_close(c, "after a 200")
      c:close()
      never_handled()
    end)

    it("answers 413 and closes when the bytes are split at any position", function()
      local bytes = too_large .. behind
      for k = 1, #bytes - 1 do
        local c = connect(host.port)
        assert(c:send(bytes:sub(1, k)))
        socket.sleep(0.001)
        c:send(bytes:sub(k + 1)) -- may fail: the host may have refused and closed already
        expect_413_then_close(c, "split at " .. k)
        c:close()
      end
      never_handled()
      assert.equal(200, host:request("GET", "/").status)
    end)
  end)
end)
