-- admin.lua - `cchost admin create --site-id ID --nickname NAME --phone PHONE`
-- (password from ADMIN_PASSWORD or standard input, never an argument): lets
-- an operator create the first admin, or promote an existing account.
local host = require "host"
local admins = require "domain.admins"

local function options(args)
  local opts = {}
  local i = 1
  while args[i] do
    local name = args[i]:match("^%-%-([%w-]+)$")
    if not name or args[i + 1] == nil then return nil, "unexpected argument '" .. args[i] .. "'" end
    opts[name] = args[i + 1]
    i = i + 2
  end
  return opts
end

host.tool {
  name = "admin-create",
  run = function(args)
    local o, err = options(args)
    if not o or not o["site-id"] or not o.nickname or not o.phone then
      host.stdout((err or "missing option") .. "\nusage: cchost admin create --site-id ID --nickname NAME "
        .. "--phone PHONE [--reset-password yes] (password from ADMIN_PASSWORD or stdin)\n", true)
      return 2
    end
    local pw = args.input or ""
    local min = host.config.get("PASSWORD_MIN_LENGTH")
    if require("json").utf8_len(pw) < min then
      host.stdout("the password must have at least " .. min .. " characters\n", true)
      return 2
    end
    local user, outcome = admins.ensure {
      site_id = o["site-id"], nickname = o.nickname, phone_number = o.phone, password = pw,
      replace_password = o["reset-password"] == "yes",
    }
    host.stdout(string.format("admin %s: id %d, site_id %s\n", outcome, user.id, user.site_id))
    return 0
  end,
}
