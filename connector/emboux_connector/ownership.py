"""Domain ownership: who may make the mail server route a name.

A domain is `pending` until its owner proves control of its DNS (a TXT
record holding a random token, as the big providers ask) or the operator
vouches for it; until then the mail server's views do not list it (see
migration 0007). Names nobody can own here -- public suffixes, the
platform's own host names and domains -- are refused at creation.
See docs/domain-ownership.md.
"""

import functools
import secrets

from publicsuffixlist import PublicSuffixList

from . import dnscheck, settings
from .errors import ApiError

RECORD_PREFIX = "_emboux-verification"
VALUE_PREFIX = "emboux-verify="
OWNED = ("verified", "vouched")


@functools.lru_cache(maxsize=1)
def _psl():
    # The list shipped inside the package: no download at run time.
    return PublicSuffixList()


def _names(value):
    return {n.strip().lower().rstrip(".") for n in (value or "").replace(",", " ").split() if n.strip()}


def platform_names(env=None):
    """(host names, domains) of the platform itself.

    Host names (MAIL_HOSTNAME, MX_HOST) are never a tenant's domain, not even
    the operator's: postmaster@<host> must stay ours. Domains
    (EMBOUX_RESERVED_DOMAINS, plus the registrable domain of MAIL_HOSTNAME):
    refused to everyone when listed explicitly; the derived one, and every
    subdomain of either kind, only to clients -- the operator may host its
    own subdomains (the dev stack's demo.emboux.test)."""
    # only the names set: the registered default of MAIL_HOSTNAME reserves nothing
    hosts = _names(" ".join(settings.raw(k, env) or "" for k in ("MAIL_HOSTNAME", "MX_HOST")))
    listed = _names(settings.get("EMBOUX_RESERVED_DOMAINS", env))
    derived = {d for d in (_psl().privatesuffix(h) for h in hosts) if d} - hosts
    return hosts, listed, derived


def refuse_public_suffix(name, field="name"):
    """co.uk, com, github.io: a registry's zone, never one tenant's domain."""
    if _psl().is_public(name):
        raise ApiError(400, f"{field}: {name} is a public suffix (a registry's zone, not a domain "
                            "anyone owns)", code="domain_public_suffix")


def refuse_unownable(name, is_master, field="name"):
    """400 for a name no tenant may host (checked where a domain is created)."""
    refuse_public_suffix(name, field)
    hosts, listed, derived = platform_names()
    if name in hosts or name in listed:
        raise ApiError(400, f"{field}: {name} is reserved for the mail platform itself",
                       code="domain_reserved")
    if is_master:
        return
    for reserved in hosts | listed | derived:
        if name == reserved or name.endswith("." + reserved):
            raise ApiError(400, f"{field}: {name} belongs to the mail platform's own domain {reserved}",
                           code="domain_reserved")


def require_owned(row):
    """409 while the domain's ownership is pending: nothing may act as it --
    provider verification included (the provider may still hold a previous
    holder's verification of the same name)."""
    if row["ownership"] not in OWNED:
        raise ApiError(409, f"Domain ownership not proven: publish the TXT record "
                            f"{RECORD_PREFIX}.{row['name']} and POST /domains/{row['name']}/ownership/check",
                       code="ownership_pending")


def new_token():
    return secrets.token_urlsafe(24)


def record(name, token):
    """The TXT record that proves control of `name` (also accepted on the apex)."""
    if not token:
        return None
    return {"type": "TXT", "name": f"{RECORD_PREFIX}.{name}", "value": VALUE_PREFIX + token}


def fields(row):
    """The ownership fields of a domain's JSON."""
    return {
        "ownership": row["ownership"],
        "ownership_record": record(row["name"], row["ownership_token"]),
        "ownership_method": row["ownership_method"],
        "ownership_by": row["ownership_by"],
        "ownership_at": row["ownership_at"].isoformat() if row["ownership_at"] else None,
    }


def initial(caller, require_proof, parent, owner):
    """(state, method, by) of a new domain: inherited from an owned wildcard
    parent of the same partner, vouched when the master creates it without
    asking for proof, else pending."""
    if parent is not None and parent["ownership"] in OWNED and parent["partner_ref"] == owner:
        return parent["ownership"], "parent", parent["name"]
    if caller.is_master and not require_proof:
        return "vouched", "operator", "master"
    return "pending", None, None


def set_state(cur, domain_id, state, method, by):
    cur.execute("UPDATE domains SET ownership = %s, ownership_method = %s, ownership_by = %s, "
                "ownership_at = CASE WHEN %s = 'pending' THEN NULL ELSE now() END, updated_at = now() "
                "WHERE id = %s", (state, method, by, state, domain_id))


def promote_children(cur, parent):
    """Pending subdomains linked to a parent that just became owned, held by
    the same partner, inherit its ownership."""
    cur.execute("UPDATE domains SET ownership = %s, ownership_method = 'parent', ownership_by = %s, "
                "ownership_at = now(), updated_at = now() "
                "WHERE parent_id = %s AND ownership = 'pending' AND partner_ref IS NOT DISTINCT FROM %s "
                "RETURNING id", (parent["ownership"], parent["name"], parent["id"], parent["partner_ref"]))
    return [r["id"] for r in cur.fetchall()]


def txt_published(name, token):
    """(found, values, error): is 'emboux-verify=<token>' published at
    _emboux-verification.<name> or at <name>? values: what those names hold
    that looks like ours (for the integrator's diagnosis)."""
    res = dnscheck.resolver()
    errors, values = [], []
    for qname in (f"{RECORD_PREFIX}.{name}", name):
        values += [v for v in dnscheck.lookup(res, qname, "TXT", errors) if v.startswith(VALUE_PREFIX)]
    expected = VALUE_PREFIX + token
    return expected in values, values, "; ".join(errors) or None
