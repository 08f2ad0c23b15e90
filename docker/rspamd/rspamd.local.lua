-- EmBoux: greylisting runs only for a recipient domain that enabled it
-- (PUT /domains/{name}/spam, greylisting: true). The settings map
-- (rspamd.conf.override) applies `emboux_greylisting = true` for such a
-- domain; without it -- no settings, no map yet -- Rspamd greylists nothing.
local function greylisting_enabled(task)
  return task:lookup_settings('emboux_greylisting') == true
end
rspamd_config:add_condition('GREYLIST_CHECK', greylisting_enabled)
rspamd_config:add_condition('GREYLIST_SAVE', greylisting_enabled)
