-- Port 25's RCPT in one proxymap round trip (issue 15, docs/mail-server.md
-- "One RCPT"): the decision of migration 0030 also answers "unlisted".
--
-- After the decision's 'OK', port 25 still ran reject_unlisted_recipient
-- (smtpd_reject_unlisted_recipient = yes): the alias map for user@domain,
-- and for an unknown user the catch-all '@domain' and the mailbox map twice
-- (user@domain, @domain), each a proxymap round trip and a DB query -- two
-- round trips for a mailbox, five for an unknown user (strace of smtpd).
-- Now the decision answers it from the same views those maps read
-- (pgsql-aliases.cf: mailserver.aliases, whose rows include every mailbox
-- mapped to itself; pgsql-mailboxes.cf: mailserver.mailbox_emails), with
-- Postfix's rules for a virtual mailbox domain:
--
--   listed = an alias source user@domain, or a mailbox user@domain,
--            or a catch-all '@domain' (Postfix tries it after user@domain)
--   not listed: '550 5.1.1 User unknown in virtual mailbox table'
--            (Postfix's own answer: unknown_virtual_mailbox_reject_code 550;
--            smtpd prefixes '<addr>: Recipient address rejected: ')
--
-- Unchanged before it: a routed local part (@ ! %) or a domain not hosted
-- get no row (reject_unauth_destination decides); a suspended domain (450),
-- a disabled mailbox (550 5.2.1) and the restriction classes (forwarding,
-- near quota: only ever listed addresses) come first, as before. SRS bounce
-- addresses and the report addresses are answered by the maps before this
-- one in smtpd_relay_restrictions. Case: Postfix folds the key to lower case
-- before the lookup (as for the alias and mailbox maps); lower() again here
-- is what recipient_verdict does. Nothing is cached: a new or deleted alias,
-- mailbox or catch-all applies at the next RCPT.

CREATE OR REPLACE FUNCTION mailserver.rcpt_decision(local_part text, domain text, max_message_bytes bigint)
RETURNS text
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog
AS $$
DECLARE
    dom  text := lower(domain);
    addr text := lower(local_part) || '@' || lower(domain);
    verdict text;
BEGIN
    IF local_part ~ '[@!%]' OR NOT EXISTS (SELECT 1 FROM mailserver.domains d WHERE d.name = dom) THEN
        RETURN NULL;
    END IF;
    verdict := mailserver.recipient_verdict(local_part || '@' || domain, max_message_bytes);
    IF verdict IS NOT NULL THEN
        RETURN verdict;
    END IF;
    IF EXISTS (SELECT 1 FROM mailserver.aliases a WHERE a.source = addr)
       OR EXISTS (SELECT 1 FROM mailserver.mailbox_emails m WHERE m.email = addr)
       OR EXISTS (SELECT 1 FROM mailserver.aliases a WHERE a.source = '@' || dom) THEN
        RETURN 'OK';
    END IF;
    RETURN '550 5.1.1 User unknown in virtual mailbox table';
END
$$;
REVOKE ALL ON FUNCTION mailserver.rcpt_decision(text, text, bigint) FROM PUBLIC;

DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'emboux_mail_postfix') THEN
        GRANT EXECUTE ON FUNCTION mailserver.rcpt_decision(text, text, bigint) TO emboux_mail_postfix;
    END IF;
END $$;
