"""Domains: create, list, delete, suspend/activate, owner, parent,
retention and transfer."""

from flask import Blueprint

from .. import names, ownership, responses, schemas, stores
from ..errors import ApiError, not_found
from ..providers import lifecycle
from ..routing import after_commit, endpoint
from ..tenancy import (DOMAIN_COLUMNS, check_domain_quota, ensure_partner, lock_partner,
                       recount_domains, scoped, visible_domain)

bp = Blueprint("domains", __name__)


def domain_json(row, parent_name=None):
    return {
        "id": row["id"],
        "name": row["name"],
        "created_at": row["created_at"].isoformat(),
        "partner_ref": row["partner_ref"],
        "status": row["status"],
        "suspended": row["status"] == "suspended",
        "parent": parent_name if parent_name is not None else row.get("parent"),
        "wildcard": row["wildcard"],
        "retention_days": row["retention_days"],
        "transfer_monthly_mb": row["transfer_monthly_mb"],
        **ownership.fields(row),
    }


def _wildcard_parent(cur, name):
    """The nearest existing ancestor domain in wildcard mode, if any."""
    labels = name.split(".")
    ancestors = [".".join(labels[i:]) for i in range(1, len(labels) - 1)]
    if not ancestors:
        return None
    cur.execute("SELECT id, name, partner_ref, wildcard, ownership FROM domains WHERE name = ANY(%s) "
                "ORDER BY length(name) DESC", (ancestors,))
    rows = cur.fetchall()
    return rows


@endpoint(bp, "/domains/", "POST", role="either",
          summary="Create a domain (a client's, or one created with require_ownership_proof, "
                  "receives mail once its ownership TXT record is checked)",
          body=schemas.DomainCreate, status=201, response=responses.DOMAIN)
def create_domain(cur, caller, body):
    """A client always owns what it creates; the master may name a partner_ref.
    Creating `sub.parent.tld` under a wildcard parent links it to the parent.
    Ownership: the master's domains are vouched for at once unless
    `require_ownership_proof`; a client's wait (`ownership: pending`) until
    the TXT record in `ownership_record` is published and
    POST /domains/{name}/ownership/check sees it. A subdomain under an owned
    wildcard parent of the same partner inherits the parent's ownership.
    Public suffixes and the platform's own names are refused."""
    name = names.domain_name(body["name"], "name")
    ownership.refuse_unownable(name, caller.is_master)
    owner = caller.partner_ref if not caller.is_master else body.get("partner_ref")
    ancestors = _wildcard_parent(cur, name) or []
    if not caller.is_master and any(a["partner_ref"] != owner for a in ancestors):
        raise ApiError(400, "name: a parent of this domain is managed by another tenant")
    if owner is not None:
        partner = ensure_partner(cur, owner)
        check_domain_quota(cur, partner)
    parent = next((a for a in ancestors if a["wildcard"]), None)
    state, method, by = ownership.initial(caller, body.get("require_ownership_proof", False), parent, owner)
    cur.execute(
        "INSERT INTO domains (name, partner_ref, parent_id, ownership, ownership_token, ownership_method, "
        " ownership_by, ownership_at) "
        "VALUES (%s, %s, %s, %s, %s, %s, %s, CASE WHEN %s = 'pending' THEN NULL ELSE now() END) "
        f"ON CONFLICT (name) DO NOTHING RETURNING {DOMAIN_COLUMNS.replace('d.', '')}",
        (name, owner, parent["id"] if parent else None, state, ownership.new_token(), method, by, state))
    row = cur.fetchone()
    if row is None:
        raise ApiError(400, "Domain already exists")
    recount_domains(cur, [owner])
    if row["ownership"] == "pending":
        lifecycle.inherit(cur, row["id"])  # provider verification waits for the proof
    else:
        lifecycle.on_created(cur, row["id"])  # issue 4: inherit from the parent, start verification
    return domain_json(row, parent["name"] if parent else None)


@endpoint(bp, "/domains/", "GET", role="either", summary="List domains",
          response=responses.array_of(responses.DOMAIN))
def list_domains(cur, caller):
    sql, params = scoped(f"SELECT {DOMAIN_COLUMNS}, p.name AS parent FROM domains d "
                         "LEFT JOIN domains p ON p.id = d.parent_id WHERE true", [], caller)
    cur.execute(sql + " ORDER BY d.name", params)
    return [domain_json(r) for r in cur.fetchall()]


@endpoint(bp, "/domains/<name>", "GET", role="either", summary="Get one domain",
          response=responses.DOMAIN)
def get_domain(cur, caller, name):
    row = visible_domain(cur, caller, names.domain_name(name))
    return domain_json(row, _parent_name(cur, row))


def _parent_name(cur, row):
    if row["parent_id"] is None:
        return None
    cur.execute("SELECT name FROM domains WHERE id = %s", (row["parent_id"],))
    found = cur.fetchone()
    return found["name"] if found else None


@endpoint(bp, "/domains/<name>", "DELETE", role="either", status=204,
          summary="Delete a domain with its mailboxes, aliases and stored mail")
def delete_domain(cur, caller, name):
    row = visible_domain(cur, caller, names.domain_name(name), lock=True)
    provider_cleanup = lifecycle.on_deleting(cur, row["id"])  # issue 4: provider-side state
    # Children first, so that the change log sees their domain (see 0001).
    cur.execute("DELETE FROM aliases WHERE domain_id = %s", (row["id"],))
    cur.execute("DELETE FROM mailboxes WHERE domain_id = %s", (row["id"],))
    cur.execute("DELETE FROM domains WHERE id = %s", (row["id"],))
    recount_domains(cur, [row["partner_ref"]])
    # Stored mail goes only once the rows are gone for good.
    after_commit(stores.remove_domain_store, row["name"])
    if provider_cleanup:
        after_commit(provider_cleanup)


def _set_status(cur, name, status):
    name = names.domain_name(name)
    cur.execute("UPDATE domains SET status = %s, updated_at = now() WHERE name = %s RETURNING name",
                (status, name))
    if cur.fetchone() is None:
        raise not_found("Domain")
    return name


@endpoint(bp, "/domains/<name>/suspend", "PUT", role="master",
          summary="Suspend a domain: inbound mail and logins refused, nothing deleted")
def suspend_domain(cur, caller, name):
    name = _set_status(cur, name, "suspended")
    return {"name": name, "suspended": True, "message": "Domain suspended"}


@endpoint(bp, "/domains/<name>/activate", "PUT", role="master",
          summary="Activate a suspended domain: delivery and logins resume at once")
def activate_domain(cur, caller, name):
    name = _set_status(cur, name, "active")
    lifecycle.on_activated(cur, name)  # issue 4: Mailgun SMTP credential bootstrap
    return {"name": name, "suspended": False, "message": "Domain activated"}


@endpoint(bp, "/domains/<name>/owner", "PUT", role="master", body=schemas.DomainOwner,
          summary="Move a domain to another partner, adjusting both domain counts")
def set_owner(cur, caller, name, body):
    row = visible_domain(cur, caller, names.domain_name(name), lock=True)
    new = body["partner_ref"]
    cur.execute("SELECT 1 FROM api_keys WHERE partner_ref = %s AND active "
                "AND (expires_at IS NULL OR expires_at > now()) LIMIT 1", (new,))
    if cur.fetchone() is None:
        raise ApiError(400, "partner_ref: the partner has no active API key")
    old = row["partner_ref"]
    if old != new:
        # Lock both partners in a fixed order: two opposite transfers cannot deadlock.
        for ref in sorted(r for r in (old, new) if r):
            lock_partner(cur, ref)
        check_domain_quota(cur, lock_partner(cur, new))
        cur.execute("UPDATE domains SET partner_ref = %s, updated_at = now() WHERE id = %s",
                    (new, row["id"]))
        recount_domains(cur, [old, new])
        # The previous holder's proof is not the new one's: a fresh token, and
        # an owned domain stays routed on the operator's word (the move).
        cur.execute("UPDATE domains SET ownership_token = %s WHERE id = %s", (ownership.new_token(), row["id"]))
        if row["ownership"] in ownership.OWNED:
            ownership.set_state(cur, row["id"], "vouched", "transfer", f"master: moved from {old}")
    return {"name": row["name"], "partner_ref": new, "previous_partner_ref": old}


@endpoint(bp, "/domains/<name>/parent", "PUT", role="master", body=schemas.DomainParent,
          summary="Set a domain's parent and its wildcard mode")
def set_parent(cur, caller, name, body):
    """`parent`: the domain this one is a subdomain of (null unlinks).
    `wildcard`: subdomains of this domain created later link to it, and
    existing unlinked ones are linked now. Subdomains inherit the parent's
    provider verification, outbound tier and enforcement."""
    if "parent" not in body and "wildcard" not in body:
        raise ApiError(400, "parent or wildcard is required")
    row = visible_domain(cur, caller, names.domain_name(name), lock=True)
    parent_name = _parent_name(cur, row)
    if "parent" in body:
        if body["parent"] is None:
            parent_id, parent_name = None, None
        else:
            parent_name = names.domain_name(body["parent"], "parent")
            if not row["name"].endswith("." + parent_name):
                raise ApiError(400, f"parent: {row['name']} is not a subdomain of {parent_name}")
            cur.execute("SELECT id FROM domains WHERE name = %s", (parent_name,))
            found = cur.fetchone()
            if found is None:
                raise ApiError(404, "Parent domain not found")
            parent_id = found["id"]
        cur.execute("UPDATE domains SET parent_id = %s, updated_at = now() WHERE id = %s",
                    (parent_id, row["id"]))
    wildcard = row["wildcard"]
    if "wildcard" in body:
        wildcard = body["wildcard"]
        cur.execute("UPDATE domains SET wildcard = %s, updated_at = now() WHERE id = %s",
                    (wildcard, row["id"]))
        if wildcard:
            cur.execute("UPDATE domains SET parent_id = %s, updated_at = now() "
                        "WHERE parent_id IS NULL AND name LIKE %s",
                        (row["id"], "%." + row["name"].replace("_", r"\_")))
    lifecycle.inherit(cur, row["id"])  # issue 4: provider, tier, enforcement flow to subdomains
    return {"name": row["name"], "parent": parent_name, "wildcard": wildcard}


def _setting(column, schema, summary_get, summary_put):
    """GET (either) and PUT (master) of one integer column of a domain."""
    def get(cur, caller, name):
        row = visible_domain(cur, caller, names.domain_name(name))
        return {"name": row["name"], column: row[column]}

    def put(cur, caller, name, body):
        row = visible_domain(cur, caller, names.domain_name(name), lock=True)
        cur.execute(f"UPDATE domains SET {column} = %s, updated_at = now() WHERE id = %s",
                    (body[column], row["id"]))
        return {"name": row["name"], column: body[column]}

    path = "/domains/<name>/" + column.split("_")[0]
    get.__name__, put.__name__ = f"get_{column}", f"set_{column}"
    endpoint(bp, path, "GET", role="either", summary=summary_get)(get)
    endpoint(bp, path, "PUT", role="master", body=schema, summary=summary_put)(put)


_setting("retention_days", schemas.Retention, "Get a domain's mail retention",
         "Set a domain's mail retention in days (0 = keep forever)")
_setting("transfer_monthly_mb", schemas.Transfer, "Get a domain's monthly transfer cap",
         "Set a domain's monthly outbound transfer cap in MB (0 = unlimited)")
