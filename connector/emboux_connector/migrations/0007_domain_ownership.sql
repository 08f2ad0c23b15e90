-- Domain ownership before routing (issue 9). A domain changes nothing on the
-- mail server -- it receives no mail, its aliases rewrite nobody's mail, its
-- mailboxes cannot log in, nothing signs or relays as it -- until its owner
-- proved control of it (a DNS TXT token) or the operator vouched for it.
-- Without this, a client could create yahoo.com with a catch-all and receive
-- what every other tenant sends to yahoo.com. See docs/domain-ownership.md.

-- pending:  created with a client token (or by the master asking for proof),
--           waiting for the TXT record `_emboux-verification.<name>` (or on the
--           apex) = 'emboux-verify=<ownership_token>';
-- verified: that record was seen (or, for a subdomain created under a wildcard
--           parent of the same partner, the parent's ownership);
-- vouched:  the operator said so (master token), recorded with who and when.
-- Existing domains were already serving mail: they are grandfathered as
-- vouched. New rows default to pending: a code path that forgets to decide
-- routes nothing.
ALTER TABLE domains
    ADD COLUMN ownership text NOT NULL DEFAULT 'vouched'
        CHECK (ownership IN ('pending', 'verified', 'vouched')),
    -- random per claim: a new row, or a move to another partner, gets a new
    -- one, so a record the previous holder published proves nothing.
    ADD COLUMN ownership_token text,
    -- how: dns_txt, parent, operator, transfer, grandfathered
    ADD COLUMN ownership_method text,
    ADD COLUMN ownership_by text,          -- who: 'master', 'master: <note>', 'dns', ...
    ADD COLUMN ownership_at timestamptz;   -- when it was proved or vouched

UPDATE domains SET ownership_method = 'grandfathered', ownership_by = 'migration 0007',
                   ownership_at = now();

ALTER TABLE domains ALTER COLUMN ownership SET DEFAULT 'pending';

-- The mail server sees owned domains only. Every view keeps its columns (so
-- CREATE OR REPLACE keeps the grants) and drops the rows of pending domains.

-- virtual_mailbox_domains, the relay and the suspension checks: a pending
-- domain is foreign, so mail to it from outside is refused as relay access
-- and a tenant's submission to it relays out like any other.
CREATE OR REPLACE VIEW mailserver.domains AS
    SELECT d.name, d.status = 'suspended' AS suspended
    FROM public.domains d
    WHERE d.ownership <> 'pending';

CREATE OR REPLACE VIEW mailserver.mailbox_addresses AS
    SELECT m.email, d.name AS domain
    FROM public.mailboxes m JOIN public.domains d ON d.id = m.domain_id
    WHERE d.ownership <> 'pending';

-- virtual_mailbox_maps (Postfix asks it only for owned domains already; the
-- filter keeps the view true on its own). Still one index lookup per side.
CREATE OR REPLACE VIEW mailserver.mailbox_emails AS
    SELECT m.email
    FROM public.mailboxes m JOIN public.domains d ON d.id = m.domain_id
    WHERE d.ownership <> 'pending';

-- Dovecot: logins and LMTP's user lookup.
CREATE OR REPLACE VIEW mailserver.mailbox_logins AS
    SELECT m.email, m.local_part, d.name AS domain, m.password_hash, m.quota_mb
    FROM public.mailboxes m JOIN public.domains d ON d.id = m.domain_id
    WHERE m.active AND d.status = 'active' AND d.ownership <> 'pending';

-- virtual_alias_maps applies to every recipient, whatever its domain: an
-- alias of a pending domain would redirect other tenants' outbound mail.
CREATE OR REPLACE VIEW mailserver.aliases AS
    SELECT a.source, a.destination
    FROM public.aliases a JOIN public.domains d ON d.id = a.domain_id
    WHERE d.ownership <> 'pending'
    UNION ALL
    SELECT m.email, m.email
    FROM public.mailboxes m JOIN public.domains d ON d.id = m.domain_id
    WHERE d.ownership <> 'pending';

-- smtpd_sender_login_maps: an alias of a pending domain grants no right to
-- send as its source address.
CREATE OR REPLACE VIEW mailserver.sender_logins AS
    SELECT m.email AS sender, m.email AS login
    FROM public.mailboxes m JOIN public.domains d ON d.id = m.domain_id
    WHERE d.ownership <> 'pending'
    UNION ALL
    SELECT a.source, a.destination
    FROM public.aliases a JOIN public.domains d ON d.id = a.domain_id
    WHERE d.ownership <> 'pending';

-- OpenDKIM signs as an owned domain only.
CREATE OR REPLACE VIEW mailserver.dkim_signing AS
    SELECT d.name AS domain, 'k' || k.id AS key_name
    FROM public.domains d
    LEFT JOIN public.domains p ON p.id = d.parent_id
    JOIN LATERAL (
        SELECT id FROM public.dkim_keys k
        WHERE k.status = 'active' AND k.domain_id IN (d.id, p.id)
        ORDER BY (k.domain_id = d.id) DESC LIMIT 1
    ) k ON true
    WHERE d.provider = 'local' AND d.ownership <> 'pending';

-- A sender address of a pending domain does not pick that domain's relay and
-- credential (the squatter's provider account).
CREATE OR REPLACE VIEW mailserver.sender_relays AS
    SELECT d.name AS domain, c.relayhost, c.username || ':' || c.password AS credential
    FROM public.domains d
    JOIN LATERAL (
        SELECT relayhost, username, password FROM public.relay_credentials c
        WHERE c.provider = d.provider
          AND (c.domain_id = d.id OR c.domain_id = d.parent_id OR c.domain_id IS NULL)
        ORDER BY CASE WHEN c.domain_id = d.id THEN 0 WHEN c.domain_id IS NOT NULL THEN 1 ELSE 2 END
        LIMIT 1
    ) c ON true
    WHERE d.provider IN ('ses', 'mailgun') AND d.ownership <> 'pending';
