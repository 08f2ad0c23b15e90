"""Domain names and addresses: normalised to lower-case IDNA, or refused.

Local parts are deliberately conservative (letters, digits, . _ + -): what
every mail client, Postfix map and Dovecot path handles without quoting.
"""

import functools
import re

import idna

from .errors import ApiError

_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")
_LOCAL = re.compile(r"^[a-z0-9_+-]+(?:\.[a-z0-9_+-]+)*$")
MAX_LOCAL = 64
MAX_ADDRESS = 254


def _fail(field, msg):
    raise ApiError(400, f"{field}: {msg}")


@functools.lru_cache(maxsize=4096)
def _idna(name):
    """The lower-case IDNA form of name, None when IDNA refuses it. Cached:
    a request names the same few domains several times (domain, source,
    destinations) and the idna library's checks took a quarter of an
    alias creation's Python time (issue 15); the answer depends on nothing
    but the name."""
    try:
        return idna.encode(name, uts46=True).decode("ascii").lower()
    except (idna.IDNAError, UnicodeError):
        return None


def domain_name(value, field="name"):
    """Return the lower-case IDNA (punycode) form of a domain name."""
    if not isinstance(value, str) or not value.strip():
        _fail(field, "a domain name is required")
    name = value.strip().rstrip(".")
    if len(name) > 253 * 4:
        _fail(field, "domain name too long")
    name = _idna(name)
    if name is None:
        _fail(field, f"invalid domain name {value!r}")
    labels = name.split(".")
    if len(name) > 253 or len(labels) < 2 or not all(_LABEL.fullmatch(label) for label in labels):
        _fail(field, f"invalid domain name {value!r}")
    if labels[-1].isdigit():
        _fail(field, f"invalid domain name {value!r} (numeric top-level label)")
    return name


def local_part(value, field="email"):
    if not value:
        _fail(field, "the part before @ is empty")
    value = value.lower()
    if len(value) > MAX_LOCAL:
        _fail(field, f"the part before @ is longer than {MAX_LOCAL} characters")
    if not _LOCAL.fullmatch(value):  # not match: "$" would let a final newline through
        _fail(field, "the part before @ may only contain letters, digits and . _ + - "
                     "(no spaces, no leading, trailing or double dots)")
    return value


def address(value, field="email"):
    """Return (normalised address, local part, domain)."""
    if not isinstance(value, str) or not value.strip():
        _fail(field, "an email address is required")
    value = value.strip()
    if len(value) > MAX_ADDRESS * 2 or value.count("@") != 1:
        _fail(field, f"invalid email address {value!r}")
    local, _, domain = value.partition("@")
    local = local_part(local, field)
    domain = domain_name(domain, field)
    email = f"{local}@{domain}"
    if len(email) > MAX_ADDRESS:
        _fail(field, "address longer than 254 characters")
    return email, local, domain


def alias_source(value, field="source"):
    """An address, or '@domain' for a catch-all. Returns (source, domain)."""
    if isinstance(value, str) and value.strip().startswith("@"):
        domain = domain_name(value.strip()[1:], field)
        return f"@{domain}", domain
    email, _, domain = address(value, field)
    return email, domain
