--[[ settings.lua - `cchost config --markdown`: every setting of
config/settings.lua as a Markdown table (name, type and unit, production
default, development default, description), the table the README shows
between its `settings:begin` and `settings:end` markers. A spec fails when
the README's copy differs, so the two never drift apart.
]]
local host = require "host"
local settings = require "config.settings"

-- A value as the table shows it: strings quoted, empty strings as "".
local function shown(v)
  if v == nil then return "" end
  if type(v) == "string" then return v == "" and '`""`' or "`" .. v .. "`" end
  if type(v) == "number" and v == math.floor(v) then return "`" .. string.format("%d", v) .. "`" end
  return "`" .. tostring(v) .. "`"
end

host.tool {
  name = "config-markdown",
  description = "every setting as a Markdown table (README)",
  run = function()
    local out = { "| setting | type | default | development | description |", "|---|---|---|---|---|" }
    for _, s in ipairs(settings) do
      local kind = s.type .. (s.unit and " (" .. s.unit .. ")" or "")
      if s.values then kind = kind .. ": " .. table.concat(s.values, ", ") end
      local description = (s.description or ""):gsub("|", "\\|") .. (s.secret and " (secret)" or "")
      out[#out + 1] = string.format("| `%s` | %s | %s | %s | %s |", s.name, kind, shown(s.default),
        s.development ~= nil and shown(s.development) or "", description)
    end
    host.stdout(table.concat(out, "\n") .. "\n")
    return 0
  end,
}
