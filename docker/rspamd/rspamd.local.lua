-- EmBoux: each domain's spam settings (PUT /domains/{name}/spam: thresholds,
-- greylisting, allow and block lists; connector/emboux_connector/spam.py,
-- docs/inbound.md), from the connector's map (GET /mailserver/rspamd/settings),
-- polled every map_watch_interval (local.d/options.inc) with
-- If-Modified-Since: an API change applies within seconds; an unreachable
-- connector or a map that does not parse leaves the last one in force.
--
-- Kept as a table keyed by domain: one lookup per recipient domain a message.
-- (As rules of Rspamd's settings module, one to four a domain tried one after
-- the other on every message, they cost a 4 KB scan 8-9 ms of CPU against 6
-- with this table at 356 rules, growing with every domain: docs/benchmarks.md.)
-- What is applied, highest first: an authenticated user's mail (submission)
-- the outbound settings; a sender (envelope or From:) on the block list of a
-- recipient's domain; an envelope sender on its allow list; the first
-- recipient domain with settings. Nothing found: Rspamd's own thresholds
-- (local.d/actions.conf) and no greylisting.
local rspamd_logger = require "rspamd_logger"
local lua_util = require "lua_util"
local ucl = require "ucl"

local settings_url = '{{RSPAMD_SETTINGS_URL}}'
local emboux = {domains = {}}

local function sender_set(list)
  local set = {}
  for _, entry in ipairs(list or {}) do
    set[tostring(entry):lower()] = true
  end
  return set
end

local function load_settings(data)
  local parser = ucl.parser()
  local ok, err = parser:parse_string(tostring(data))
  local obj = ok and parser:get_object()
  if type(obj) ~= 'table' or type(obj.domains) ~= 'table' then
    rspamd_logger.errx(rspamd_config, 'EmBoux spam settings map not loaded, the previous one stays: %s',
        err or 'no "domains"')
    return
  end
  local domains, n = {}, 0
  for name, d in pairs(obj.domains) do
    domains[tostring(name):lower()] = {apply = d.apply, apply_allow = d.apply_allow,
      apply_block = d.apply_block, allow = sender_set(d.allow_senders), block = sender_set(d.block_senders)}
    n = n + 1
  end
  emboux = {domains = domains, outbound = obj.outbound}
  rspamd_logger.infox(rspamd_config, 'EmBoux spam settings map: %s domains', n)
end

if settings_url ~= '' then
  rspamd_config:add_map({
    url = settings_url,
    type = 'callback',
    description = 'EmBoux per-domain spam settings',
    callback = load_settings,
  })
end

local function listed(set, addrs)
  for _, a in ipairs(addrs or {}) do
    if (a.addr and set[a.addr:lower()]) or (a.domain and a.domain ~= '' and set['@' .. a.domain:lower()]) then
      return true
    end
  end
  return false
end

-- What Rspamd's settings module did with a matched rule's `apply`.
local function apply_settings(task, to_apply)
  task:set_settings(to_apply)
  for symbol, score in pairs(to_apply.symbols or {}) do
    task:insert_result(symbol, score)
  end
end

rspamd_config:register_symbol({
  name = 'EMBOUX_SETTINGS',
  type = 'prefilter',
  priority = lua_util.symbols_priorities.top,
  flags = 'empty,nostat,ignore_passthrough',
  callback = function(task)
    local s = emboux
    if task:get_user() then
      if s.outbound then apply_settings(task, s.outbound) end
      return
    end
    local found = {}
    for _, r in ipairs(task:get_recipients('smtp') or {}) do
      local d = r.domain and s.domains[r.domain:lower()]
      if d then found[#found + 1] = d end
    end
    if #found == 0 then return end
    local smtp_from, mime_from = task:get_from('smtp'), task:get_from('mime')
    for _, d in ipairs(found) do
      if d.apply_block and (listed(d.block, smtp_from) or listed(d.block, mime_from)) then
        return apply_settings(task, d.apply_block)
      end
    end
    for _, d in ipairs(found) do
      if d.apply_allow and listed(d.allow, smtp_from) then
        return apply_settings(task, d.apply_allow)
      end
    end
    apply_settings(task, found[1].apply)
  end,
})

-- Greylisting runs only for a recipient domain that enabled it (the map's
-- `emboux_greylisting`); without it -- no settings, no map yet -- Rspamd
-- greylists nothing.
local function greylisting_enabled(task)
  return task:lookup_settings('emboux_greylisting') == true
end
rspamd_config:add_condition('GREYLIST_CHECK', greylisting_enabled)
rspamd_config:add_condition('GREYLIST_SAVE', greylisting_enabled)

-- Outbound scanning (submission, docs/inbound.md): a message of an
-- authenticated user that Rspamd refuses is reported to the connector, which
-- counts it for the user's domain and lets the guillotine decide (the same
-- one bounces and complaints feed: GUILLOTINE_SPAM_LIMIT refusals in the
-- month suspend the domain's outbound). The refusal (5xx) stands whatever
-- the report's fate; a connector that does not answer delays it 10 s at most.
local report_url = '{{RSPAMD_REPORT_URL}}'
if report_url ~= '' then
  local rspamd_http = require "rspamd_http"
  -- (GTUBE skips every rule, this one too: only scored refusals are reported.)
  rspamd_config:register_symbol({
    name = 'EMBOUX_OUTBOUND_SPAM_REPORT',
    type = 'idempotent',
    flags = 'empty,ignore_passthrough',
    callback = function(task)
      local user = task:get_user()
      if not user or task:get_metric_action() ~= 'reject' then return end
      local body = ucl.to_format({
        user = user,
        score = task:get_metric_score()[1],
        message_id = task:get_message_id() or '',
      }, 'json-compact')
      rspamd_http.request({
        task = task,
        url = report_url,
        body = body,
        method = 'post',
        mime_type = 'application/json',
        timeout = 10,
        callback = function(err, code)
          if err or code ~= 200 then
            rspamd_logger.errx(task, 'outbound spam report for %s failed: %s %s', user, err, code)
          end
        end,
      })
    end,
  })
end
