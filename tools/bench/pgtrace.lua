-- pgtrace.lua - a PostgreSQL wire-protocol proxy that records every
-- statement a client runs, with its parameters and its result rows.
--
-- Why: the benchmark turns the SQL of one real slot spin into a pgbench
-- script (tools/bench/spinsql.lua). PostgreSQL's own log shows statements and
-- parameters, but not what they returned, and a spin feeds results into
-- later statements (the reserved play id, the seed id and nonce). Between
-- the host and the server this proxy sees both directions, so the trace
-- holds the whole data flow, exactly as the host ran it.
--
-- Usage: luajit pgtrace.lua UPSTREAM_PORT PORT_FILE TRACE_FILE
-- Listens on a free loopback port (written to PORT_FILE once listening) and
-- relays to 127.0.0.1:UPSTREAM_PORT until killed. The client must connect
-- with sslmode=disable&gssencmode=disable (plain typed messages only).
-- Each finished execution is appended to TRACE_FILE as one JSON line:
--   {link, sql, params = [text | null], cols = [name], rows = [[text | null]],
--    tag, err, inflight, results}
-- `inflight` counts the executions of the same link that were sent before
-- this one and not yet answered (above 0: the client pipelined). A simple
-- Query ('Q', possibly several statements) is one line whose `results`
-- lists each statement's {cols, rows, tag}. Text formats only (libpq's
-- default, and the host's).
local socket = require "socket"
local cjson = require "cjson"
local wire = require "spec.support.pgwire" -- run from the repository root

local upstream_port, port_file, trace_file = tonumber(arg[1]), arg[2], arg[3]
assert(upstream_port and port_file and trace_file, "usage: pgtrace.lua UPSTREAM_PORT PORT_FILE TRACE_FILE")

local trace = assert(io.open(trace_file, "a"))
local NULL = cjson.null

local u32, i32, u16, cstring, send_all = wire.u32, wire.i32, wire.u16, wire.cstring, wire.send_all

local function emit(rec)
  trace:write(cjson.encode(rec), "\n")
  trace:flush()
end

-- Splits complete typed messages off buf: returns a list of {kind, body}
-- and what is left.
local function messages(buf)
  local out, i = {}, 1
  while #buf - i + 1 >= 5 do
    local total = 1 + u32(buf, i + 1)
    if #buf - i + 1 < total then break end
    out[#out + 1] = { buf:sub(i, i), buf:sub(i + 5, i + total - 1) }
    i = i + total
  end
  return out, buf:sub(i)
end

-- Client side: Parse names statements, Bind fills the unnamed portal,
-- Execute / Query queue an item that the server's answers complete.
local function on_client(l, kind, body)
  if kind == "P" then
    local name, i = cstring(body, 1)
    l.stmts[name] = cstring(body, i)
  elseif kind == "B" then
    local portal, i = cstring(body, 1)
    local stmt
    stmt, i = cstring(body, i)
    local nfmt = u16(body, i)
    i = i + 2 + 2 * nfmt
    local n = u16(body, i)
    i = i + 2
    local params = {}
    for k = 1, n do
      local len = i32(body, i)
      i = i + 4
      if len < 0 then
        params[k] = NULL
      else
        params[k] = body:sub(i, i + len - 1)
        i = i + len
      end
    end
    l.portals[portal] = { sql = l.stmts[stmt] or "", params = params }
  elseif kind == "E" then
    local portal = cstring(body, 1)
    local p = l.portals[portal] or { sql = "", params = {} }
    local item = { kind = "exec", sql = p.sql, params = p.params, cols = {}, rows = {}, inflight = l.pending }
    l.queue[#l.queue + 1] = item
    l.pending = l.pending + 1
  elseif kind == "Q" then
    local item = { kind = "query", sql = cstring(body, 1), results = {}, inflight = l.pending }
    l.queue[#l.queue + 1] = item
    l.pending = l.pending + 1
  elseif kind == "S" then
    l.queue[#l.queue + 1] = { kind = "sync" }
  end
end

local function record(l, item)
  l.pending = l.pending - 1
  if item.kind == "query" then
    emit { link = l.id, sql = item.sql, params = {}, results = item.results, err = item.err or NULL,
           inflight = item.inflight }
  else
    emit { link = l.id, sql = item.sql, params = item.params, cols = item.cols, rows = item.rows,
           tag = item.tag or NULL, err = item.err or NULL, inflight = item.inflight }
  end
end

-- The first queued execution not answered yet.
local function head(l)
  for _, item in ipairs(l.queue) do
    if item.kind ~= "sync" then return item end
  end
end

local function drop(l, item)
  for k, x in ipairs(l.queue) do
    if x == item then table.remove(l.queue, k) return end
  end
end

local function error_text(body)
  local i, fields = 1, {}
  while i <= #body and body:byte(i) ~= 0 do
    local t = body:sub(i, i)
    local v
    v, i = cstring(body, i + 1)
    fields[t] = v
  end
  return (fields.C or "?????") .. ": " .. (fields.M or "")
end

local function on_server(l, kind, body)
  local item = head(l)
  if kind == "T" then
    local n, i, cols = u16(body, 1), 3, {}
    for k = 1, n do
      cols[k], i = cstring(body, i)
      i = i + 18
    end
    if item and item.kind == "query" then
      item.current = { cols = cols, rows = {} }
    elseif item then
      item.cols = cols
    end
  elseif kind == "D" then
    local n, i, row = u16(body, 1), 3, {}
    for k = 1, n do
      local len = i32(body, i)
      i = i + 4
      if len < 0 then
        row[k] = NULL
      else
        row[k] = body:sub(i, i + len - 1)
        i = i + len
      end
    end
    if item and item.kind == "query" then
      item.current = item.current or { cols = {}, rows = {} }
      item.current.rows[#item.current.rows + 1] = row
    elseif item then
      item.rows[#item.rows + 1] = row
    end
  elseif kind == "C" or kind == "I" or kind == "s" then
    if not item then return end
    local tag = kind == "C" and cstring(body, 1) or ""
    if item.kind == "query" then
      local r = item.current or { cols = {}, rows = {} }
      r.tag = tag
      item.results[#item.results + 1] = r
      item.current = nil
    else
      item.tag = tag
      drop(l, item)
      record(l, item)
    end
  elseif kind == "E" then
    if not item then return end
    local text = error_text(body)
    if item.kind == "query" then
      item.err = text
    else -- the server skips to the Sync: every execution before it fails
      while true do
        local x = l.queue[1]
        if not x or x.kind == "sync" then break end
        table.remove(l.queue, 1)
        x.err = x.err or text
        record(l, x)
      end
    end
  elseif kind == "Z" then
    local x = l.queue[1]
    if x and x.kind == "query" then
      table.remove(l.queue, 1)
      record(l, x)
    elseif x and x.kind == "sync" then
      table.remove(l.queue, 1)
    end
  end
end

local listener = assert(socket.bind("127.0.0.1", 0))
do
  local _, port = listener:getsockname()
  local f = assert(io.open(port_file .. ".tmp", "w"))
  f:write(port, "\n")
  f:close()
  assert(os.rename(port_file .. ".tmp", port_file))
end
listener:settimeout(0)

local links, of, next_id = {}, {}, 0

local function close(l)
  if l.closed then return end
  l.closed = true
  of[l.client], of[l.server] = nil, nil
  l.client:close()
  l.server:close()
  for k, x in ipairs(links) do if x == l then table.remove(links, k) break end end
end

local function pump(l, from_client)
  local sock = from_client and l.client or l.server
  local data, err, partial = sock:receive(65536)
  data = data or partial
  if data and #data > 0 then
    -- Server data is recorded before it is relayed: once the client has an
    -- answer, the trace holds it (the bench cuts the trace per request).
    if from_client and not send_all(l.server, data) then return close(l) end
    if from_client then
      l.cbuf = l.cbuf .. data
      if l.startup then -- untyped: int32 length, int32 code (SSL/GSS requests are refused by sslmode=disable)
        if #l.cbuf >= 8 and #l.cbuf >= u32(l.cbuf, 1) then
          l.cbuf = l.cbuf:sub(u32(l.cbuf, 1) + 1)
          l.startup = false
        end
      end
      if not l.startup then
        local list
        list, l.cbuf = messages(l.cbuf)
        for _, m in ipairs(list) do on_client(l, m[1], m[2]) end
      end
    else
      local list
      list, l.sbuf = messages(l.sbuf .. data)
      for _, m in ipairs(list) do on_server(l, m[1], m[2]) end
      if not send_all(l.client, data) then return close(l) end
    end
  end
  if err == "closed" then close(l) end
end

while true do
  local readers = { listener }
  for _, l in ipairs(links) do
    readers[#readers + 1] = l.client
    readers[#readers + 1] = l.server
  end
  local ready = socket.select(readers, nil, 1)
  for _, s in ipairs(ready) do
    if s == listener then
      local c = listener:accept()
      if c then
        local up = socket.tcp()
        up:settimeout(5)
        if up:connect("127.0.0.1", upstream_port) then
          c:settimeout(0)
          up:settimeout(0)
          c:setoption("tcp-nodelay", true)
          up:setoption("tcp-nodelay", true)
          next_id = next_id + 1
          local l = { id = next_id, client = c, server = up, cbuf = "", sbuf = "", startup = true,
                      stmts = {}, portals = {}, queue = {}, pending = 0 }
          links[#links + 1] = l
          of[c], of[up] = l, l
        else
          c:close()
          up:close()
        end
      end
    else
      local l = of[s]
      if l and not l.closed then pump(l, s == l.client) end
    end
  end
end
