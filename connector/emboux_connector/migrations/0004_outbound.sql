-- Outbound control (issue 5): per-domain sending policy, the counters the
-- policy daemon (emboux-policyd) checks and counts at SMTP time, the daily
-- history behind spike detection and warm-up, monthly billing records, the
-- suppression list and the sender-spoofing surface Postfix reads.
-- See docs/outbound.md.

-- --- policy: domain settings (the contract's "Outbound fields") ------------
-- Settings only: the hot counters live in outbound_counters, so that counting
-- a message never touches the domains row (whose trigger feeds delta sync).
ALTER TABLE domains
    -- Who sends the domain's mail out and signs it. 'local' = our own
    -- Postfix/DKIM: nothing to verify with a third party.
    ADD COLUMN provider text NOT NULL DEFAULT 'local'
        CHECK (provider IN ('local', 'ses', 'mailgun')),
    -- Verified with that provider (exposed as `ses_verified`). Written by the
    -- verify/verify-status endpoints and provider webhooks; plain column.
    ADD COLUMN provider_verified boolean NOT NULL DEFAULT false,
    ADD COLUMN provider_verified_at timestamptz,
    ADD COLUMN outbound_tier text NOT NULL DEFAULT 'shared'
        CHECK (outbound_tier IN ('shared', 'dedicated')),
    ADD COLUMN outbound_status text NOT NULL DEFAULT 'active'
        CHECK (outbound_status IN ('active', 'suspended')),
    -- Why outbound was suspended (guillotine, operator), shown to the sender.
    ADD COLUMN outbound_status_reason text,
    -- 0 = unlimited
    ADD COLUMN outbound_daily_limit integer NOT NULL DEFAULT 1000
        CHECK (outbound_daily_limit >= 0),
    ADD COLUMN outbound_monthly_limit integer NOT NULL DEFAULT 20000
        CHECK (outbound_monthly_limit >= 0),
    ADD COLUMN outbound_enforcement text NOT NULL DEFAULT 'hard'
        CHECK (outbound_enforcement IN ('soft', 'hard')),
    -- NULL = no warm-up
    ADD COLUMN warmup_profile text DEFAULT 'standard'
        CHECK (warmup_profile IN ('fast', 'standard', 'conservative')),
    -- 0 = spike detection off
    ADD COLUMN spike_max_multiplier numeric(8, 2) NOT NULL DEFAULT 5
        CHECK (spike_max_multiplier >= 0);

-- --- counters: one row per domain, locked by the daemon's counting batch ----
-- Units are recipients accepted at END-OF-MESSAGE (a message to 3
-- recipients counts 3); bytes are message sizes.
CREATE TABLE outbound_counters (
    domain_id            bigint PRIMARY KEY REFERENCES domains (id) ON DELETE CASCADE,
    sent_today           integer NOT NULL DEFAULT 0,   -- since the last reset-daily
    sent_month           integer NOT NULL DEFAULT 0,   -- since the last reset-monthly
    bytes_month          bigint NOT NULL DEFAULT 0,
    -- soft enforcement: units/bytes accepted beyond a cap, billed
    overage_today        integer NOT NULL DEFAULT 0,
    overage_month        integer NOT NULL DEFAULT 0,
    overage_bytes_month  bigint NOT NULL DEFAULT 0,
    spike_warnings_today integer NOT NULL DEFAULT 0,
    -- hourly throttle: clock hour (UTC) of sent_hour; a stale hour reads as 0
    hour_start           timestamptz NOT NULL DEFAULT date_trunc('hour', now()),
    sent_hour            integer NOT NULL DEFAULT 0,
    -- warm-up: days closed by reset-daily since the domain was created
    warmup_day           integer NOT NULL DEFAULT 0,
    -- Provider feedback for the month (reset by reset-monthly), written by
    -- the webhooks: bounce_rate = bounce_count / sent_month, in percent.
    bounce_count         integer NOT NULL DEFAULT 0,
    complaint_count      integer NOT NULL DEFAULT 0,
    -- Units / bytes leased to policy daemons and not yet confirmed (sum of
    -- outbound_leases): every cap check counts sent + reserved.
    reserved_units       integer NOT NULL DEFAULT 0,
    reserved_bytes       bigint NOT NULL DEFAULT 0,
    updated_at           timestamptz NOT NULL DEFAULT now()
);

-- Quota leased in blocks by each daemon process (holder), served from its
-- memory and confirmed in batches; returned when idle, on shutdown or when
-- another daemon needs it. A lease past expires_at (its daemon died) is
-- counted as sent by the sweeper: never an overshoot, at worst an
-- over-count after a crash.
CREATE TABLE outbound_leases (
    domain_id   bigint NOT NULL REFERENCES domains (id) ON DELETE CASCADE,
    holder      text NOT NULL,
    units       integer NOT NULL,
    bytes       bigint NOT NULL,
    expires_at  timestamptz NOT NULL,
    PRIMARY KEY (domain_id, holder)
);
CREATE INDEX outbound_leases_expiry_idx ON outbound_leases (expires_at);

-- Every domain has its counters row from birth (the daemon only UPDATEs).
CREATE FUNCTION outbound_counters_create() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO outbound_counters (domain_id) VALUES (NEW.id) ON CONFLICT DO NOTHING;
    RETURN NEW;
END $$;
CREATE TRIGGER domains_outbound_counters AFTER INSERT ON domains
    FOR EACH ROW EXECUTE FUNCTION outbound_counters_create();

-- Domains that existed before this migration are not new: no warm-up.
INSERT INTO outbound_counters (domain_id, warmup_day)
    SELECT id, 10000 FROM domains ON CONFLICT DO NOTHING;

-- Messages already counted, by Postfix queue id (+ instance): a policy
-- request repeated by smtpd, or a batch retried, is counted once.
-- Purged after 3 days by reset-daily.
CREATE TABLE outbound_messages (
    msg_key     text PRIMARY KEY,
    domain_id   bigint,
    units       integer NOT NULL,
    bytes       bigint NOT NULL,
    counted_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX outbound_messages_time_idx ON outbound_messages (counted_at);

-- One row per domain and closed day (reset-daily). The last 7 rows of a
-- domain are its rolling average for spike detection. Kept for reporting.
CREATE TABLE outbound_history (
    domain_id  bigint NOT NULL REFERENCES domains (id) ON DELETE CASCADE,
    day        date NOT NULL,
    sent       integer NOT NULL,
    bytes      bigint NOT NULL DEFAULT 0,
    overage    integer NOT NULL DEFAULT 0,
    PRIMARY KEY (domain_id, day)
);

-- Frozen month per domain (reset-monthly), for billing. Survives the domain.
CREATE TABLE outbound_billing (
    domain_id          bigint REFERENCES domains (id) ON DELETE SET NULL,
    domain_name        text NOT NULL,
    partner_ref        text,
    month              date NOT NULL CHECK (extract(day FROM month) = 1),
    sent               integer NOT NULL,
    bytes              bigint NOT NULL,
    overage            integer NOT NULL,
    overage_bytes      bigint NOT NULL,
    bounce_count       integer NOT NULL,
    complaint_count    integer NOT NULL,
    monthly_limit      integer NOT NULL,
    enforcement        text NOT NULL,
    frozen_at          timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (domain_name, month)
);
CREATE INDEX outbound_billing_month_idx ON outbound_billing (month);

-- Idempotence of the reset jobs: one row per closed day / month.
CREATE TABLE outbound_resets (
    kind     text NOT NULL CHECK (kind IN ('daily', 'monthly')),
    period   date NOT NULL,
    domains  integer NOT NULL,
    done_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (kind, period)
);

-- --- suppression: global recipient blocklist ---------------------------------
-- Written by the bounce/complaint webhooks (one row per address and reason;
-- a repeated event is an upsert on (email, reason)); read by the policy daemon,
-- which refuses a suppressed recipient at RCPT with 550 5.1.1.
CREATE TABLE suppression (
    id             bigserial PRIMARY KEY,
    email          text NOT NULL CHECK (email = lower(email)),
    reason         text NOT NULL CHECK (reason IN ('bounce', 'complaint')),
    source_domain  text,            -- our domain whose mail bounced / was reported
    provider       text,            -- 'ses', 'mailgun', 'local', ...
    created_at     timestamptz NOT NULL DEFAULT now(),
    UNIQUE (email, reason)
);
CREATE INDEX suppression_domain_idx ON suppression (source_domain);

-- --- mailboxes: who may send as whom, and may they send at all ---------------
ALTER TABLE mailboxes
    -- Extra sender addresses: 'user@domain', '@domain' (any address of the
    -- domain) or '*' (any). Always lower case, IDNA.
    ADD COLUMN spoofing_whitelist text[] NOT NULL DEFAULT '{}',
    -- Refused by the policy daemon on submission (logins still work).
    ADD COLUMN submission_disabled boolean NOT NULL DEFAULT false;
CREATE INDEX mailboxes_spoofing_idx ON mailboxes USING gin (spoofing_whitelist);

-- --- cache invalidation for the policy daemon (LISTEN emboux_policy) --------
-- Payloads: 'd:<domain>', 'm:<email>', 's:<email>', '*' (everything).
CREATE FUNCTION outbound_notify() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    rec record;
BEGIN
    IF TG_OP = 'DELETE' THEN rec := OLD; ELSE rec := NEW; END IF;
    IF TG_TABLE_NAME = 'domains' THEN
        PERFORM pg_notify('emboux_policy', 'd:' || rec.name);
    ELSIF TG_TABLE_NAME = 'mailboxes' THEN
        PERFORM pg_notify('emboux_policy', 'm:' || rec.email);
    ELSE
        PERFORM pg_notify('emboux_policy', 's:' || rec.email);
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER domains_outbound_notify AFTER UPDATE OR DELETE ON domains
    FOR EACH ROW EXECUTE FUNCTION outbound_notify();
CREATE TRIGGER mailboxes_outbound_notify AFTER UPDATE OR DELETE ON mailboxes
    FOR EACH ROW EXECUTE FUNCTION outbound_notify();
CREATE TRIGGER suppression_outbound_notify AFTER INSERT OR UPDATE OR DELETE ON suppression
    FOR EACH ROW EXECUTE FUNCTION outbound_notify();

-- --- the mail server's read-only surface --------------------------------------
-- smtpd_sender_login_maps: which SASL logins may use an envelope sender.
-- A mailbox as itself, alias destinations as the alias (as before), and
-- mailboxes whose spoofing whitelist names the address, its @domain or '*'.
CREATE VIEW mailserver.sender_logins AS
    SELECT m.email AS sender, m.email AS login FROM public.mailboxes m
    UNION ALL
    SELECT a.source, a.destination FROM public.aliases a;

CREATE VIEW mailserver.sender_whitelist AS
    SELECT m.email AS login, m.spoofing_whitelist AS patterns
    FROM public.mailboxes m
    WHERE m.spoofing_whitelist <> '{}';

DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'emboux_mailserver') THEN
        GRANT SELECT ON mailserver.sender_logins, mailserver.sender_whitelist TO emboux_mailserver;
    END IF;
END $$;
