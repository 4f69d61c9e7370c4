-- admins.lua - creating the first admins without an admin: the shell command
-- `cchost admin create` and BOOTSTRAP_ADMIN_* at start (CONTRACT.md §17).
-- Both create the account with the normal signup rules (wallet, ledger,
-- actions) or promote an existing site_id, under one advisory lock so two
-- hosts starting together never create two.
local host = require "host"
local store = require "lib.store"
local auth = require "domain.auth"
local accounts = require "domain.accounts"
local events_log = require "domain.events_log"

local M = {}

local LOCK = "casino-club-bootstrap-admin"

--- ensure(fields) -> user, "created" | "promoted" | "exists". fields:
--- site_id, nickname, phone_number, password. An existing site_id is made
--- admin (its password is then left alone unless replace_password is set).
function M.ensure(f)
  local user, outcome = store.tx(function()
    store.query("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))", LOCK)
    local existing = auth.find_user_by_site_id(f.site_id)
    if existing then
      if existing.is_admin and not f.replace_password then return existing, "exists" end
      if f.replace_password then
        store.query("UPDATE users SET password_hash = $2, updated_at = now() WHERE id = $1", existing.id,
          auth.hash_password(f.password))
      end
      store.query("UPDATE users SET is_admin = true, updated_at = now() WHERE id = $1", existing.id)
      events_log.audit(nil, "user.update", "user", existing.id, { is_admin = true, by = "shell" }, nil)
      return existing, existing.is_admin and "exists" or "promoted"
    end
    local created = accounts.create_user {
      site_id = f.site_id, nickname = f.nickname, phone_number = f.phone_number,
      password = f.password, is_admin = true,
    }
    events_log.audit(nil, "user.update", "user", created.id, { is_admin = true, by = "shell", created = true }, nil)
    return created, "created"
  end)
  auth.invalidate_user(user.id)
  return user, outcome
end

--- bootstrap(): BOOTSTRAP_ADMIN_SITE_ID/PASSWORD set and no admin exists →
--- one is created. Runs in worker 0 of every host at start.
function M.bootstrap()
  local site_id, password = host.config.get("BOOTSTRAP_ADMIN_SITE_ID"), host.config.get("BOOTSTRAP_ADMIN_PASSWORD")
  if site_id == "" or password == "" then return end
  if store.one("SELECT 1 AS x FROM users WHERE is_admin LIMIT 1") then return end
  local nickname = host.config.get("BOOTSTRAP_ADMIN_NICKNAME")
  local user, outcome = M.ensure {
    site_id = site_id, password = password,
    nickname = nickname ~= "" and nickname or site_id,
    phone_number = host.config.get("BOOTSTRAP_ADMIN_PHONE"),
  }
  host.log.info("bootstrap admin " .. outcome, { user_id = user.id, site_id = site_id })
end

host.on_start(function(worker)
  if worker == 0 then M.bootstrap() end
end)

return M
