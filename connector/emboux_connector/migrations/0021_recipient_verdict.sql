-- The inbound RCPT in one lookup (issue 15, docs/mail-server.md "One RCPT").
-- (Re-runnable: IF NOT EXISTS / OR REPLACE; its second version added the
-- alias and sender-login functions to a dev DB that had the first.)
--
-- Port 25 used to ask, per recipient: the suspension map, the disabled-mailbox
-- map, the forwarding map (three pgsql lookups through proxymap, each planned
-- by PostgreSQL at every call) and Dovecot's quota-status (about 1.5 ms: it
-- re-reads Dovecot's configuration and does a userdb lookup per request).
-- Now one PL/pgSQL call (its plans kept for proxymap's session) answers in
-- the same order, with the same answers, and sends a recipient to
-- quota-status only when the message could make it exceed its quota:
--
--   suspended domain          '450 4.2.1 Domain suspended, try again later'
--   disabled mailbox          '550 5.2.1 Mailbox disabled'
--   forwards outside EmBoux   'emboux_forwarding_mx'  (main.cf: the policy daemon)
--   mailbox with a quota, usage unknown or usage + the largest message
--   Postfix accepts above the quota
--                             'emboux_quota'          (main.cf: quota-status)
--   anything else             no row
--
-- Everything is read at every RCPT: a suspension, a disabled mailbox, a new
-- or lowered quota applies to the very next transaction, on any smtpd.
--
-- The usage is Dovecot's own (its quota_clone plugin writes it after every
-- change of a mailbox: delivery, expunge, IMAP APPEND, doveadm; see
-- dovecot.conf). A stale value only errs one way as long as Dovecot writes:
-- the unknown (no row yet) and the recently grown are sent to quota-status,
-- and Dovecot's LMTP still checks quota at its own RCPT (a temporary refusal,
-- Postfix retries: nothing is lost).

CREATE TABLE IF NOT EXISTS mailserver.quota_usage (
    email     text PRIMARY KEY,
    bytes     bigint NOT NULL DEFAULT 0,
    messages  bigint NOT NULL DEFAULT 0
);

CREATE OR REPLACE FUNCTION mailserver.recipient_verdict(address text, max_message_bytes bigint)
RETURNS text
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog
AS $$
DECLARE
    addr text := lower(address);
    quota integer;
    used bigint;
BEGIN
    IF EXISTS (SELECT 1 FROM mailserver.domains d WHERE d.name = split_part(addr, '@', 2) AND d.suspended) THEN
        RETURN '450 4.2.1 Domain suspended, try again later';
    END IF;
    IF EXISTS (SELECT 1 FROM mailserver.disabled_mailboxes m WHERE m.email = addr) THEN
        RETURN '550 5.2.1 Mailbox disabled';
    END IF;
    IF EXISTS (SELECT 1 FROM mailserver.forward_targets(addr) t WHERE t.external) THEN
        RETURN 'emboux_forwarding_mx';
    END IF;
    SELECT l.quota_mb INTO quota FROM mailserver.mailbox_logins l WHERE l.email = addr;
    IF quota > 0 THEN
        SELECT u.bytes INTO used FROM mailserver.quota_usage u WHERE u.email = addr;
        IF used IS NULL OR used + max_message_bytes > quota::bigint * 1048576 THEN
            RETURN 'emboux_quota';
        END IF;
    END IF;
    RETURN NULL;
END
$$;
REVOKE ALL ON FUNCTION mailserver.recipient_verdict(text, bigint) FROM PUBLIC;

-- The two other lookups of every message, as PL/pgSQL for the same reason
-- (the plan of the views' UNION ALL and joins is kept for proxymap's session:
-- about 0.3 ms of planning per lookup saved), same rows as the views:
--   virtual_alias_maps (pgsql-aliases.cf): smtpd at RCPT, cleanup's expansion
--   smtpd_sender_login_maps (pgsql-sender-logins.cf): submission's MAIL FROM
-- Invoker's rights: Postfix reads exactly the views it read before.
CREATE OR REPLACE FUNCTION mailserver.alias_destinations(address text)
RETURNS SETOF text
LANGUAGE plpgsql STABLE
AS $$
BEGIN
    RETURN QUERY SELECT a.destination FROM mailserver.aliases a WHERE a.source = address;
END
$$;
REVOKE ALL ON FUNCTION mailserver.alias_destinations(text) FROM PUBLIC;

CREATE OR REPLACE FUNCTION mailserver.sender_login_list(p_sender text, p_domain text)
RETURNS text
LANGUAGE plpgsql STABLE
AS $$
BEGIN
    RETURN (SELECT string_agg(DISTINCT x.login, ',') FROM (
        SELECT s.login FROM mailserver.sender_logins s WHERE s.sender = p_sender
        UNION ALL
        SELECT w.login FROM mailserver.sender_whitelist w
        WHERE w.patterns && ARRAY[p_sender, '@' || p_domain, '*']::text[]) x);
END
$$;
REVOKE ALL ON FUNCTION mailserver.sender_login_list(text, text) FROM PUBLIC;

-- Postfix calls the verdict (it reads no quota and no usage itself);
-- Dovecot's dict process writes the usage.
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'emboux_mail_postfix') THEN
        GRANT EXECUTE ON FUNCTION mailserver.recipient_verdict(text, bigint),
                                  mailserver.alias_destinations(text),
                                  mailserver.sender_login_list(text, text) TO emboux_mail_postfix;
    END IF;
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'emboux_mail_dovecot') THEN
        GRANT SELECT, INSERT, UPDATE ON mailserver.quota_usage TO emboux_mail_dovecot;
    END IF;
END $$;
