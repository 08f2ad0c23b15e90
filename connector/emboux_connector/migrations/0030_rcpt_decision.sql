-- Port 25's relay check and recipient verdict in one lookup (issue 15,
-- docs/mail-server.md "One RCPT").
--
-- Per recipient port 25 used to ask proxymap (and PostgreSQL) twice before
-- the alias map: pgsql-relay-domains.cf ('OK' for a plain address of a hosted
-- domain, in smtpd_relay_restrictions) and pgsql-recipient.cf (the verdict of
-- migration 0021, in smtpd_recipient_restrictions), and the verdict's "no
-- row" made the access map probe four more keys (domain, parent domains,
-- user@), each one more proxymap round trip. Now pgsql-recipient.cf is the
-- relay check too and always answers for a plain address of a hosted domain:
--
--   routed local part (@ ! %) or domain not hosted     NULL (no row: left to
--                                                       reject_unauth_destination)
--   suspended / disabled / forwarding / near quota     the verdict, unchanged
--                                                       (mailserver.recipient_verdict)
--   anything else                                      'OK' (hosted: relay allowed)
--
-- Everything is still read at every RCPT: a suspension, a disabled mailbox, a
-- new or lowered quota, a new domain apply to the very next transaction, on
-- any smtpd. Same arguments as the relay map had: Postfix's %u and %d.

CREATE OR REPLACE FUNCTION mailserver.rcpt_decision(local_part text, domain text, max_message_bytes bigint)
RETURNS text
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog
AS $$
BEGIN
    IF local_part ~ '[@!%]' OR NOT EXISTS (SELECT 1 FROM mailserver.domains d WHERE d.name = lower(domain)) THEN
        RETURN NULL;
    END IF;
    RETURN coalesce(mailserver.recipient_verdict(local_part || '@' || domain, max_message_bytes), 'OK');
END
$$;
REVOKE ALL ON FUNCTION mailserver.rcpt_decision(text, text, bigint) FROM PUBLIC;

DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'emboux_mail_postfix') THEN
        GRANT EXECUTE ON FUNCTION mailserver.rcpt_decision(text, text, bigint) TO emboux_mail_postfix;
    END IF;
END $$;

-- OpenDKIM's KeyTable lookup of every signed message (dsn: ... WHERE key_name
-- = 'k<id>') read every active key: the label 'k' || id could use no index
-- (0.5 ms a message with 800 keys in the dev DB, linear in the number of
-- domains). The same label, written with an immutable cast, has one.
CREATE INDEX IF NOT EXISTS dkim_keys_active_key_name ON public.dkim_keys (('k' || id::text)) WHERE status = 'active';
CREATE OR REPLACE VIEW mailserver.dkim_keys AS
    SELECT 'k' || k.id::text AS key_name, d.name AS domain, k.selector, k.private_key
    FROM public.dkim_keys k JOIN public.domains d ON d.id = k.domain_id
    WHERE k.status = 'active';
