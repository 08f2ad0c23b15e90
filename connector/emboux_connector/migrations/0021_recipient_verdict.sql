-- The inbound RCPT in one lookup (issue 15, docs/mail-server.md "One RCPT").
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

CREATE TABLE mailserver.quota_usage (
    email     text PRIMARY KEY,
    bytes     bigint NOT NULL DEFAULT 0,
    messages  bigint NOT NULL DEFAULT 0
);

CREATE FUNCTION mailserver.recipient_verdict(address text, max_message_bytes bigint)
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

-- Postfix calls the verdict (it reads no quota and no usage itself);
-- Dovecot's dict process writes the usage.
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'emboux_mail_postfix') THEN
        GRANT EXECUTE ON FUNCTION mailserver.recipient_verdict(text, bigint) TO emboux_mail_postfix;
    END IF;
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'emboux_mail_dovecot') THEN
        GRANT SELECT, INSERT, UPDATE ON mailserver.quota_usage TO emboux_mail_dovecot;
    END IF;
END $$;
