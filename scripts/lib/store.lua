-- store.lua - database calls for domain code, with the contract's failure
-- mapping: a database that cannot answer is a 503 "Service temporarily
-- unavailable" (CONTRACT.md §2, §17), never a 500, and the SQLSTATE goes to
-- the log. A transaction whose COMMIT answer was lost and whose fate the
-- host could not learn (db.tx's 08007) is the one 503 that may have moved
-- money: it says so, so the client retries with its Idempotency-Key (§3).
-- Business conflicts (unique violations…) are left to callers, which check
-- `sqlstate` themselves through db.query.
local host = require "host"
local db = require "host.db"
local errors = require "lib.errors"

local M = {}

local UNAVAILABLE = { ["08000"] = true, ["08001"] = true, ["08003"] = true, ["08006"] = true,
                      ["57P01"] = true, ["57P02"] = true, ["57P03"] = true, ["53300"] = true }

-- Raises the right HTTP error for a failed query.
local function fail(err, sqlstate)
  if sqlstate == "08007" then
    host.log.warn("database commit outcome unknown", { error = tostring(err) })
    errors.raise("OUTCOME_UNKNOWN")
  end
  if sqlstate == nil or UNAVAILABLE[sqlstate] or err == "pool timeout" then
    host.log.warn("database unavailable", { error = tostring(err) })
    errors.raise("SERVICE_UNAVAILABLE")
  end
  error("database error " .. tostring(err), 0)
end

--- check(rows, err, sqlstate) -> rows, err: for callers that inspect a
--- result of db.query themselves; raises like query does on failure.
function M.check(rows, err, sqlstate)
  if rows == nil then fail(err, sqlstate) end
  return rows, err
end

--- query(sql, ...) -> rows, count; raises 503 when the database is out of
--- reach and a plain error (500) for any other failure.
function M.query(sql, ...)
  local rows, count, sqlstate = db.query(sql, ...)
  if rows == nil then fail(count, sqlstate) end
  return rows, count
end

--- one(sql, ...) -> the first row or nil.
function M.one(sql, ...)
  return (M.query(sql, ...))[1]
end

--- defer(sql, ...) -> answer: inside a transaction, queues a statement
--- (db.defer): it goes to the server with the next statement, or the
--- COMMIT, in one round trip; its failure fails the transaction like any
--- other (a 503 when the database is out of reach). answer() -> rows,
--- count, sending the queue first if needed and raising like query.
--- Outside a transaction it runs, and raises, at once.
function M.defer(sql, ...)
  if not db.tx_local() then -- outside a transaction it runs at once: it fails at once too
    local rows, count = M.query(sql, ...)
    return function() return rows, count end
  end
  local answer = db.defer(sql, ...)
  return function()
    local rows, count, sqlstate = answer()
    if rows == nil then fail(count, sqlstate) end
    return rows, count
  end
end

--- tx(fn, opts) -> fn's results; errors raised in fn pass through unchanged
--- (so a named error raised inside a transaction is the answer, nothing written).
function M.tx(fn, opts)
  local results = { db.tx(fn, opts) }
  if results[1] == nil and results[2] ~= nil and type(results[2]) == "string" then fail(results[2], results[3]) end
  return unpack(results)
end

M.after_commit = db.after_commit

return M
