-- POST /aliases/ in one statement: the token's check, the domain lock, the
-- checks' read and the write (issue 15, docs/benchmarks.md "REST API writes").
--
-- An alias creation was five round trips, each a wake-up of both sides and a
-- statement parsed and planned anew (psycopg2 prepares nothing): BEGIN with
-- the token lookup, the domain lock, one read of what the checks need, the
-- write, COMMIT. The connector now sends this function's call alone, outside
-- any transaction block: PostgreSQL runs it as one implicit transaction and
-- commits it (durably: synchronous_commit) before it answers. Its
-- statements run in the same order as the separate ones did, and PL/pgSQL
-- keeps their plans for the session (the pool's connections persist). Being
-- VOLATILE, each statement inside takes a new snapshot (READ COMMITTED): the
-- read after the lock sees what the lock's previous holder committed.
--
-- Its answer, which the connector maps to the same ApiError as before:
--   verdict 'key_unknown' / 'key_inactive' / 'key_expired': the client token
--     is refused (403, counted as a failed authentication); nothing written
--   verdict 'ok': written; alias_id, alias_destination, alias_created_at are
--     the alias as GET shows it; key_id, key_partner the client key
--   an error of SQLSTATE EBA01 for a refusal after the key's check (the
--     implicit transaction rolls back: nothing written, not even the key's
--     last_used_at), its message one of
--     'no_domain'      no such domain visible to the caller (404)
--     'taken'          the source is a mailbox (400)
--     'alias_quota'    a new source over aliases_per_mailbox x max(1,
--                      mailboxes); detail 'used/allowed' (403)
--     'external_quota' more destinations outside EmBoux than
--                      alias_external_destinations; detail 'n/limit' (403)
-- p_master: the caller presented the master token (checked by the connector,
-- it is not in the DB): every domain. Otherwise p_key_hash is the sha256 of
-- the client token, looked up here (no cache: a deactivated key is refused at
-- its next request), and only its partner's domains are visible.
-- p_last_used: how stale api_keys.last_used_at may be before it is written.
-- p_dests: the destinations, normalised and deduplicated by the connector,
-- in the posted order.

CREATE OR REPLACE FUNCTION public.api_write_alias(
    p_master boolean, p_key_hash text, p_last_used interval,
    p_domain text, p_source text, p_dests text[],
    OUT verdict text, OUT key_id bigint, OUT key_partner text,
    OUT domain_ref bigint, OUT alias_id bigint, OUT alias_destination text,
    OUT alias_created_at timestamptz)
LANGUAGE plpgsql VOLATILE
AS $$
DECLARE
    key_active boolean;
    key_expires timestamptz;
    key_used timestamptz;
    per_box integer;
    n_used bigint;
    ext_limit integer;
    is_mailbox boolean;
    current_dests text[];
    boxes bigint;
    external bigint;
BEGIN
    IF NOT p_master THEN
        SELECT k.id, k.partner_ref, k.active, k.expires_at, k.last_used_at
          INTO key_id, key_partner, key_active, key_expires, key_used
          FROM public.api_keys k WHERE k.token_hash = p_key_hash;
        IF NOT FOUND THEN
            verdict := 'key_unknown';
            RETURN;
        ELSIF NOT key_active THEN
            verdict := 'key_inactive';
            RETURN;
        ELSIF key_expires <= now() THEN
            verdict := 'key_expired';
            RETURN;
        END IF;
        -- where every request writes it (auth.py): before the domain lock, so
        -- that all requests take the two row locks in the same order
        IF key_used IS NULL OR now() - key_used > p_last_used THEN
            UPDATE public.api_keys SET last_used_at = now() WHERE id = key_id;
        END IF;
    END IF;
    -- alias and mailbox creations in one domain serialise on its row: a quota
    -- count, and "this address is not a mailbox", hold until the commit
    SELECT d.id, p.aliases_per_mailbox, p.alias_external_destinations
      INTO domain_ref, per_box, ext_limit
      FROM public.domains d LEFT JOIN public.partners p ON p.partner_ref = d.partner_ref
     WHERE d.name = p_domain AND (p_master OR d.partner_ref = key_partner)
       FOR UPDATE OF d;
    IF NOT FOUND THEN
        RAISE SQLSTATE 'EBA01' USING MESSAGE = 'no_domain';
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
        RAISE SQLSTATE 'EBA01' USING MESSAGE = 'taken';
    END IF;
    IF cardinality(current_dests) = 0 AND per_box > 0 AND n_used >= per_box * greatest(1, boxes) THEN
        RAISE SQLSTATE 'EBA01' USING MESSAGE = 'alias_quota',
            DETAIL = n_used || '/' || per_box * greatest(1, boxes);
    END IF;
    IF ext_limit > 0 AND external > ext_limit THEN
        RAISE SQLSTATE 'EBA01' USING MESSAGE = 'external_quota', DETAIL = external || '/' || ext_limit;
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
END
$$;
-- the connector's role owns it (migrations run as that role); no one else
-- (the mail servers' roles) may call it
REVOKE ALL ON FUNCTION public.api_write_alias(boolean, text, interval, text, text, text[]) FROM PUBLIC;
