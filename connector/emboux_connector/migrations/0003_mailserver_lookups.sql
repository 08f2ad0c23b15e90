-- Narrow lookups for the mail server's hottest maps (issue 3).
--
-- Postfix's recipient validation (virtual_mailbox_maps) only asks "is this a
-- mailbox?". mailserver.mailbox_addresses answers that through a join with
-- domains that PostgreSQL cannot remove; this view is answered by an index
-- only scan of mailboxes_email_key. Mailboxes of suspended domains are
-- listed: suspension is refused earlier, by the per-transaction access check.

CREATE VIEW mailserver.mailbox_emails AS
    SELECT m.email
    FROM public.mailboxes m;

DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'emboux_mailserver') THEN
        GRANT SELECT ON mailserver.mailbox_emails TO emboux_mailserver;
    ELSE
        RAISE NOTICE 'role emboux_mailserver missing: mail server roles get no grants';
    END IF;
END $$;
