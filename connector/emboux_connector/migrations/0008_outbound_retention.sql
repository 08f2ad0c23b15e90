-- Counters and sanctions outlive the row (issue 9). Deleting a domain and
-- creating it again used to give it fresh counters (its caps reset), lift
-- its outbound suspension (including the bounce/complaint guillotine's) and
-- drop its daily history (outbound_counters / outbound_history cascade).
-- Now they belong to the domain NAME:
--
-- * counters, history, the plan's limits: to the name within its partner
--   (partner_ref; master-owned domains form one more "partner"). Another
--   tenant creating the same name starts afresh: they are not its numbers;
-- * an outbound suspension: to the name, across partners. A guillotined name
--   re-created by anyone stays suspended until the master lifts it;
-- * billing (outbound_billing) already survived the row (domain_id SET NULL);
--   a re-created domain is linked to its partner's rows again.
--
-- Database triggers do it, so that no code path can forget: BEFORE DELETE on
-- domains saves, BEFORE INSERT restores the domain's own columns (suspension,
-- limits), AFTER INSERT restores counters and history. The reset jobs keep
-- the saved numbers in step through a trigger on outbound_resets: a saved
-- row never brings back yesterday's count or last month's.
-- See docs/outbound.md ("Deleting a domain does not reset it").

-- Saved counters of deleted domains. `counters` is the outbound_counters row
-- as JSON (every column, including ones later migrations add), with the
-- reservations of the policy daemons' leases counted as sent: the leases die
-- with the row and their daemons cannot confirm against it any more, so what
-- they may have served is counted, as the sweeper does for an expired lease.
CREATE TABLE outbound_retained (
    partner_key             text NOT NULL,      -- partner_ref, '' = master-owned
    domain_name             text NOT NULL,
    counters                jsonb NOT NULL,
    outbound_daily_limit    integer NOT NULL,
    outbound_monthly_limit  integer NOT NULL,
    outbound_enforcement    text NOT NULL,
    warmup_profile          text,
    spike_max_multiplier    numeric(8, 2) NOT NULL,
    deleted_at              timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (partner_key, domain_name)
);

-- outbound_history rows of deleted domains (spike detection's average, reporting).
CREATE TABLE outbound_retained_history (
    partner_key  text NOT NULL,
    domain_name  text NOT NULL,
    day          date NOT NULL,
    sent         integer NOT NULL,
    bytes        bigint NOT NULL DEFAULT 0,
    overage      integer NOT NULL DEFAULT 0,
    PRIMARY KEY (partner_key, domain_name, day)
);

-- Outbound suspensions of deleted domains, by name whoever owned it.
CREATE TABLE outbound_sanctions (
    domain_name   text PRIMARY KEY,
    reason        text,
    partner_ref   text,                 -- who owned it when it was deleted
    suspended_at  timestamptz NOT NULL DEFAULT now()
);

-- --- delete: save -----------------------------------------------------------------
CREATE FUNCTION outbound_retain() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    pkey text := coalesce(OLD.partner_ref, '');
    c outbound_counters;
BEGIN
    -- FOR UPDATE: a reset job running now holds the row; wait for it and
    -- save what it left (its trigger below cannot see a row saved later).
    SELECT * INTO c FROM outbound_counters WHERE domain_id = OLD.id FOR UPDATE;
    IF FOUND THEN
        c.sent_today := c.sent_today + c.reserved_units;
        c.sent_month := c.sent_month + c.reserved_units;
        c.bytes_month := c.bytes_month + c.reserved_bytes;
        c.reserved_units := 0;
        c.reserved_bytes := 0;
        INSERT INTO outbound_retained AS r (partner_key, domain_name, counters, outbound_daily_limit,
                                            outbound_monthly_limit, outbound_enforcement,
                                            warmup_profile, spike_max_multiplier)
        VALUES (pkey, OLD.name, to_jsonb(c) - 'domain_id', OLD.outbound_daily_limit,
                OLD.outbound_monthly_limit, OLD.outbound_enforcement, OLD.warmup_profile,
                OLD.spike_max_multiplier)
        ON CONFLICT (partner_key, domain_name) DO UPDATE SET
            counters = EXCLUDED.counters,
            outbound_daily_limit = EXCLUDED.outbound_daily_limit,
            outbound_monthly_limit = EXCLUDED.outbound_monthly_limit,
            outbound_enforcement = EXCLUDED.outbound_enforcement,
            warmup_profile = EXCLUDED.warmup_profile,
            spike_max_multiplier = EXCLUDED.spike_max_multiplier,
            deleted_at = now();
    END IF;
    INSERT INTO outbound_retained_history (partner_key, domain_name, day, sent, bytes, overage)
        SELECT pkey, OLD.name, h.day, h.sent, h.bytes, h.overage
        FROM outbound_history h WHERE h.domain_id = OLD.id
    ON CONFLICT (partner_key, domain_name, day) DO UPDATE SET
        sent = EXCLUDED.sent, bytes = EXCLUDED.bytes, overage = EXCLUDED.overage;
    IF OLD.outbound_status = 'suspended' THEN
        INSERT INTO outbound_sanctions (domain_name, reason, partner_ref)
        VALUES (OLD.name, OLD.outbound_status_reason, OLD.partner_ref)
        ON CONFLICT (domain_name) DO UPDATE SET
            reason = EXCLUDED.reason, partner_ref = EXCLUDED.partner_ref, suspended_at = now();
    END IF;
    RETURN OLD;
END $$;
CREATE TRIGGER domains_outbound_retain BEFORE DELETE ON domains
    FOR EACH ROW EXECUTE FUNCTION outbound_retain();

-- --- create: restore ----------------------------------------------------------------
-- The domain's own columns, before the row is written (no second UPDATE, so
-- no spurious change-log entry): the name's suspension, and the plan's
-- limits saved for this partner.
CREATE FUNCTION outbound_restore_settings() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    s outbound_sanctions;
    r outbound_retained;
BEGIN
    SELECT * INTO r FROM outbound_retained
    WHERE partner_key = coalesce(NEW.partner_ref, '') AND domain_name = NEW.name;
    IF FOUND THEN
        NEW.outbound_daily_limit := r.outbound_daily_limit;
        NEW.outbound_monthly_limit := r.outbound_monthly_limit;
        NEW.outbound_enforcement := r.outbound_enforcement;
        NEW.warmup_profile := r.warmup_profile;
        NEW.spike_max_multiplier := r.spike_max_multiplier;
    END IF;
    -- read only: an INSERT ... ON CONFLICT DO NOTHING that finds the name
    -- taken fires this trigger too; the AFTER INSERT trigger consumes it.
    SELECT * INTO s FROM outbound_sanctions WHERE domain_name = NEW.name;
    IF FOUND THEN
        NEW.outbound_status := 'suspended';
        NEW.outbound_status_reason := s.reason;
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER domains_outbound_restore_settings BEFORE INSERT ON domains
    FOR EACH ROW EXECUTE FUNCTION outbound_restore_settings();

-- Counters and history, once the row exists. Runs after
-- domains_outbound_counters (triggers fire in name order), which created
-- the fresh counters row this replaces.
CREATE FUNCTION outbound_restore_counters() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    pkey text := coalesce(NEW.partner_ref, '');
    r outbound_retained;
    fresh outbound_counters;
BEGIN
    DELETE FROM outbound_retained WHERE partner_key = pkey AND domain_name = NEW.name
        RETURNING * INTO r;
    IF FOUND THEN
        INSERT INTO outbound_counters (domain_id) VALUES (NEW.id) ON CONFLICT DO NOTHING;
        DELETE FROM outbound_counters WHERE domain_id = NEW.id RETURNING * INTO fresh;
        -- the saved values over the fresh row: a column added after the save
        -- keeps its default
        INSERT INTO outbound_counters
            SELECT * FROM jsonb_populate_record(fresh, r.counters - 'domain_id'
                                                - 'reserved_units' - 'reserved_bytes');
    END IF;
    WITH h AS (DELETE FROM outbound_retained_history
               WHERE partner_key = pkey AND domain_name = NEW.name RETURNING *)
    INSERT INTO outbound_history (domain_id, day, sent, bytes, overage)
        SELECT NEW.id, h.day, h.sent, h.bytes, h.overage FROM h
    ON CONFLICT (domain_id, day) DO NOTHING;
    DELETE FROM outbound_sanctions WHERE domain_name = NEW.name;
    UPDATE outbound_billing SET domain_id = NEW.id
    WHERE domain_name = NEW.name AND partner_ref IS NOT DISTINCT FROM NEW.partner_ref
      AND domain_id IS NULL;
    RETURN NULL;
END $$;
CREATE TRIGGER domains_outbound_restore_counters AFTER INSERT ON domains
    FOR EACH ROW EXECUTE FUNCTION outbound_restore_counters();

-- --- the reset jobs: the saved numbers are closed like the live ones ----------
-- reset-daily / reset-monthly (api/outbound.py) record their period in
-- outbound_resets as their last step, in the transaction that reset the live
-- counters (and under LOCK TABLE outbound_resets: one reset at a time).
-- Daily: the day's count joins the saved history (days with traffic only: a
-- long-deleted name does not grow a row a day) and today's counters restart.
-- Warm-up does not advance while a domain does not exist. Monthly: the
-- month's counters are frozen into billing, as for a live domain, then
-- restart. A name another tenant re-created meanwhile already has this
-- month's billing row (one per name and month): the deleted tenant's part is
-- then kept in its saved counters, not lost, and is frozen with next month's.
CREATE FUNCTION outbound_retained_reset() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.kind = 'daily' THEN
        INSERT INTO outbound_retained_history (partner_key, domain_name, day, sent, bytes, overage)
            SELECT partner_key, domain_name, NEW.period, (counters->>'sent_today')::int, 0,
                   (counters->>'overage_today')::int
            FROM outbound_retained
            WHERE (counters->>'sent_today')::int > 0 OR (counters->>'overage_today')::int > 0
        ON CONFLICT (partner_key, domain_name, day) DO NOTHING;
        UPDATE outbound_retained
        SET counters = counters || '{"sent_today": 0, "overage_today": 0, "spike_warnings_today": 0}'
        WHERE (counters->>'sent_today')::int <> 0 OR (counters->>'overage_today')::int <> 0
           OR (counters->>'spike_warnings_today')::int <> 0;
    ELSE
        WITH frozen AS (
            INSERT INTO outbound_billing (domain_id, domain_name, partner_ref, month, sent, bytes,
                                          overage, overage_bytes, bounce_count, complaint_count,
                                          monthly_limit, enforcement)
            SELECT NULL, domain_name, nullif(partner_key, ''), NEW.period,
                   (counters->>'sent_month')::int, (counters->>'bytes_month')::bigint,
                   (counters->>'overage_month')::int, (counters->>'overage_bytes_month')::bigint,
                   (counters->>'bounce_count')::int, (counters->>'complaint_count')::int,
                   outbound_monthly_limit, outbound_enforcement
            FROM outbound_retained
            WHERE (counters->>'sent_month')::int > 0 OR (counters->>'bytes_month')::bigint > 0
               OR (counters->>'bounce_count')::int > 0 OR (counters->>'complaint_count')::int > 0
            ON CONFLICT (domain_name, month) DO NOTHING
            RETURNING domain_name, partner_ref
        )
        UPDATE outbound_retained r
        SET counters = r.counters || '{"sent_month": 0, "bytes_month": 0, "overage_month": 0,
                                       "overage_bytes_month": 0, "bounce_count": 0,
                                       "complaint_count": 0}'
        FROM frozen f
        WHERE f.domain_name = r.domain_name AND coalesce(f.partner_ref, '') = r.partner_key;
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER outbound_resets_retained AFTER INSERT ON outbound_resets
    FOR EACH ROW EXECUTE FUNCTION outbound_retained_reset();
