-- The Rspamd settings map (GET /mailserver/rspamd/settings) changed format:
-- a table of domains read by EmBoux's Lua (docker/rspamd/rspamd.local.lua)
-- instead of rules of Rspamd's settings module (docs/inbound.md). Rspamd
-- asks with If-Modified-Since and keeps its cached copy while the answer is
-- 304, so the change time moves: every Rspamd fetches the new format at its
-- next poll instead of keeping the old one until a domain's settings change.
UPDATE spam_settings_changed SET changed_at = clock_timestamp();
