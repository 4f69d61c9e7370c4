-- bench_db.lua - the fixture route POST /bench/db/update (see
-- spec/fixtures/scripts/routes/db.lua), for a baseline commit whose
-- fixtures predate it: tools/bench.sh adds this file to a copy of the
-- baseline's fixture scripts only when they lack the route.
local host = require "host"
local db = require "host.db"

host.route {
  method = "POST", path = "/bench/db/update", operation_id = "fixture_bench_db_update",
  moves_money = false,
  query = { { name = "id", type = "integer", required = true, ge = 1, example = 1 } },
  handler = function(req)
    local rows, err = db.query("UPDATE bench_rows SET n = n + 1 WHERE id = $1 RETURNING n", req.query.id)
    if rows == nil then host.error(503, err) end
    if not rows[1] then return 404, { detail = "No bench row " .. req.query.id } end
    return { n = rows[1].n }
  end,
}
