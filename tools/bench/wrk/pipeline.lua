-- pipeline.lua - wrk script: writes the URL's request `depth` times at once
-- (default 4) and reads as many answers: HTTP/1.1 pipelining, as the
-- issue's small-route figures are measured.
-- Usage: wrk ... -s tools/bench/wrk/pipeline.lua URL -- [depth]
local batch

function init(args)
  local depth = tonumber(args[1]) or 4
  local one = wrk.format(nil)
  batch = string.rep(one, depth)
end

function request()
  return batch
end
