"""Visibility and quotas: every lookup of a tenant resource goes through here,
so that "a client sees only its partner's rows" is one rule, not a habit."""

from .errors import ApiError, not_found

DOMAIN_COLUMNS = ("d.id, d.name, d.partner_ref, d.status, d.parent_id, d.wildcard, "
                  "d.retention_days, d.transfer_monthly_mb, d.created_at, d.updated_at, "
                  "d.ownership, d.ownership_token, d.ownership_method, d.ownership_by, d.ownership_at")


def scoped(sql, params, caller, column="d.partner_ref"):
    """Append the caller's tenant filter to a query that has a WHERE clause."""
    if caller.is_master:
        return sql, params
    return f"{sql} AND {column} = %s", [*params, caller.partner_ref]


def scoped_list(sql, caller, query, table):
    """A list query scoped to the caller, filtered by ?domain_id= when given."""
    sql, params = scoped(sql, [], caller)
    if "domain_id" in query:
        sql += f" AND {table}.domain_id = %s"
        params.append(query["domain_id"])
    return sql, params


def _one_visible(cur, caller, sql, params, lock_of, what):
    sql, params = scoped(sql, params, caller)
    if lock_of:
        sql += f" FOR UPDATE OF {lock_of}"
    cur.execute(sql, params)
    row = cur.fetchone()
    if row is None:
        raise not_found(what)
    return row


def visible_domain(cur, caller, name, lock=False):
    """The domain row if the caller may see it, else 404 'Domain not found'."""
    return _one_visible(cur, caller, f"SELECT {DOMAIN_COLUMNS} FROM domains d WHERE d.name = %s",
                        [name], "d" if lock else None, "Domain")


def visible_mailbox(cur, caller, email, lock=False):
    """The mailbox row (with its domain) if the caller may see it, else 404 'User not found'."""
    return _one_visible(
        cur, caller,
        "SELECT m.id, m.domain_id, m.email, m.local_part, m.quota_mb, m.active, "
        "m.created_at, m.updated_at, d.name AS domain, d.partner_ref "
        "FROM mailboxes m JOIN domains d ON d.id = m.domain_id WHERE m.email = %s",
        [email], "m" if lock else None, "User")


def lock_partner(cur, partner_ref):
    """Lock and return the partner row (quota checks serialise on it)."""
    cur.execute("SELECT * FROM partners WHERE partner_ref = %s FOR UPDATE", (partner_ref,))
    return cur.fetchone()


def ensure_partner(cur, partner_ref):
    cur.execute("INSERT INTO partners (partner_ref) VALUES (%s) ON CONFLICT DO NOTHING", (partner_ref,))
    return lock_partner(cur, partner_ref)


def check_domain_quota(cur, partner):
    cur.execute("SELECT count(*) AS n FROM domains WHERE partner_ref = %s", (partner["partner_ref"],))
    used = cur.fetchone()["n"]
    allowed = partner["domains_allowed"]
    if allowed and used >= allowed:
        raise ApiError(403, f"Domain quota exceeded: {used}/{allowed}")
    return used


def recount_domains(cur, partner_refs):
    refs = [r for r in set(partner_refs) if r]
    if refs:
        cur.execute(
            "UPDATE partners p SET domains_used = "
            "(SELECT count(*) FROM domains d WHERE d.partner_ref = p.partner_ref) "
            "WHERE p.partner_ref = ANY(%s)", (refs,))


def reconcile_domains_used(cur):
    """Cure drift: domains_used := the real count, for every partner."""
    cur.execute(
        "UPDATE partners p SET domains_used = c.n FROM ("
        "  SELECT p2.partner_ref, count(d.id) AS n FROM partners p2"
        "  LEFT JOIN domains d ON d.partner_ref = p2.partner_ref GROUP BY p2.partner_ref) c "
        "WHERE c.partner_ref = p.partner_ref AND p.domains_used <> c.n")
    return cur.rowcount


def partner_quotas(cur, partner_ref):
    if partner_ref is None:
        return None
    cur.execute("SELECT * FROM partners WHERE partner_ref = %s", (partner_ref,))
    return cur.fetchone()


QUOTA_FIELDS = ("domains_allowed", "mailboxes_per_domain", "aliases_per_mailbox", "alias_external_destinations")


def set_partner_quotas(cur, partner_ref, body):
    """Set the quota fields present in body (a partial update)."""
    changes = {f: body[f] for f in QUOTA_FIELDS if f in body}
    if changes:
        sets = ", ".join(f"{f} = %({f})s" for f in changes)
        cur.execute(f"UPDATE partners SET {sets} WHERE partner_ref = %(ref)s", {**changes, "ref": partner_ref})


def partner_counts(cur, partner_ref):
    """What a partner holds now: {domains, mailboxes, aliases}."""
    cur.execute(
        "SELECT (SELECT count(*) FROM domains WHERE partner_ref = %(r)s) AS domains, "
        "(SELECT count(*) FROM mailboxes m JOIN domains d ON d.id = m.domain_id "
        " WHERE d.partner_ref = %(r)s) AS mailboxes, "
        "(SELECT count(DISTINCT a.source) FROM aliases a JOIN domains d ON d.id = a.domain_id "
        " WHERE d.partner_ref = %(r)s) AS aliases", {"r": partner_ref})
    return dict(cur.fetchone())
