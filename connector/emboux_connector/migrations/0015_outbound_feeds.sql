-- Incremental feeds for the back office (issue 11): per-domain outbound
-- counters, the daily history and the suppression list, read page by page
-- (GET /outbound/feed/counters, /outbound/feed/history, /outbound/feed/suppression;
-- api/feeds.py), so that 10,000 domains cost one request per page and a
-- second pull with nothing new returns nothing.
--
-- Each row carries `feed_xid`: the (top-level) id of the transaction that last
-- changed what the feed shows. A reader pages by (feed_xid, key) and stops
-- below the oldest transaction still writing in this database: transaction
-- ids are assigned before commit, so a row stamped below that horizon can no
-- longer appear later (api/feeds.py says why). Rows that existed before this
-- migration carry 0: the first pull returns them.

CREATE FUNCTION feed_stamp() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.feed_xid := pg_current_xact_id()::text::bigint;
    RETURN NEW;
END $$;

-- --- counters ------------------------------------------------------------------
ALTER TABLE outbound_counters
    ADD COLUMN feed_xid bigint NOT NULL DEFAULT 0,
    -- The month's counters when the last day was closed (reset-daily): a
    -- closed day's bytes, bounces and complaints are the difference (the
    -- counters below are monthly). reset-monthly sets them back to 0.
    ADD COLUMN bytes_month_closed bigint NOT NULL DEFAULT 0,
    ADD COLUMN bounce_count_closed integer NOT NULL DEFAULT 0,
    ADD COLUMN complaint_count_closed integer NOT NULL DEFAULT 0;
CREATE INDEX outbound_counters_feed_idx ON outbound_counters (feed_xid, domain_id);

CREATE TRIGGER outbound_counters_feed_insert BEFORE INSERT ON outbound_counters
    FOR EACH ROW EXECUTE FUNCTION feed_stamp();
-- Only what the feed shows: leases, the hourly throttle and warm-up churn
-- on the policy daemon's hot path and must not re-send a row.
CREATE TRIGGER outbound_counters_feed_update BEFORE UPDATE ON outbound_counters
    FOR EACH ROW WHEN ((OLD.sent_today, OLD.sent_month, OLD.bytes_month, OLD.overage_today,
                        OLD.overage_month, OLD.overage_bytes_month, OLD.bounce_count, OLD.complaint_count)
                       IS DISTINCT FROM
                       (NEW.sent_today, NEW.sent_month, NEW.bytes_month, NEW.overage_today,
                        NEW.overage_month, NEW.overage_bytes_month, NEW.bounce_count, NEW.complaint_count))
    EXECUTE FUNCTION feed_stamp();

-- The counters feed also carries the domain's outbound status (a guillotine
-- suspension) and owner: a change of those re-sends its counters row.
CREATE FUNCTION outbound_counters_feed_domain() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE outbound_counters SET feed_xid = pg_current_xact_id()::text::bigint WHERE domain_id = NEW.id;
    RETURN NULL;
END $$;
CREATE TRIGGER domains_outbound_feed AFTER UPDATE OF outbound_status, outbound_status_reason, partner_ref
    ON domains FOR EACH ROW
    WHEN ((OLD.outbound_status, OLD.outbound_status_reason, OLD.partner_ref)
          IS DISTINCT FROM (NEW.outbound_status, NEW.outbound_status_reason, NEW.partner_ref))
    EXECUTE FUNCTION outbound_counters_feed_domain();

-- --- daily history ---------------------------------------------------------------
ALTER TABLE outbound_history
    ADD COLUMN bounces integer NOT NULL DEFAULT 0,
    ADD COLUMN complaints integer NOT NULL DEFAULT 0,
    ADD COLUMN feed_xid bigint NOT NULL DEFAULT 0;
CREATE INDEX outbound_history_feed_idx ON outbound_history (feed_xid, domain_id, day);
CREATE TRIGGER outbound_history_feed BEFORE INSERT OR UPDATE ON outbound_history
    FOR EACH ROW EXECUTE FUNCTION feed_stamp();

-- --- suppression ------------------------------------------------------------------
ALTER TABLE suppression ADD COLUMN feed_xid bigint NOT NULL DEFAULT 0;
CREATE INDEX suppression_feed_idx ON suppression (feed_xid, id);
CREATE TRIGGER suppression_feed BEFORE INSERT OR UPDATE ON suppression
    FOR EACH ROW EXECUTE FUNCTION feed_stamp();

-- A lifted entry is fed as removed (a reader deletes its copy). Small rows,
-- written only when an operator lifts an address; kept.
CREATE TABLE suppression_removed (
    id             bigint PRIMARY KEY,     -- the removed entry's id
    email          text NOT NULL,
    reason         text NOT NULL,
    source_domain  text,
    provider       text,
    created_at     timestamptz NOT NULL,
    removed_at     timestamptz NOT NULL DEFAULT now(),
    feed_xid       bigint NOT NULL
);
CREATE INDEX suppression_removed_feed_idx ON suppression_removed (feed_xid, id);

CREATE FUNCTION suppression_record_removal() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO suppression_removed (id, email, reason, source_domain, provider, created_at, feed_xid)
    VALUES (OLD.id, OLD.email, OLD.reason, OLD.source_domain, OLD.provider, OLD.created_at,
            pg_current_xact_id()::text::bigint)
    ON CONFLICT (id) DO NOTHING;
    RETURN NULL;
END $$;
CREATE TRIGGER suppression_removal_feed AFTER DELETE ON suppression
    FOR EACH ROW EXECUTE FUNCTION suppression_record_removal();
