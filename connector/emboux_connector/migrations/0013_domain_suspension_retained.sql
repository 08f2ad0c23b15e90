-- An operator's suspension of a whole domain (PUT /domains/{name}/suspend:
-- inbound refused, logins refused; e.g. for non-payment) outlives the row
-- too (issue 9, "delete and re-create lifts its suspension"). 0008 keeps
-- the outbound suspension by name; without this, a tenant whose domain was
-- suspended could delete it and create it again, active.
--
-- The suspension belongs to the name within its partner (partner_ref, ''
-- for master-owned): the same partner re-creating the name gets it back
-- suspended, until the master activates it. Another partner (the name's real
-- owner, who must prove ownership anyway) starts afresh.

CREATE TABLE domain_suspensions_retained (
    partner_key   text NOT NULL,      -- partner_ref, '' = master-owned
    domain_name   text NOT NULL,
    suspended_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (partner_key, domain_name)
);

CREATE FUNCTION domain_suspension_retain() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF OLD.status = 'suspended' THEN
        INSERT INTO domain_suspensions_retained (partner_key, domain_name)
        VALUES (coalesce(OLD.partner_ref, ''), OLD.name)
        ON CONFLICT DO NOTHING;
    END IF;
    RETURN OLD;
END $$;
CREATE TRIGGER domains_suspension_retain BEFORE DELETE ON domains
    FOR EACH ROW EXECUTE FUNCTION domain_suspension_retain();

-- Read only before the row is written: an INSERT ... ON CONFLICT DO NOTHING
-- that finds the name taken fires BEFORE INSERT too. The saved row is
-- consumed once the domain exists again (it carries the suspension now).
CREATE FUNCTION domain_suspension_restore() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM domain_suspensions_retained
               WHERE partner_key = coalesce(NEW.partner_ref, '') AND domain_name = NEW.name) THEN
        NEW.status := 'suspended';
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER domains_suspension_restore BEFORE INSERT ON domains
    FOR EACH ROW EXECUTE FUNCTION domain_suspension_restore();

CREATE FUNCTION domain_suspension_consume() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM domain_suspensions_retained
    WHERE partner_key = coalesce(NEW.partner_ref, '') AND domain_name = NEW.name;
    RETURN NULL;
END $$;
CREATE TRIGGER domains_suspension_consume AFTER INSERT ON domains
    FOR EACH ROW EXECUTE FUNCTION domain_suspension_consume();

-- An owner transfer moves the name to another partner: a saved suspension of
-- the old partner stays the old partner's (nothing to do), and the domain's
-- own status moves with the row, as before.
