-- Least privilege for the mail servers (issue 9). Postfix and Dovecot used to
-- log in as members of one group, emboux_mailserver, that could read every
-- view of schema mailserver: both read all password hashes, all DKIM private
-- keys and the provider relay credentials. Now each server has its own group
-- (created, with the login roles, by scripts/dev/postgres.sh or the operator
-- before the migrations run; see README "Production") and reads only the
-- views its own lookups name:
--
--   emboux_mail_postfix   docker/postfix/pgsql-*.cf: domains (routing and
--                         suspension), mailbox_emails, aliases, sender_logins,
--                         sender_whitelist, sender_relays (the relay
--                         credentials smtp_sasl_password_maps presents);
--                         never a password hash or a DKIM key
--   emboux_mail_dovecot   docker/dovecot/dovecot-sql.conf.ext: mailbox_logins
--                         (login, password hash, quota) and nothing else
--   emboux_mail_opendkim  docker/opendkim/opendkim.conf: dkim_signing,
--                         dkim_keys (the private keys) and nothing else
--
-- mailserver.mailbox_addresses is read by no server any more: nobody gets it.
-- A migration adding a view grants it to the group of the server that reads
-- it (inside a DO block that checks the role exists).

DO $$
BEGIN
    -- The shared group is granted nothing any more; scripts/dev/postgres.sh
    -- then drops it (older migrations grant it only if it exists).
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'emboux_mailserver') THEN
        REVOKE ALL ON ALL TABLES IN SCHEMA mailserver FROM emboux_mailserver;
        REVOKE ALL ON ALL FUNCTIONS IN SCHEMA mailserver FROM emboux_mailserver;
        REVOKE ALL ON SCHEMA mailserver FROM emboux_mailserver;
        -- 0002 made every future view of the schema readable by it
        ALTER DEFAULT PRIVILEGES IN SCHEMA mailserver REVOKE ALL ON TABLES FROM emboux_mailserver;
    END IF;
    -- Functions are executable by PUBLIC by default (PostgreSQL's global
    -- default, which a per-schema default cannot take back): the schema's
    -- are not, nor are the ones this role creates later; a lookup function
    -- is granted to the group that calls it.
    REVOKE ALL ON ALL FUNCTIONS IN SCHEMA mailserver FROM PUBLIC;
    ALTER DEFAULT PRIVILEGES REVOKE EXECUTE ON FUNCTIONS FROM PUBLIC;

    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'emboux_mail_postfix') THEN
        GRANT USAGE ON SCHEMA mailserver TO emboux_mail_postfix;
        GRANT SELECT ON mailserver.domains, mailserver.mailbox_emails, mailserver.aliases,
                        mailserver.sender_logins, mailserver.sender_whitelist,
                        mailserver.sender_relays
            TO emboux_mail_postfix;
        -- Views of later migrations grant themselves; on a database where
        -- one ran before the group roles existed (out of order, in a dev
        -- DB), grant it here.
        IF to_regclass('mailserver.disabled_mailboxes') IS NOT NULL THEN
            GRANT SELECT ON mailserver.disabled_mailboxes TO emboux_mail_postfix;
        END IF;
        IF to_regclass('mailserver.suppressed_external') IS NOT NULL THEN
            GRANT SELECT ON mailserver.suppressed_external TO emboux_mail_postfix;
        END IF;
        IF to_regprocedure('mailserver.forward_targets(text)') IS NOT NULL THEN
            GRANT EXECUTE ON FUNCTION mailserver.forward_targets(text) TO emboux_mail_postfix;
        END IF;
    ELSE
        RAISE NOTICE 'role emboux_mail_postfix missing: Postfix reads nothing (scripts/dev/postgres.sh creates it)';
    END IF;

    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'emboux_mail_dovecot') THEN
        GRANT USAGE ON SCHEMA mailserver TO emboux_mail_dovecot;
        GRANT SELECT ON mailserver.mailbox_logins TO emboux_mail_dovecot;
    ELSE
        RAISE NOTICE 'role emboux_mail_dovecot missing: Dovecot reads nothing (scripts/dev/postgres.sh creates it)';
    END IF;

    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'emboux_mail_opendkim') THEN
        GRANT USAGE ON SCHEMA mailserver TO emboux_mail_opendkim;
        GRANT SELECT ON mailserver.dkim_signing, mailserver.dkim_keys TO emboux_mail_opendkim;
    ELSE
        RAISE NOTICE 'role emboux_mail_opendkim missing: OpenDKIM reads nothing (scripts/dev/postgres.sh creates it)';
    END IF;
END $$;
