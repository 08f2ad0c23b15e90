-- Issue 9, smaller side doors.
--
-- 1. A client may lower its domain's outbound limits, never raise them above
--    what the operator (master token) set. The operator's value is the
--    ceiling. NULL = the current limit is the operator's own (never lowered
--    by the client since the operator last set it), so the ceiling is the
--    limit itself; a client lowering the limit stores the ceiling here, so
--    that it may raise it back up to it later. 0 = unlimited, as for limits.
--    NULL is also what a domain re-created after a delete gets (its limits
--    come back through outbound_retained, migration 0008): the ceiling is
--    then the restored limit, never more than the operator allowed.
ALTER TABLE domains
    ADD COLUMN outbound_daily_ceiling integer CHECK (outbound_daily_ceiling >= 0),
    ADD COLUMN outbound_monthly_ceiling integer CHECK (outbound_monthly_ceiling >= 0);

-- 2. A disabled mailbox (mailboxes.active = false: archived in Odoo, PUT
--    /users/{email} {"active": false}) keeps its mail but receives no more:
--    Postfix refuses it at RCPT (pgsql-disabled-mailboxes.cf), instead of
--    accepting it and then failing the LMTP delivery (Dovecot no longer
--    knows the user: mailserver.mailbox_logins lists active mailboxes only).
--    Answered by the partial index below (few rows: the disabled ones).
CREATE VIEW mailserver.disabled_mailboxes AS
    SELECT m.email
    FROM public.mailboxes m
    WHERE NOT m.active;
CREATE INDEX mailboxes_disabled_idx ON mailboxes (email) WHERE NOT active;

-- Read by Postfix only.
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'emboux_mail_postfix') THEN
        GRANT SELECT ON mailserver.disabled_mailboxes TO emboux_mail_postfix;
    END IF;
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'emboux_mailserver') THEN
        GRANT SELECT ON mailserver.disabled_mailboxes TO emboux_mailserver;
    END IF;
END $$;
