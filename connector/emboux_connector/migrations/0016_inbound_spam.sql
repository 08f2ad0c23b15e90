-- Inbound protection (issue 17, docs/inbound.md): a domain's spam settings,
-- served to Rspamd as its settings map (GET /mailserver/rspamd/settings);
-- a domain without a row has the defaults (junk 6, reject 15, no
-- greylisting, empty lists).
CREATE TABLE domain_spam_settings (
    domain_id      bigint PRIMARY KEY REFERENCES domains (id) ON DELETE CASCADE,
    junk_score     numeric(7,2) NOT NULL DEFAULT 6,
    reject_score   numeric(7,2) NOT NULL DEFAULT 15,
    greylisting    boolean NOT NULL DEFAULT false,
    -- lower-case 'user@example.com' or '@example.com' (a whole domain)
    allow_senders  text[] NOT NULL DEFAULT '{}',
    block_senders  text[] NOT NULL DEFAULT '{}',
    updated_at     timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT spam_junk_below_reject CHECK (junk_score < reject_score)
);

-- When the map last changed (any insert, update or delete, cascades from a
-- deleted domain included): its Last-Modified, so Rspamd's poll costs a
-- 304 while nothing changed.
CREATE TABLE spam_settings_changed (
    id          boolean PRIMARY KEY DEFAULT true CHECK (id),
    changed_at  timestamptz NOT NULL DEFAULT now()
);
INSERT INTO spam_settings_changed DEFAULT VALUES;

CREATE FUNCTION spam_settings_touch() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE spam_settings_changed SET changed_at = clock_timestamp();
    RETURN NULL;
END $$;
CREATE TRIGGER domain_spam_settings_touch AFTER INSERT OR UPDATE OR DELETE ON domain_spam_settings
    FOR EACH STATEMENT EXECUTE FUNCTION spam_settings_touch();

-- Outbound scanning: messages of the domain's authenticated users that
-- Rspamd refused as spam this month (the guillotine counts them with the
-- bounces and complaints, feedback.py).
ALTER TABLE outbound_counters ADD COLUMN spam_count integer NOT NULL DEFAULT 0;
