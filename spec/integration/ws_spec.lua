-- ws_spec.lua - WebSocket routes of a real host: handshake, echo, fragments,
-- ping/pong, close handshake, limits (1009, 1008), refusal by on_handshake,
-- fan-out across two host processes, after_commit delivery.
local support = require "spec.support.host"
local ws = require "spec.support.ws"
local cjson = require "cjson"
local signal = require "posix.signal"

describe("WebSocket", function()
  local host

  setup(function()
    host = support.start { WORKERS = "1", WS_MAX_MESSAGE_BYTES = "4096", WS_MAX_OUTPUT_BYTES = "262144" }
  end)
  teardown(function() host:stop() end)

  it("completes the handshake with the RFC 6455 accept key and subprotocol", function()
    local c, res = ws.connect(host.port, "/test/ws/echo", { ["Sec-WebSocket-Protocol"] = "echo, other" })
    assert.truthy(c)
    assert.equal(101, res.status)
    assert.equal("websocket", res.headers.upgrade:lower())
    -- base64(sha1("MDEyMzQ1Njc4OWFiY2RlZg==" .. GUID)), computed independently
    local key = require("mime").b64("0123456789abcdef")
    local f = io.popen("printf '%s' '" .. key .. "258EAFA5-E914-47DA-95CA-C5AB0DC85B11' | openssl sha1 -binary | base64")
    local expected = f:read("*l")
    f:close()
    assert.equal(expected, res.headers["sec-websocket-accept"])
    assert.equal("echo", res.headers["sec-websocket-protocol"])
    c:shutdown()
  end)

  it("echoes text and binary messages", function()
    local c = assert(ws.connect(host.port, "/test/ws/echo"))
    c:send("hello 토큰")
    local op, payload = c:read_frame()
    assert.equal(1, op)
    assert.equal("hello 토큰", payload)
    c:send("\0\1\2\255", 2)
    op, payload = c:read_frame()
    assert.equal(2, op)
    assert.equal("\0\1\2\255", payload)
    c:shutdown()
  end)

  it("reassembles a fragmented message, answering a ping in between", function()
    local c = assert(ws.connect(host.port, "/test/ws/echo"))
    c:send_raw(ws.frame(1, "frag", { fin = false }) .. ws.frame(9, "p1") .. ws.frame(0, "men", { fin = false })
      .. ws.frame(0, "ted"))
    local op, payload = c:read_frame()
    assert.equal(10, op) -- pong first: it was sent mid-message
    assert.equal("p1", payload)
    op, payload = c:read_frame()
    assert.equal(1, op)
    assert.equal("fragmented", payload)
    c:shutdown()
  end)

  it("answers a ping with a pong carrying the same payload", function()
    local c = assert(ws.connect(host.port, "/test/ws/echo"))
    c:send("are you there", 9)
    local op, payload = c:read_frame()
    assert.equal(10, op)
    assert.equal("are you there", payload)
    c:shutdown()
  end)

  it("completes the close handshake", function()
    local c = assert(ws.connect(host.port, "/test/ws/echo"))
    c:close(1000)
    assert.equal(1000, c:read_close())
    local _, err = c.sock:receive(1)
    assert.equal("closed", err)
    assert.truthy(support.wait_for(function()
      return host:request("GET", "/test/ws/last_close").json.code == 1000
    end, 5))
  end)

  it("keeps frames that arrived with the handshake for after the upgrade", function()
    local c = assert(ws.connect(host.port, "/test/ws/echo", nil, ws.frame(1, "early bird") .. ws.frame(1, "second")))
    local op, payload = c:read_frame()
    assert.equal(1, op)
    assert.equal("early bird", payload)
    op, payload = c:read_frame()
    assert.equal("second", payload)
    c:shutdown()
  end)

  it("closes with 1009 on a message over the limit", function()
    local c = assert(ws.connect(host.port, "/test/ws/echo"))
    c:send(string.rep("x", 5000))
    assert.equal(1009, c:read_close())
  end)

  it("closes with 1007 on invalid UTF-8 text", function()
    local c = assert(ws.connect(host.port, "/test/ws/echo"))
    c:send("\255\254")
    assert.equal(1007, c:read_close())
  end)

  it("closes a slow reader with 1008 instead of buffering without bound", function()
    local c = assert(ws.connect(host.port, "/test/ws/echo"))
    c:send("flood")
    -- The server queued far more than the kernel holds: it must give up.
    assert.truthy(support.wait_for(function()
      for _, code in ipairs(host:request("GET", "/test/ws/last_close").json.codes) do
        if code == 1008 then return true end
      end
    end, 10))
    c:shutdown()
  end)

  it("refuses the upgrade when on_handshake says so, with its status", function()
    local c, res = ws.connect(host.port, "/test/ws/refuse")
    assert.is_nil(c)
    assert.equal(401, res.status)
    assert.equal("refused by on_handshake", cjson.decode(res.body).detail)
    assert.is_nil(res.headers.upgrade)
  end)

  it("gives 404 to a plain GET on a WebSocket path and to an unknown one", function()
    local plain = host:request("GET", "/test/ws/echo")
    assert.equal(404, plain.status)
    assert.equal('{"detail":"Not Found"}', plain.body)
    local c, res = ws.connect(host.port, "/test/ws/nope")
    assert.is_nil(c)
    assert.equal(404, res.status)
  end)

  it("delivers a message sent by another host process through Redis", function()
    local other = support.start { WORKERS = "1", DATABASE_URL = host.env.DATABASE_URL }
    local ok, err = pcall(function()
      local c = assert(ws.connect(host.port, "/test/ws/user/42"))
      local _, hello = c:read_frame()
      assert.equal("hello", cjson.decode(hello).type)
      local res = other:request("POST", "/test/ws/send/42", { text = "from the other process" })
      assert.equal(200, res.status)
      local op, payload = c:read_frame()
      assert.equal(1, op)
      assert.equal("from the other process", cjson.decode(payload).text)
      c:shutdown()
    end)
    other:stop()
    assert(ok, err)
  end)

  it("closes a session's sockets on every worker of every host, and no other session's", function()
    local other = support.start { WORKERS = "2", DATABASE_URL = host.env.DATABASE_URL }
    local ok, err = pcall(function()
      -- Session 501 of user 50: a socket on each worker of the other host
      -- and one here. The workers share one listening socket, so the first
      -- lands where the kernel puts it; with that worker stopped, the
      -- second can only be taken by the other one.
      local pids = other:workers()
      local function open_501()
        local c = assert(ws.connect(other.port, "/test/ws/session/50/501"))
        local _, hello = c:read_frame()
        hello = cjson.decode(hello)
        assert.equal(501, hello.session_id)
        return c, hello.worker
      end
      local first, w = open_501()
      signal.kill(pids[w + 1], signal.SIGSTOP)
      local opened, second, w2 = pcall(open_501)
      signal.kill(pids[w + 1], signal.SIGCONT)
      assert(opened, second)
      assert.equal(1 - w, w2)
      local doomed = { first, second }
      doomed[#doomed + 1] = assert(ws.connect(host.port, "/test/ws/session/50/501"))
      doomed[#doomed]:read_frame() -- hello
      -- Another session of the same user stays open.
      local kept = assert(ws.connect(other.port, "/test/ws/session/50/502"))
      kept:read_frame() -- hello

      assert.equal(200, host:request("POST", "/test/ws/close_session/501?code=4401").status)
      for _, c in ipairs(doomed) do
        local code, reason = c:read_close()
        assert.equal(4401, code)
        assert.equal("session revoked", reason)
        c:close(4401)
        c:shutdown()
      end
      kept:send("still here", 9)
      local op, payload = kept:read_frame()
      assert.equal(10, op)
      assert.equal("still here", payload)
      kept:shutdown()
    end)
    other:stop()
    assert(ok, err)
  end)

  it("sends after_commit messages once per committed transaction, never for a rolled back one", function()
    local c = assert(ws.connect(host.port, "/test/ws/user/7"))
    c:read_frame() -- hello
    assert.is_false(host:request("POST", "/test/ws/send/7?tx=true&fail=true", { text = "rolled back" }).json.committed)
    assert.is_true(host:request("POST", "/test/ws/send/7?tx=true", { text = "committed" }).json.committed)
    local _, payload = c:read_frame()
    assert.equal("committed", cjson.decode(payload).text)
    -- nothing else is pending: a ping is answered next, not a stray message
    c:send("x", 9)
    local op = c:read_frame()
    assert.equal(10, op)
    c:shutdown()
  end)
end)
