-- A vacation reply also answers mail sent to the mailbox's aliases
-- (docs/inbound.md "Vacation"). Pigeonhole replies only when the message's
-- headers name one of the user's addresses (RFC 5230), and Postfix hands
-- Dovecot the mailbox, not the alias the sender wrote, so mail to sales@
-- (an alias of the mailbox) was delivered without a reply. The script now
-- lists those aliases in `vacation :addresses`, spliced in here at each
-- delivery rather than written into the stored script at PUT time, so that
-- an alias added or removed later counts at the next message. The reply
-- then comes from the alias the sender wrote (RFC 5230's default).
--
-- Which aliases: those whose destination is the mailbox itself (one hop;
-- a chain through another alias is not followed), not catch-alls (an
-- address list cannot name "any address of the domain"), of a domain that
-- is not pending, and of the mailbox's own tenant only: another tenant's
-- alias pointing here must not make this mailbox's text go out From that
-- tenant's address.
--
-- The stored script's action line starts with "vacation :days" (vacation.py:
-- the first such line; the body comes after it). script_id is the md5 of the
-- spliced script, so a changed alias list is a new script for Pigeonhole's
-- cache too.
CREATE INDEX aliases_destination_idx ON aliases (destination);

CREATE OR REPLACE VIEW mailserver.vacation_scripts AS
SELECT s.email,
       'vacation'::text AS script_name,
       md5(s.script) AS script_id,
       s.script
FROM (
    SELECT m.email,
           CASE WHEN own.addresses IS NULL THEN v.sieve_script
                ELSE regexp_replace(v.sieve_script, '^vacation :days',
                                    'vacation :addresses [' || own.addresses || '] :days', 'n')
           END AS script
    FROM mailbox_vacations v
    JOIN mailboxes m ON m.id = v.mailbox_id
    JOIN domains md ON md.id = m.domain_id
    LEFT JOIN LATERAL (
        -- Sieve strings: backslash and double quote escaped (an address
        -- with either is refused by the API anyway)
        SELECT string_agg('"' || replace(replace(a.source, '\', '\\'), '"', '\"') || '"', ', '
                          ORDER BY a.source) AS addresses
        FROM aliases a
        JOIN domains ad ON ad.id = a.domain_id
        WHERE a.destination = m.email
          AND a.source <> m.email
          AND a.source NOT LIKE '@%'
          AND ad.ownership <> 'pending'
          AND ad.partner_ref IS NOT DISTINCT FROM md.partner_ref
    ) own ON true
    WHERE v.enabled AND v.sieve_script IS NOT NULL AND m.active
) s;
