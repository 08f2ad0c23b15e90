-- Sending identity (issue 4): provider-side state of each domain, DKIM keys of
-- the `local` provider, relay credentials Postfix authenticates with, the
-- webhook replay / certificate caches and the feedback log, and the views the
-- mail server (Postfix, OpenDKIM) reads. Builds on 0004 (domains.provider,
-- domains.provider_verified, outbound_counters, suppression).
-- See docs/sending-identity.md.

-- --- provider state: what the provider asked us to publish, and where we are --
CREATE TABLE provider_identities (
    domain_id        bigint PRIMARY KEY REFERENCES domains (id) ON DELETE CASCADE,
    provider         text NOT NULL CHECK (provider IN ('local', 'ses', 'mailgun')),
    -- pending: asked the provider, not verified yet; verified; failed;
    -- inherited: a subdomain registered under its parent's identity.
    state            text NOT NULL DEFAULT 'pending'
                     CHECK (state IN ('pending', 'verified', 'failed', 'inherited')),
    -- The records the provider wants published: [{type, name, value, purpose}]
    dns_records      jsonb NOT NULL DEFAULT '[]',
    -- SES: the _amazonses TXT token and the Easy DKIM CNAME tokens.
    verification_token text,
    dkim_tokens      text[] NOT NULL DEFAULT '{}',
    requested_at     timestamptz NOT NULL DEFAULT now(),
    checked_at       timestamptz,
    verified_at      timestamptz,
    last_error       text
);

-- --- DKIM keys of the `local` provider ----------------------------------------
-- The private key never leaves the server: the API never returns it; the
-- only reader besides the connector is OpenDKIM, through mailserver.dkim_keys.
-- Rotation: a new key becomes 'active' (signs), the old one 'retiring' (still
-- published, so that mail in flight verifies) until retire_after, then
-- 'retired' (unpublished; kept a while for audit, then deleted).
CREATE TABLE dkim_keys (
    id            bigserial PRIMARY KEY,
    domain_id     bigint NOT NULL REFERENCES domains (id) ON DELETE CASCADE,
    selector      text NOT NULL CHECK (selector ~ '^[a-z0-9][a-z0-9-]{0,62}$'),
    bits          integer NOT NULL CHECK (bits >= 1024),
    private_key   text NOT NULL,          -- PKCS#8 PEM
    public_key    text NOT NULL,          -- base64 SubjectPublicKeyInfo: the p= tag
    status        text NOT NULL DEFAULT 'active'
                  CHECK (status IN ('active', 'retiring', 'retired')),
    created_at    timestamptz NOT NULL DEFAULT now(),
    retire_after  timestamptz,
    UNIQUE (domain_id, selector)
);
-- At most one signing key per domain.
CREATE UNIQUE INDEX dkim_keys_one_active ON dkim_keys (domain_id) WHERE status = 'active';

-- --- SMTP relay credentials (Postfix's smtp_sasl_password_maps) ----------------
-- domain_id NULL: the provider's account-wide credential (SES). A Mailgun
-- domain has its own (bootstrapped by PUT /domains/{name}/activate).
CREATE TABLE relay_credentials (
    id          bigserial PRIMARY KEY,
    provider    text NOT NULL CHECK (provider IN ('ses', 'mailgun')),
    domain_id   bigint REFERENCES domains (id) ON DELETE CASCADE,
    relayhost   text NOT NULL,            -- Postfix nexthop, e.g. [smtp.mailgun.org]:587
    username    text NOT NULL,
    password    text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX relay_credentials_domain ON relay_credentials (provider, domain_id)
    WHERE domain_id IS NOT NULL;
CREATE UNIQUE INDEX relay_credentials_account ON relay_credentials (provider)
    WHERE domain_id IS NULL;

-- --- webhooks --------------------------------------------------------------------
-- Mailgun signature tokens already accepted: a token is never accepted twice.
-- Rows older than the timestamp window are useless (the timestamp check
-- refuses them anyway) and are purged by the webhook itself.
CREATE TABLE webhook_tokens (
    provider  text NOT NULL,
    token     text NOT NULL,
    seen_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (provider, token)
);
CREATE INDEX webhook_tokens_time_idx ON webhook_tokens (seen_at);

-- SNS signing certificates by URL (only https://sns.<region>.amazonaws.com/...).
CREATE TABLE sns_certificates (
    url         text PRIMARY KEY,
    pem         text NOT NULL,
    fetched_at  timestamptz NOT NULL DEFAULT now()
);

-- Every accepted provider event, once (provider + event id): a redelivered
-- SNS message or Mailgun event is not counted twice.
CREATE TABLE feedback_events (
    id           bigserial PRIMARY KEY,
    provider     text NOT NULL,
    event_id     text NOT NULL,
    kind         text NOT NULL CHECK (kind IN ('bounce', 'complaint', 'temporary')),
    email        text NOT NULL,
    domain       text,
    received_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (provider, event_id)
);
CREATE INDEX feedback_events_domain_idx ON feedback_events (domain, received_at);

-- Temporary failures: counted, never suppressed.
ALTER TABLE outbound_counters
    ADD COLUMN temp_fail_count integer NOT NULL DEFAULT 0;

-- --- the mail server's surface ------------------------------------------------
-- OpenDKIM SigningTable: sender domain -> key label. A domain signs with its
-- own active key, else (a subdomain registered under its parent) with the
-- parent's. Only `local` domains: SES and Mailgun sign what they relay.
CREATE VIEW mailserver.dkim_signing AS
    SELECT d.name AS domain, 'k' || k.id AS key_name
    FROM public.domains d
    LEFT JOIN public.domains p ON p.id = d.parent_id
    JOIN LATERAL (
        SELECT id FROM public.dkim_keys k
        WHERE k.status = 'active' AND k.domain_id IN (d.id, p.id)
        ORDER BY (k.domain_id = d.id) DESC LIMIT 1
    ) k ON true
    WHERE d.provider = 'local';

-- OpenDKIM KeyTable: key label -> domain (d=), selector (s=), private key.
CREATE VIEW mailserver.dkim_keys AS
    SELECT 'k' || k.id AS key_name, d.name AS domain, k.selector, k.private_key
    FROM public.dkim_keys k JOIN public.domains d ON d.id = k.domain_id
    WHERE k.status = 'active';

-- Postfix sender_dependent_relayhost_maps and smtp_sasl_password_maps (with
-- smtp_sender_dependent_authentication): the relay and login of a sender
-- domain whose provider is SES or Mailgun. The domain's own credential, else
-- its parent's, else the provider's account-wide one. `local` domains have
-- no row: they use the default relayhost (direct delivery in production).
CREATE VIEW mailserver.sender_relays AS
    SELECT d.name AS domain, c.relayhost, c.username || ':' || c.password AS credential
    FROM public.domains d
    JOIN LATERAL (
        SELECT relayhost, username, password FROM public.relay_credentials c
        WHERE c.provider = d.provider
          AND (c.domain_id = d.id OR c.domain_id = d.parent_id OR c.domain_id IS NULL)
        ORDER BY CASE WHEN c.domain_id = d.id THEN 0 WHEN c.domain_id IS NOT NULL THEN 1 ELSE 2 END
        LIMIT 1
    ) c ON true
    WHERE d.provider IN ('ses', 'mailgun');

CREATE INDEX dkim_keys_domain_idx ON dkim_keys (domain_id);
CREATE INDEX relay_credentials_domain_idx ON relay_credentials (domain_id);

DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'emboux_mailserver') THEN
        GRANT SELECT ON mailserver.dkim_signing, mailserver.dkim_keys, mailserver.sender_relays
            TO emboux_mailserver;
    END IF;
END $$;
