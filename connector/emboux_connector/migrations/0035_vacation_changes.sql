-- A vacation reply changed through the API (a customer's own tools) reaches
-- Odoo through the change feed (GET /changes, GET /api-keys/{token}/usage):
-- each write of mailbox_vacations logs its mailbox as updated, under the
-- mailbox's domain's partner, and the feed's mailbox state now carries the
-- reply (api/changes.py). Before, Odoo showed the old reply until someone
-- pressed Reload on the mailbox. A deleted reply goes with its mailbox,
-- whose own deletion is logged.
CREATE FUNCTION log_vacation_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO changes (partner_ref, resource, key, action)
    SELECT d.partner_ref, 'mailbox', m.email, 'updated'
    FROM mailboxes m JOIN domains d ON d.id = m.domain_id
    WHERE m.id = NEW.mailbox_id;
    RETURN NEW;
END $$;

CREATE TRIGGER mailbox_vacations_changes AFTER INSERT OR UPDATE ON mailbox_vacations
    FOR EACH ROW EXECUTE FUNCTION log_vacation_change();
