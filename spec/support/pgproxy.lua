-- pgproxy.lua - a PostgreSQL wire-protocol proxy that loses COMMITs on cue.
--
-- Integration specs put it between a host and the spec database to lose a
-- COMMIT's answer the way a dropped connection does, which nothing inside
-- the host can fake (spec/integration/commit_outcome_spec.lua). It runs in a
-- forked child (lua-posix) and relays bytes with LuaSocket's select. The
-- host must connect with sslmode=disable&gssencmode=disable, so a client
-- starts with one untyped StartupMessage and then sends typed messages
-- (type byte, int32 length). Per client connection the proxy reads Parse
-- ('P': statement name, query) to know each prepared statement's text, and
-- Bind ('B': portal, statement name) to see which one runs. Binding a
-- statement whose text carries a marker `/* cc-fault:<mode> */` arms <mode>
-- for the next COMMIT bound on that connection:
--   commit-reply-lost         COMMIT goes to the server; its answer (up to
--                             ReadyForQuery) is swallowed, then both sides
--                             are closed: committed, the host never hears.
--   commit-never-arrives      COMMIT is dropped and both sides are closed:
--                             the server aborts the transaction.
--   commit-never-arrives-held COMMIT is dropped and only the host's side is
--                             closed: the server session stays idle in its
--                             transaction until something ends it.
--   commit-reply-lost-outage  as commit-reply-lost, then every connection
--                             is closed and new ones are refused for
--                             `outage_s` seconds (a database restart).
-- Server-to-client bytes are relayed as they come, unparsed, except while
-- an answer is being swallowed.
local socket = require "socket"
local unistd = require "posix.unistd"
local signal = require "posix.signal"
local wait = require "posix.sys.wait"
local wire = require "spec.support.pgwire"

local M = {}

local u32, cstring, send_all = wire.u32, wire.cstring, wire.send_all

-- The proxy loop, in the child. Never returns.
local function serve(listener, opts)
  local log = opts.log and io.open(opts.log, "a")
  local function note(fmt, ...)
    if log then log:write(string.format("%.3f ", socket.gettime()), string.format(fmt, ...), "\n") log:flush() end
  end
  local links, of = {}, {} -- open links; socket -> its link
  local refuse_until = 0

  local function close(l)
    if l.closed then return end
    l.closed = true
    of[l.client], of[l.server] = nil, nil
    if not l.held then l.client:close() end
    l.server:close()
    for i, x in ipairs(links) do if x == l then table.remove(links, i) break end end
    note("link %d closed", l.id)
  end

  local function outage()
    refuse_until = socket.gettime() + (opts.outage_s or 3)
    while links[1] do close(links[1]) end
    note("outage for %.1f s", opts.outage_s or 3)
  end

  -- What to do with one client message: "forward", "drop" the link, or
  -- "hold" its server side open without the client.
  local function inspect(l, kind, body)
    if kind == "P" then
      local name, i = cstring(body, 1)
      local query = cstring(body, i)
      if name and query then l.stmts[name] = query end
    elseif kind == "B" then
      local _, i = cstring(body, 1)
      local stmt = cstring(body, i)
      local query = stmt and l.stmts[stmt] or ""
      local mode = query:match("/%*%s*cc%-fault:([%w%-]+)%s*%*/")
      if mode then
        l.armed = mode
        note("link %d armed %s", l.id, mode)
      elseif l.armed and query:match("^%s*[Cc][Oo][Mm][Mm][Ii][Tt]%s*;?%s*$") then
        local mode = l.armed
        l.armed = nil
        note("link %d: COMMIT bound, fault %s", l.id, mode)
        if mode == "commit-never-arrives" then return "drop" end
        if mode == "commit-never-arrives-held" then return "hold" end
        l.swallow, l.sbuf, l.then_outage = true, "", mode == "commit-reply-lost-outage"
      end
    elseif kind == "Q" then
      local mode = body:match("/%*%s*cc%-fault:([%w%-]+)%s*%*/")
      if mode then l.armed = mode end
    end
    return "forward"
  end

  local function from_client(l)
    local data, err, partial = l.client:receive(65536)
    data = data or partial
    if data and #data > 0 then l.cbuf = l.cbuf .. data end
    local out = {}
    while true do
      local buf = l.cbuf
      if l.startup then -- untyped: int32 length (itself included), int32 code
        if #buf < 8 then break end
        local len = u32(buf, 1)
        if #buf < len then break end
        local code = u32(buf, 5)
        -- SSLRequest / GSSENCRequest would be followed by a real startup
        if code ~= 80877103 and code ~= 80877104 then l.startup = false end
        out[#out + 1] = buf:sub(1, len)
        l.cbuf = buf:sub(len + 1)
      else
        if #buf < 5 then break end
        local total = 1 + u32(buf, 2)
        if #buf < total then break end
        local kind, body = buf:sub(1, 1), buf:sub(6, total)
        l.cbuf = buf:sub(total + 1)
        local action = inspect(l, kind, body)
        if action ~= "forward" then
          if #out > 0 then send_all(l.server, table.concat(out)) end
          if action == "hold" then
            l.held = true
            of[l.client] = nil
            l.client:close()
            note("link %d: host side closed, server side held", l.id)
          else
            close(l)
          end
          return
        end
        out[#out + 1] = buf:sub(1, total)
      end
    end
    if #out > 0 and not send_all(l.server, table.concat(out)) then close(l) return end
    if err == "closed" then close(l) end
  end

  local function from_server(l)
    local data, err, partial = l.server:receive(65536)
    data = data or partial
    if l.held then -- nobody to tell: wait for the server to end the session
      if err == "closed" then close(l) end
      return
    elseif l.swallow then
      l.sbuf = l.sbuf .. (data or "")
      local i = 1
      while #l.sbuf - i + 1 >= 5 do
        local kind, total = l.sbuf:sub(i, i), 1 + u32(l.sbuf, i + 1)
        if #l.sbuf - i + 1 < total then break end
        if kind == "Z" then -- the whole answer to COMMIT: lose it
          note("link %d: COMMIT answer swallowed (%d bytes)", l.id, i + total - 1)
          local then_outage = l.then_outage
          close(l)
          if then_outage then outage() end
          return
        end
        i = i + total
      end
    elseif data and #data > 0 and not send_all(l.client, data) then
      close(l)
      return
    end
    if err == "closed" then close(l) end
  end

  local next_id = 0
  local function accept()
    while true do
      local c = listener:accept()
      if not c then return end
      if socket.gettime() < refuse_until then
        c:close()
        note("refused a connection")
      else
        local s = socket.tcp()
        s:settimeout(5)
        local ok = s:connect(opts.upstream_host, opts.upstream_port)
        if not ok then
          c:close()
          s:close()
        else
          for _, x in ipairs { c, s } do
            x:settimeout(0)
            x:setoption("tcp-nodelay", true)
          end
          next_id = next_id + 1
          local l = { id = next_id, client = c, server = s, cbuf = "", startup = true, stmts = {} }
          links[#links + 1] = l
          of[c], of[s] = l, l
          note("link %d opened", l.id)
        end
      end
    end
  end

  listener:settimeout(0)
  while true do
    local readers = { listener }
    for _, l in ipairs(links) do
      if not l.held then readers[#readers + 1] = l.client end
      readers[#readers + 1] = l.server
    end
    local ready = socket.select(readers, nil, 1)
    for _, s in ipairs(ready) do
      if s == listener then
        accept()
      else
        local l = of[s]
        if l and not l.closed then
          if s == l.client then from_client(l) else from_server(l) end
        end
      end
    end
  end
end

--- start{upstream_port, upstream_host = "127.0.0.1", outage_s = 3, log = path}
--- -> proxy {port, pid, stop}: listens on a free local port in a child.
function M.start(opts)
  opts = opts or {}
  opts.upstream_host = opts.upstream_host or "127.0.0.1"
  assert(opts.upstream_port, "upstream_port is required")
  local listener = assert(socket.bind("127.0.0.1", 0))
  local _, port = listener:getsockname()
  io.stdout:flush()
  io.stderr:flush()
  local pid = assert(unistd.fork())
  if pid == 0 then
    local ok, err = pcall(serve, listener, opts)
    io.stderr:write("pgproxy: ", tostring(err or ok), "\n")
    unistd._exit(1)
  end
  listener:close()
  local proxy = { port = tonumber(port), pid = pid }
  function proxy.stop()
    signal.kill(pid, signal.SIGKILL)
    wait.wait(pid)
  end
  return proxy
end

return M
