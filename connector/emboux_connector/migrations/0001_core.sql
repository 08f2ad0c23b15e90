-- Core schema of the EmBoux mail DB: tenants, API keys, domains, mailboxes,
-- aliases and the change log behind delta sync.
-- Owned by the connector's role; the mail server never reads these tables
-- directly (see 0002_mailserver_surface.sql).

CREATE TABLE partners (
    partner_ref          text PRIMARY KEY
                         CHECK (partner_ref ~ '^[A-Za-z0-9][A-Za-z0-9._:@-]{0,127}$'),
    -- Quotas are the partner's, shared by all of its keys. 0 = unlimited.
    domains_allowed      integer NOT NULL DEFAULT 0 CHECK (domains_allowed >= 0),
    mailboxes_per_domain integer NOT NULL DEFAULT 1 CHECK (mailboxes_per_domain >= 0),
    aliases_per_mailbox  integer NOT NULL DEFAULT 5 CHECK (aliases_per_mailbox >= 0),
    -- Maintained by the API inside the creating transaction and reconciled
    -- with count(domains) at every connector start.
    domains_used         integer NOT NULL DEFAULT 0,
    created_at           timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE api_keys (
    id            bigserial PRIMARY KEY,
    -- sha256 of the token: tokens are long random strings, so a fast hash is
    -- enough and lets us find the key by an index lookup.
    token_hash    text NOT NULL UNIQUE,
    token_hint    text NOT NULL,           -- first characters, to tell keys apart
    partner_ref   text NOT NULL REFERENCES partners (partner_ref),
    active        boolean NOT NULL DEFAULT true,
    expires_at    timestamptz,
    created_at    timestamptz NOT NULL DEFAULT now(),
    last_used_at  timestamptz
);
CREATE INDEX api_keys_partner_idx ON api_keys (partner_ref);

CREATE TABLE domains (
    id                   bigserial PRIMARY KEY,
    -- lower-case IDNA (punycode) form, validated by the API
    name                 text NOT NULL UNIQUE
                         CHECK (name = lower(name) AND length(name) BETWEEN 1 AND 253),
    partner_ref          text REFERENCES partners (partner_ref),   -- NULL: master-owned
    status               text NOT NULL DEFAULT 'active'
                         CHECK (status IN ('active', 'suspended')),
    parent_id            bigint REFERENCES domains (id) ON DELETE SET NULL,
    wildcard             boolean NOT NULL DEFAULT false,
    retention_days       integer NOT NULL DEFAULT 0 CHECK (retention_days >= 0),
    transfer_monthly_mb  integer NOT NULL DEFAULT 0 CHECK (transfer_monthly_mb >= 0),
    created_at           timestamptz NOT NULL DEFAULT now(),
    updated_at           timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX domains_partner_idx ON domains (partner_ref);
CREATE INDEX domains_parent_idx ON domains (parent_id);

CREATE TABLE mailboxes (
    id             bigserial PRIMARY KEY,
    domain_id      bigint NOT NULL REFERENCES domains (id) ON DELETE CASCADE,
    email          text NOT NULL UNIQUE CHECK (email = lower(email)),
    local_part     text NOT NULL,
    -- Dovecot-verifiable crypt hash with its scheme prefix, e.g. {SHA512-CRYPT}$6$...
    password_hash  text NOT NULL,
    quota_mb       integer NOT NULL DEFAULT 0 CHECK (quota_mb >= 0),   -- 0 = unlimited
    active         boolean NOT NULL DEFAULT true,
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX mailboxes_domain_idx ON mailboxes (domain_id);

-- One row per (source, destination). A catch-all has source '@domain'.
CREATE TABLE aliases (
    id           bigserial PRIMARY KEY,
    domain_id    bigint NOT NULL REFERENCES domains (id) ON DELETE CASCADE,
    source       text NOT NULL CHECK (source = lower(source)),
    destination  text NOT NULL CHECK (destination = lower(destination)),
    created_at   timestamptz NOT NULL DEFAULT now(),
    UNIQUE (source, destination)
);
CREATE INDEX aliases_domain_idx ON aliases (domain_id);

-- Change log for delta sync (GET /api-keys/{token}/usage?since=). Written by
-- triggers so that no code path can change a resource without a trace.
CREATE TABLE changes (
    id           bigserial PRIMARY KEY,
    partner_ref  text,                       -- NULL: master-owned resource
    resource     text NOT NULL CHECK (resource IN ('domain', 'mailbox', 'alias')),
    key          text NOT NULL,              -- domain name, email or alias source
    action       text NOT NULL CHECK (action IN ('created', 'updated', 'deleted')),
    changed_at   timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX changes_partner_time_idx ON changes (partner_ref, changed_at);
CREATE INDEX changes_time_idx ON changes (changed_at);

CREATE FUNCTION log_domain_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        INSERT INTO changes (partner_ref, resource, key, action)
        VALUES (OLD.partner_ref, 'domain', OLD.name, 'deleted');
        RETURN OLD;
    ELSIF TG_OP = 'INSERT' THEN
        INSERT INTO changes (partner_ref, resource, key, action)
        VALUES (NEW.partner_ref, 'domain', NEW.name, 'created');
    ELSE
        IF OLD.partner_ref IS DISTINCT FROM NEW.partner_ref THEN
            -- an owner transfer: gone for the old partner, new for the new one
            INSERT INTO changes (partner_ref, resource, key, action)
            VALUES (OLD.partner_ref, 'domain', OLD.name, 'deleted'),
                   (NEW.partner_ref, 'domain', NEW.name, 'created');
        ELSE
            INSERT INTO changes (partner_ref, resource, key, action)
            VALUES (NEW.partner_ref, 'domain', NEW.name, 'updated');
        END IF;
    END IF;
    RETURN NEW;
END $$;

CREATE TRIGGER domains_changes AFTER INSERT OR UPDATE OR DELETE ON domains
    FOR EACH ROW EXECUTE FUNCTION log_domain_change();

-- Children are logged under their domain's partner. The API deletes children
-- explicitly before a domain, so the domain row is still visible here.
CREATE FUNCTION log_child_change() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    rec    record;
    verb   text;
    owner  text;
BEGIN
    IF TG_OP = 'DELETE' THEN rec := OLD; verb := 'deleted';
    ELSIF TG_OP = 'INSERT' THEN rec := NEW; verb := 'created';
    ELSE rec := NEW; verb := 'updated';
    END IF;
    SELECT partner_ref INTO owner FROM domains WHERE id = rec.domain_id;
    IF TG_TABLE_NAME = 'mailboxes' THEN
        INSERT INTO changes (partner_ref, resource, key, action)
        VALUES (owner, 'mailbox', rec.email, verb);
    ELSE
        INSERT INTO changes (partner_ref, resource, key, action)
        VALUES (owner, 'alias', rec.source, verb);
    END IF;
    RETURN rec;
END $$;

CREATE TRIGGER mailboxes_changes AFTER INSERT OR UPDATE OR DELETE ON mailboxes
    FOR EACH ROW EXECUTE FUNCTION log_child_change();
CREATE TRIGGER aliases_changes AFTER INSERT OR UPDATE OR DELETE ON aliases
    FOR EACH ROW EXECUTE FUNCTION log_child_change();
