-- EmBoux: greylisting runs only for a recipient domain that enabled it
-- (PUT /domains/{name}/spam, greylisting: true). The settings map
-- (rspamd.conf.override) applies `emboux_greylisting = true` for such a
-- domain; without it -- no settings, no map yet -- Rspamd greylists nothing.
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
  local rspamd_logger = require "rspamd_logger"
  local ucl = require "ucl"
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
