-- The read-only surface the mail server queries. Postfix and Dovecot log in
-- as their own roles, members of emboux_mailserver, which may read these
-- views and nothing else: a leaked mail-server password exposes no tokens,
-- no tenants and no change log.

CREATE SCHEMA mailserver;

-- Every domain we host, suspended or not: Postfix must keep accepting
-- responsibility for a suspended domain so that it can refuse its mail with a
-- clear answer instead of "relay access denied".
CREATE VIEW mailserver.domains AS
    SELECT d.name, d.status = 'suspended' AS suspended
    FROM public.domains d;

-- Addresses that exist as mailboxes (for Postfix's recipient validation).
CREATE VIEW mailserver.mailbox_addresses AS
    SELECT m.email, d.name AS domain
    FROM public.mailboxes m JOIN public.domains d ON d.id = m.domain_id;

-- Mailboxes that may log in and receive: active mailbox in an active domain.
CREATE VIEW mailserver.mailbox_logins AS
    SELECT m.email, m.local_part, d.name AS domain, m.password_hash, m.quota_mb
    FROM public.mailboxes m JOIN public.domains d ON d.id = m.domain_id
    WHERE m.active AND d.status = 'active';

-- Alias expansion. Real mailboxes map to themselves so that a catch-all
-- ('@domain') never swallows them: Postfix tries user@domain before @domain.
CREATE VIEW mailserver.aliases AS
    SELECT a.source, a.destination
    FROM public.aliases a
    UNION ALL
    SELECT m.email, m.email
    FROM public.mailboxes m;

DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'emboux_mailserver') THEN
        GRANT USAGE ON SCHEMA mailserver TO emboux_mailserver;
        GRANT SELECT ON ALL TABLES IN SCHEMA mailserver TO emboux_mailserver;
        ALTER DEFAULT PRIVILEGES IN SCHEMA mailserver
            GRANT SELECT ON TABLES TO emboux_mailserver;
    ELSE
        RAISE NOTICE 'role emboux_mailserver missing: mail server roles get no grants';
    END IF;
END $$;
