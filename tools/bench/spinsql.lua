-- spinsql.lua - turns the SQL of real slot spins, recorded by pgtrace.lua,
-- into pgbench scripts that run the same statements with the same data flow
-- for any pre-funded player, so the benchmark's "SQL of one spin" reference
-- can never drift from the code.
--
-- Usage: luajit spinsql.lua TRACE WINDOWS OUT_PREFIX
--   TRACE     pgtrace.lua's JSON lines
--   WINDOWS   one line per captured spin: "first last user_id" (1-based line
--             numbers of TRACE written while that spin's request ran, and
--             the player who spun). Use two players whose seed ids do not
--             follow their user ids alike (rotate one's seed): a value that
--             equals the user id for one and the seed id for the other
--             tells which it is.
--   OUT_PREFIX  writes OUT_PREFIX<n>.sql (one script per shape) and
--             OUT_PREFIX<n>.def (its constants, NUL-separated -Dname=value)
-- Prints one line per shape: "<script> <weight> <statements> <round trips>
-- of the script> <round trips of the host>".
--
-- A spin is the transaction (BEGIN … COMMIT, same connection) holding the
-- statements that carry the player's id as a parameter. Spins whose statement texts
-- are the same share a shape (today: a losing spin, and a winning one with
-- one more statement); a shape's weight is how many captured spins had it,
-- so pgbench's mix (-f script@weight) follows the real mix. A shape seen
-- fewer than 3 times (of 10 or more spins) is left out.
--
-- Each parameter becomes, by what all captured spins of the shape agree on
-- (results before the player's id: a seed id may equal it by chance):
--   :uid           it is the player's id (pgbench sets uid per transaction);
--   :sNrJ_col      it equals column `col` of the single row statement J
--                  of shape N returned (the reserved play id, the seed id,
--                  the nonce): statement J gets `\gset sNrJ_`;
--   ('a' || :v)    a text built around one of those (the ledger reference
--                  'play:<id>');
--   NULL           it is NULL;
--   md5(random()::text)  a value that differs in every spin and looks like a
--                  generated key (hex, uuid): unique in every transaction;
--   :sNcI_K        otherwise a constant (-D), taken from the first spin
--                  (the bet, the game type, the outcome JSON, timestamps).
-- Statements the host sent without waiting (a simple query holding several
-- statements, or pipelined executions) go into one \startpipeline block, so
-- the round trips match, with one exception: pgbench 15 cannot \gset inside
-- a pipeline, so a statement whose answer feeds a later one leaves its
-- pipeline and goes alone (the pipeline goes on after it). The script then
-- makes more round trips than the host: both counts are printed. pgbench reads `:name` anywhere in a statement as a
-- variable, even inside a string literal, so literals holding a colon are
-- rewritten as E'' literals with \x3a.
local cjson = require "cjson"

local trace_path, windows_path, prefix = arg[1], arg[2], arg[3]
assert(trace_path and windows_path and prefix, "usage: spinsql.lua TRACE WINDOWS OUT_PREFIX")
local NULL = cjson.null

local function die(msg)
  io.stderr:write("spinsql: ", msg, "\n")
  os.exit(1)
end

---------------------------------------------------------------- SQL text

-- Splits a simple query's text into statements (quotes, identifiers,
-- comments and dollar quotes respected).
local function split_statements(sql)
  local out, start, i, n = {}, 1, 1, #sql
  while i <= n do
    local c = sql:sub(i, i)
    if c == "'" or c == '"' then
      local j = i + 1
      while j <= n do
        if sql:sub(j, j) == c then
          if sql:sub(j + 1, j + 1) == c then j = j + 1 else break end
        end
        j = j + 1
      end
      i = j + 1
    elseif sql:sub(i, i + 1) == "--" then
      i = (sql:find("\n", i, true) or n) + 1
    elseif sql:sub(i, i + 1) == "/*" then
      i = (select(2, sql:find("*/", i + 2, true)) or n) + 1
    elseif c == "$" and sql:sub(i + 1, i + 1):match("[%a_%$]") then
      local tag = sql:match("^%$[%a_]*[%w_]*%$", i)
      if tag then
        local e = select(2, sql:find(tag, i + #tag, true))
        i = (e or n) + 1
      else
        i = i + 1
      end
    elseif c == ";" then
      local s = sql:sub(start, i - 1):match("^%s*(.-)%s*$")
      if s ~= "" then out[#out + 1] = s end
      start, i = i + 1, i + 1
    else
      i = i + 1
    end
  end
  local s = sql:sub(start):match("^%s*(.-)%s*$")
  if s ~= "" then out[#out + 1] = s end
  return out
end

-- A SQL literal for s that pgbench will not mistake for a variable.
local function literal(s)
  if s:find(":[%a_]") then
    return "E'" .. s:gsub("\\", "\\\\"):gsub("'", "''"):gsub(":", "\\x3a") .. "'"
  end
  return "'" .. s:gsub("'", "''") .. "'"
end

-- Rewrites the literals and comments of sql that hold ":name" so pgbench
-- leaves them alone.
local function guard_colons(sql)
  local out, i, n = {}, 1, #sql
  while i <= n do
    local c = sql:sub(i, i)
    local estr = (c == "E" or c == "e") and sql:sub(i + 1, i + 1) == "'" and not sql:sub(i - 1, i - 1):match("[%w_]")
    if c == "'" or estr then
      local q = estr and i + 1 or i
      local j = q + 1
      while j <= n do
        local d = sql:sub(j, j)
        if estr and d == "\\" then
          j = j + 1
        elseif d == "'" then
          if sql:sub(j + 1, j + 1) == "'" then j = j + 1 else break end
        end
        j = j + 1
      end
      local text = sql:sub(i, j)
      if text:find(":[%a_]") then
        if estr then
          text = text:gsub(":", "\\x3a")
        else
          local body = sql:sub(q + 1, j - 1):gsub("''", "'")
          text = literal(body)
        end
      end
      out[#out + 1] = text
      i = j + 1
    elseif sql:sub(i, i + 1) == "--" then
      local e = sql:find("\n", i, true) or n
      out[#out + 1] = sql:sub(i, e):gsub(":", ".")
      i = e + 1
    elseif sql:sub(i, i + 1) == "/*" then
      local e = select(2, sql:find("*/", i + 2, true)) or n
      out[#out + 1] = sql:sub(i, e):gsub(":", ".")
      i = e + 1
    else
      out[#out + 1] = c
      i = i + 1
    end
  end
  return table.concat(out)
end

------------------------------------------------------------ the captures

local records = {}
for line in io.lines(trace_path) do records[#records + 1] = cjson.decode(line) end

local function has_uid(rec, uid)
  for _, p in ipairs(rec.params or {}) do
    if p == uid then return true end
  end
  return false
end

local function starts(rec, word)
  return rec.sql:upper():match("^%s*(%a+)") == word
end

-- The records of one spin: its transaction on the connection that ran it.
local function spin_of(first, last, uid)
  local hit
  for i = first, last do
    if records[i] and has_uid(records[i], uid) then hit = i break end
  end
  if not hit then return nil end
  local link = records[hit].link
  local a, b = hit, hit
  for i = hit, first, -1 do
    local r = records[i]
    if r.link == link and (starts(r, "BEGIN") or starts(r, "START")) then a = i break end
  end
  for i = hit, last do
    local r = records[i]
    if r.link == link and (starts(r, "COMMIT") or starts(r, "ROLLBACK") or starts(r, "END")) then b = i break end
  end
  local out = {}
  for i = first, last do
    local r = records[i]
    if r.link == link and (i >= a and i <= b or has_uid(r, uid)) then out[#out + 1] = r end
  end
  return out
end

-- One spin as units: one statement each, with its pipeline group.
local function units_of(recs)
  local units, group = {}, 0
  for _, r in ipairs(recs) do
    if r.err ~= NULL and r.err ~= nil then die("the captured spin failed: " .. tostring(r.err) .. "\n" .. r.sql) end
    if r.results then -- a simple query: maybe several statements in one round trip
      local stmts = split_statements(r.sql)
      if #stmts ~= #r.results then die("cannot split the simple query: " .. r.sql) end
      group = group + 1
      for k, s in ipairs(stmts) do
        local res = r.results[k]
        units[#units + 1] = { sql = s, params = {}, cols = res.cols or {}, rows = res.rows or {}, group = group }
      end
    else
      if (r.inflight or 0) == 0 then group = group + 1 end
      units[#units + 1] = { sql = r.sql, params = r.params or {}, cols = r.cols or {}, rows = r.rows or {},
                            group = group }
    end
  end
  return units
end

local shapes, order = {}, {}
local captured = 0
for line in io.lines(windows_path) do
  local first, last, uid = line:match("^(%d+)%s+(%d+)%s+(%d+)")
  first, last = tonumber(first), tonumber(last)
  local recs = first and spin_of(first, last, uid)
  if recs then
    captured = captured + 1
    local units = units_of(recs)
    units.uid = uid
    local keys = {}
    for k, u in ipairs(units) do keys[k] = u.sql end
    local key = table.concat(keys, "\0")
    if not shapes[key] then
      shapes[key] = { instances = {} }
      order[#order + 1] = key
    end
    table.insert(shapes[key].instances, units)
  end
end
if captured == 0 then die("no captured spin carries its player's id as a parameter") end

------------------------------------------------------------- translation

local function all(list, pred)
  for _, v in ipairs(list) do
    if not pred(v) then return false end
  end
  return true
end

local function distinct(list)
  local seen = {}
  for _, v in ipairs(list) do
    if seen[v] then return false end
    seen[v] = true
  end
  return true
end

local function valid_name(s) return type(s) == "string" and s:match("^[%a_][%w_]*$") ~= nil end

-- A value that may be a coincidence when it matches a result: short
-- numbers and booleans.
local function trivial(v)
  return v == "t" or v == "f" or (tonumber(v) ~= nil and math.abs(tonumber(v)) < 100)
end

local function translate(shape, index)
  local inst = shape.instances
  local rep = inst[1]
  local exprs, gset, defs, notes = {}, {}, {}, {}
  -- Sources a parameter may come from, latest first: {var, values[m], unit}.
  local function sources_before(i)
    local list = {}
    for j = i - 1, 1, -1 do
      local u = rep[j]
      local single = all(inst, function(units) return #units[j].rows == 1 end)
      if single then
        for c, name in ipairs(u.cols) do
          if valid_name(name) then
            local vals = {}
            for m, units in ipairs(inst) do vals[m] = units[j].rows[1][c] end
            if all(vals, function(v) return v ~= NULL end) then
              list[#list + 1] = { var = "s" .. index .. "r" .. j .. "_" .. name, vals = vals, unit = j }
            end
          end
        end
      end
    end
    local uids = {}
    for m, units in ipairs(inst) do uids[m] = units.uid end
    list[#list + 1] = { var = "uid", vals = uids }
    return list
  end

  for i, u in ipairs(rep) do
    exprs[i] = {}
    for k = 1, #u.params do
      local vals = {}
      for m, units in ipairs(inst) do vals[m] = units[i].params[k] end
      local same = all(vals, function(v) return v == vals[1] end)
      local expr
      if all(vals, function(v) return v == NULL end) then
        expr = "NULL"
      else
        -- Results first: a seed id may equal the user id by chance.
        local sources = sources_before(i)
        for _, s in ipairs(sources) do -- the whole value
          local ok = true
          for m = 1, #inst do ok = ok and vals[m] == s.vals[m] end
          if ok and (not same or s.var == "uid" or not trivial(vals[1])) then
            expr = ":" .. s.var
            if s.unit then gset[s.unit] = true end
            break
          end
        end
        if not expr then -- a text around a source: 'play:' || id
          for _, s in ipairs(sources) do
            if not trivial(s.vals[1]) or not same then
              local pre, post, ok = nil, nil, true
              for m = 1, #inst do
                local v, sv = vals[m], s.vals[m]
                local a, b
                if type(v) == "string" then a, b = v:find(sv, 1, true) end
                if not a or v == sv then ok = false break end
                local p, q = v:sub(1, a - 1), v:sub(b + 1)
                if (p:match("%d$") or q:match("^%d")) and tonumber(sv) then ok = false break end
                if pre == nil then pre, post = p, q end
                ok = ok and p == pre and q == post
              end
              if ok then
                local parts = {}
                if pre ~= "" then parts[#parts + 1] = literal(pre) end
                parts[#parts + 1] = ":" .. s.var
                if post ~= "" then parts[#parts + 1] = literal(post) end
                expr = "(" .. table.concat(parts, " || ") .. ")"
                if s.unit then gset[s.unit] = true end
                break
              end
            end
          end
        end
        if not expr and #inst >= 2 and distinct(vals) and all(vals, function(v)
            return v ~= NULL and (v:match("^%x+$") and #v >= 16 or v:match("^%x+%-%x+%-%x+%-%x+%-%x+$")) end) then
          expr = "md5(random()::text)"
          notes[#notes + 1] = string.format("statement %d $%d: a generated key (unique per transaction)", i, k)
        end
        if not expr then
          if vals[1] == NULL then
            expr = "NULL"
          else
            local name = "s" .. index .. "c" .. i .. "_" .. k
            defs[#defs + 1] = "-D" .. name .. "=" .. vals[1]
            expr = ":" .. name
            if not same then
              notes[#notes + 1] = string.format("statement %d $%d varies between spins, constant here", i, k)
            end
          end
        end
      end
      exprs[i][k] = expr
    end
  end

  local lines = {
    string.format("-- Generated by tools/bench/spinsql.lua from %d captured slot spin(s) of this shape", #inst),
    "-- (the host's own statements, parameters mapped as the header of spinsql.lua says).",
    "-- Needs -D seq=0 -D umin=<first player id> -D nusers=<players> -D stride=<players / clients>.",
  }
  for _, n in ipairs(notes) do lines[#lines + 1] = "-- " .. n end
  lines[#lines + 1] = "\\set seq :seq + 1"
  lines[#lines + 1] = "\\set uid :umin + (:client_id * :stride + :seq) % :nusers"
  -- the host's round trips, then the script's: a \gset statement alone
  local host_groups, g = 0, 0
  for i, u in ipairs(rep) do
    if i == 1 or rep[i - 1].group ~= u.group then host_groups = host_groups + 1 end
  end
  for i, u in ipairs(rep) do
    if i == 1 or rep[i - 1].group ~= u.group or gset[i] or gset[i - 1] then g = g + 1 end
    u.script_group = g
  end
  for _, u in ipairs(rep) do u.group = u.script_group end
  local groups = 0
  for i, u in ipairs(rep) do
    local sql = guard_colons(u.sql):gsub("%$(%d+)", function(d)
      return exprs[i][tonumber(d)] or die("statement " .. i .. " uses $" .. d .. " without a parameter")
    end)
    sql = sql:gsub("%s*;%s*$", "")
    local first = i == 1 or rep[i - 1].group ~= u.group
    local last = i == #rep or rep[i + 1].group ~= u.group
    local piped = not (first and last)
    if first then groups = groups + 1 end
    if piped and first then lines[#lines + 1] = "\\startpipeline" end
    if gset[i] then
      if piped then die("statement " .. i .. " feeds a later one but was pipelined") end
      lines[#lines + 1] = sql .. " \\gset s" .. index .. "r" .. i .. "_"
    else
      lines[#lines + 1] = sql .. ";"
    end
    if piped and last then lines[#lines + 1] = "\\endpipeline" end
  end
  local script = prefix .. index .. ".sql"
  local f = assert(io.open(script, "w"))
  f:write(table.concat(lines, "\n"), "\n")
  f:close()
  f = assert(io.open(prefix .. index .. ".def", "w"))
  for _, d in ipairs(defs) do f:write(d, "\0") end
  f:close()
  return script, #rep, groups, host_groups
end

-- A shape seen fewer than 3 times cannot tell a data flow from a
-- coincidence: it is left out (its weight is that small too).
local emitted = 0
for _, key in ipairs(order) do
  local shape = shapes[key]
  if #shape.instances >= 3 or captured < 10 then
    emitted = emitted + 1
    local script, statements, trips, host_trips = translate(shape, emitted)
    print(script, #shape.instances, statements, trips, host_trips)
  else
    io.stderr:write(string.format("spinsql: a shape of %d statements seen in %d of %d spins is left out\n",
      #shape.instances[1], #shape.instances, captured))
  end
end
if emitted == 0 then die("no shape was captured often enough") end
