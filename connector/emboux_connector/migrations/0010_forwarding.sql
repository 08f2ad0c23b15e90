-- Forwarding is outbound mail (issue 9).
--
-- An alias whose destinations leave EmBoux turns one message received on
-- port 25 into one delivery per destination. Those deliveries count against
-- the owning domain's outbound caps, obey its outbound suspension and the
-- suppression list, and leave with an SRS envelope sender (docs/outbound.md,
-- "Forwarding"). This migration gives the mail server what it needs to know.

-- 1. A per-alias limit on destinations outside EmBoux, from the tenant's
--    quota (0 = unlimited, up to the 100 destinations an alias may have).
ALTER TABLE partners
    ADD COLUMN alias_external_destinations integer NOT NULL DEFAULT 10
        CHECK (alias_external_destinations >= 0);

-- 2. Where mail to an address ends up, as Postfix's virtual alias expansion
--    does it: user@domain, else the catch-all @domain, recursively (a
--    mailbox maps to itself and ends there). One row per final address:
--    `external` when its domain is not hosted here (mail to it leaves),
--    `owner_domain` the domain of the alias that sent it there (the domain
--    charged for the delivery). Built on the mailserver views, with the
--    caller's rights: it shows Postfix nothing its alias map does not.
--    Postfix asks it for each recipient on port 25 (pgsql-forwarding.cf:
--    does this recipient fan out?), emboux-policyd for the destinations.
--    Bounded at 10 levels (Postfix allows 1000; a deeper chain is still
--    expanded by Postfix, but nobody builds one, and a loop ends here).
--    PL/pgSQL, not SQL: its plan is kept for the session (proxymap's
--    connection), 0.07 ms a call here instead of 1.5 ms planning each one.
CREATE FUNCTION mailserver.forward_targets(address text)
RETURNS TABLE (owner_domain text, destination text, external boolean)
LANGUAGE plpgsql STABLE
AS $$
BEGIN
RETURN QUERY
WITH RECURSIVE walk(addr, owner, parent, depth) AS (
    SELECT lower(address), NULL::text, NULL::text, 0
  UNION
    SELECT n.destination, split_part(n.source, '@', 2), w.addr, w.depth + 1
    FROM walk w
    CROSS JOIN LATERAL (
        SELECT a.source, a.destination FROM mailserver.aliases a WHERE a.source = w.addr
        UNION ALL
        SELECT a.source, a.destination FROM mailserver.aliases a
        WHERE a.source = '@' || split_part(w.addr, '@', 2)
          AND NOT EXISTS (SELECT 1 FROM mailserver.aliases b WHERE b.source = w.addr)
    ) n
    WHERE w.depth < 10 AND n.destination <> w.addr
)
SELECT DISTINCT ON (w.addr) w.owner, w.addr,
       NOT EXISTS (SELECT 1 FROM mailserver.domains d WHERE d.name = split_part(w.addr, '@', 2))
FROM walk w
WHERE w.depth > 0
  AND NOT EXISTS (SELECT 1 FROM walk c WHERE c.parent = w.addr)
ORDER BY w.addr, w.depth;
END
$$;

-- 3. Suppressed addresses outside EmBoux: Postfix's transport_maps sends a
--    forwarded copy to one of them to the discard transport, which logs it
--    (the other destinations of the alias are delivered). Submissions never
--    get there: emboux-policyd refuses a suppressed recipient at RCPT.
CREATE VIEW mailserver.suppressed_external AS
    SELECT s.email, string_agg(s.reason, ', ' ORDER BY s.reason) AS reasons
    FROM public.suppression s
    WHERE NOT EXISTS (SELECT 1 FROM mailserver.domains d WHERE d.name = split_part(s.email, '@', 2))
    GROUP BY s.email;

-- Read by Postfix only (the policy daemon uses the connector's role).
REVOKE ALL ON FUNCTION mailserver.forward_targets(text) FROM PUBLIC;
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'emboux_mail_postfix') THEN
        GRANT EXECUTE ON FUNCTION mailserver.forward_targets(text) TO emboux_mail_postfix;
        GRANT SELECT ON mailserver.suppressed_external TO emboux_mail_postfix;
    END IF;
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'emboux_mailserver') THEN
        GRANT EXECUTE ON FUNCTION mailserver.forward_targets(text) TO emboux_mailserver;
        GRANT SELECT ON mailserver.suppressed_external TO emboux_mailserver;
    END IF;
END $$;
