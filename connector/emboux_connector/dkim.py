"""DKIM keys of the `local` provider: generation, rotation, publication.

The private key is generated here, stored in the mail DB (table dkim_keys)
and read from there only by OpenDKIM (view mailserver.dkim_keys). It is never
returned by the API nor logged: what leaves this module towards a caller is
the public half, as the TXT record to publish.

Rotation: a new key with a new selector becomes the signing key at once; the
previous one is kept published ('retiring') for DKIM_ROTATION_OVERLAP_DAYS so
that mail signed with it and still in flight verifies, then retired.
"""

import base64
import datetime as dt
import secrets

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from . import settings

DEFAULT_BITS = 2048


def key_bits():
    return max(1024, settings.lenient("DKIM_KEY_BITS"))


def overlap_days():
    return max(0, settings.lenient("DKIM_ROTATION_OVERLAP_DAYS"))


def generate(bits=None):
    """(private PKCS#8 PEM, base64 SubjectPublicKeyInfo) of a fresh RSA key."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=bits or key_bits())
    private_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption()).decode("ascii")
    public_der = key.public_key().public_bytes(serialization.Encoding.DER,
                                               serialization.PublicFormat.SubjectPublicKeyInfo)
    return private_pem, base64.b64encode(public_der).decode("ascii")


def new_selector(now=None):
    """A fresh selector: 'eb' + date + random suffix (never reused)."""
    now = now or dt.datetime.now(dt.UTC)
    return f"eb{now:%Y%m%d}-{secrets.token_hex(3)}"


def txt_value(public_b64):
    return f"v=DKIM1; k=rsa; p={public_b64}"


def record(domain, row):
    """The DNS record a key needs: {type, name, value, selector, status}."""
    return {"type": "TXT", "name": f"{row['selector']}._domainkey.{domain}",
            "value": txt_value(row["public_key"]), "selector": row["selector"],
            "status": row["status"], "purpose": "dkim"}


def _insert(cur, domain_id, bits=None):
    private_pem, public_b64 = generate(bits)
    cur.execute("INSERT INTO dkim_keys (domain_id, selector, bits, private_key, public_key) "
                "VALUES (%s, %s, %s, %s, %s) RETURNING id, selector, public_key, status, created_at",
                (domain_id, new_selector(), bits or key_bits(), private_pem, public_b64))
    return cur.fetchone()


def ensure_key(cur, domain_id):
    """The domain's signing key, created on first use. Idempotent under
    concurrency: a key another transaction created first is the one used."""
    sql = ("SELECT id, selector, public_key, status, created_at FROM dkim_keys "
           "WHERE domain_id = %s AND status = 'active'")
    cur.execute(sql, (domain_id,))
    found = cur.fetchone()
    if found:
        return found
    private_pem, public_b64 = generate()
    cur.execute("INSERT INTO dkim_keys (domain_id, selector, bits, private_key, public_key) "
                "VALUES (%s, %s, %s, %s, %s) "
                "ON CONFLICT (domain_id) WHERE status = 'active' DO NOTHING "
                "RETURNING id, selector, public_key, status, created_at",
                (domain_id, new_selector(), key_bits(), private_pem, public_b64))
    created = cur.fetchone()
    if created:
        return created
    cur.execute(sql, (domain_id,))
    return cur.fetchone()


class NoKey(Exception):
    """The domain has no active key to rotate (never verified)."""


def rotate(cur, domain_id, overlap=None):
    """New active key; the previous active one retires after the overlap.
    NoKey when the domain has no active key: its first key is made by
    verify (POST /domains/{name}/verify), not by a rotation."""
    expire(cur)
    days = overlap_days() if overlap is None else overlap
    cur.execute("UPDATE dkim_keys SET status = 'retiring', retire_after = now() + make_interval(days => %s) "
                "WHERE domain_id = %s AND status = 'active' RETURNING selector", (days, domain_id))
    old = [r["selector"] for r in cur.fetchall()]
    if not old:
        raise NoKey(domain_id)
    new = _insert(cur, domain_id)
    return new, old


def expire(cur):
    """Retire keys whose overlap is over (called on every rotation and listing)."""
    cur.execute("UPDATE dkim_keys SET status = 'retired' "
                "WHERE status = 'retiring' AND retire_after <= now()")


def rotate_aged(cur):
    """Rotate every local domain's active key older than the domain's
    `dkim_rotation_days` (0 = never). Returns the names rotated."""
    cur.execute("SELECT d.id, d.name FROM dkim_keys k JOIN domains d ON d.id = k.domain_id "
                "WHERE k.status = 'active' AND d.provider = 'local' AND d.dkim_rotation_days > 0 "
                "AND k.created_at <= now() - make_interval(days => d.dkim_rotation_days) "
                "ORDER BY d.id FOR UPDATE OF d")
    rows = cur.fetchall()
    for r in rows:
        rotate(cur, r["id"])
    return [r["name"] for r in rows]


def delete_retired(cur):
    """Delete retired keys (unpublished, past their overlap), private key
    included: nothing signs or verifies with them any more."""
    cur.execute("DELETE FROM dkim_keys WHERE status = 'retired'")
    return cur.rowcount


def published(cur, domain_id):
    """Keys that must be in DNS now: the active one and those retiring."""
    expire(cur)
    cur.execute("SELECT selector, public_key, status, created_at, retire_after FROM dkim_keys "
                "WHERE domain_id = %s AND status IN ('active', 'retiring') "
                "ORDER BY status = 'active' DESC, created_at DESC", (domain_id,))
    return cur.fetchall()


def signing_key(cur, domain_id, parent_id=None):
    """The key that signs the domain's mail: its own, else its parent's."""
    for did in (domain_id, parent_id):
        if did is None:
            continue
        cur.execute("SELECT k.selector, k.public_key, k.status, k.created_at, d.name AS domain "
                    "FROM dkim_keys k JOIN domains d ON d.id = k.domain_id "
                    "WHERE k.domain_id = %s AND k.status = 'active'", (did,))
        row = cur.fetchone()
        if row:
            return row
    return None
