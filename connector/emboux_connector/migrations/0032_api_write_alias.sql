-- POST /aliases/'s checks and write in one statement (issue 15, docs/benchmarks.md
-- "REST API writes").
--
-- After authentication the connector sent three statements, each a round trip
-- that wakes both sides and is parsed and planned anew (psycopg2 prepares
-- nothing): the domain lock, one read of what the checks need, the write.
-- This function runs the same three, in the same order, in the request's
-- transaction; PL/pgSQL keeps their plans for the session (the pool's
-- connections persist). Being VOLATILE, each statement inside takes a new
-- snapshot (READ COMMITTED): the read after the lock sees what the lock's
-- previous holder committed, exactly as the separate statements did.
--
-- It raises nothing for a refusal: it answers a verdict and writes nothing,
-- and the connector maps it to the same ApiError as before (and rolls back):
--   'ok'             written; alias_id, alias_destination, alias_created_at
--                    are the alias as GET shows it
--   'no_domain'      no such domain visible to the caller (404)
--   'taken'          the source is a mailbox (400)
--   'alias_quota'    a new source over aliases_per_mailbox x max(1, mailboxes):
--                    n_used / n_allowed (403)
--   'external_quota' more destinations outside EmBoux than
--                    alias_external_destinations: n_used / n_allowed (403)
-- p_master: the master token (every domain); else only p_partner's domains.
-- p_dests: the destinations, normalised and deduplicated by the connector,
-- in the posted order.

CREATE OR REPLACE FUNCTION public.api_write_alias(
    p_domain text, p_master boolean, p_partner text, p_source text, p_dests text[],
    OUT verdict text, OUT domain_ref bigint, OUT alias_id bigint, OUT alias_destination text,
    OUT alias_created_at timestamptz, OUT n_used bigint, OUT n_allowed bigint)
LANGUAGE plpgsql VOLATILE
AS $$
DECLARE
    per_box integer;
    ext_limit integer;
    is_mailbox boolean;
    current_dests text[];
    boxes bigint;
    external bigint;
BEGIN
    -- alias and mailbox creations in one domain serialise on its row: a quota
    -- count, and "this address is not a mailbox", hold until the commit
    SELECT d.id, p.aliases_per_mailbox, p.alias_external_destinations
      INTO domain_ref, per_box, ext_limit
      FROM public.domains d LEFT JOIN public.partners p ON p.partner_ref = d.partner_ref
     WHERE d.name = p_domain AND (p_master OR d.partner_ref = p_partner)
       FOR UPDATE OF d;
    IF NOT FOUND THEN
        verdict := 'no_domain';
        RETURN;
    END IF;
    -- one read (one snapshot, taken after the lock) for every check
    SELECT EXISTS (SELECT 1 FROM public.mailboxes m WHERE m.email = p_source),
           ARRAY(SELECT a.destination FROM public.aliases a WHERE a.source = p_source ORDER BY a.id),
           CASE WHEN per_box > 0 THEN
               (SELECT count(DISTINCT a.source) FROM public.aliases a WHERE a.domain_id = domain_ref) END,
           CASE WHEN per_box > 0 THEN
               (SELECT count(*) FROM public.mailboxes m WHERE m.domain_id = domain_ref) END,
           CASE WHEN ext_limit > 0 THEN
               (SELECT count(*) FROM unnest(p_dests) AS u(dest)
                 WHERE NOT EXISTS (SELECT 1 FROM mailserver.domains h
                                    WHERE h.name = reverse(split_part(reverse(u.dest), '@', 1)))) END
      INTO is_mailbox, current_dests, n_used, boxes, external;
    IF is_mailbox THEN
        verdict := 'taken';
        RETURN;
    END IF;
    IF cardinality(current_dests) = 0 AND per_box > 0 AND n_used >= per_box * greatest(1, boxes) THEN
        verdict := 'alias_quota';
        n_allowed := per_box * greatest(1, boxes);
        RETURN;
    END IF;
    IF ext_limit > 0 AND external > ext_limit THEN
        verdict := 'external_quota';
        n_used := external;
        n_allowed := ext_limit;
        RETURN;
    END IF;
    -- the destinations become the posted ones, answered as GET shows the
    -- alias (the statement's snapshot predates its own writes)
    WITH gone AS (DELETE FROM public.aliases a WHERE a.source = p_source AND NOT a.destination = ANY(p_dests)),
    new AS (INSERT INTO public.aliases (domain_id, source, destination)
            SELECT domain_ref, p_source, u.dest FROM unnest(p_dests) WITH ORDINALITY AS u(dest, n)
             WHERE NOT u.dest = ANY(current_dests) ORDER BY u.n
            RETURNING aliases.id, aliases.destination, aliases.created_at),
    kept AS (SELECT a.id, a.destination, a.created_at FROM public.aliases a
              WHERE a.source = p_source AND a.destination = ANY(p_dests))
    SELECT min(x.id), string_agg(x.destination, ',' ORDER BY x.id), min(x.created_at)
      INTO alias_id, alias_destination, alias_created_at
      FROM (SELECT * FROM new UNION ALL SELECT * FROM kept) x;
    verdict := 'ok';
    n_used := NULL;
END
$$;
-- the connector's role owns it (migrations run as that role); no one else
-- (the mail servers' roles) may call it
REVOKE ALL ON FUNCTION public.api_write_alias(text, boolean, text, text, text[]) FROM PUBLIC;
