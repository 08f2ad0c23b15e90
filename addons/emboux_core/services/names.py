# License AGPL-3.0 or later (https://www.gnu.org/licenses/agpl).
"""Name rules checked in Odoo before anything is saved, mirroring the
connector's (lower-case IDNA domains, conservative local parts), so that an
invalid name is refused at once with a sentence, not after commit."""

import re

import idna

_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")
_LOCAL = re.compile(r"^[a-z0-9_+-]+(?:\.[a-z0-9_+-]+)*$")
PARTNER_REF = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:@-]{0,127}$")


class NameError_(ValueError):
    pass


def domain_name(value):
    name = (value or "").strip().rstrip(".")
    if not name:
        raise NameError_("A domain name is required.")
    try:
        name = idna.encode(name, uts46=True).decode("ascii")
    except (idna.IDNAError, UnicodeError):
        raise NameError_(f"“{value}” is not a valid domain name.")
    name = name.lower()
    labels = name.split(".")
    if len(name) > 253 or len(labels) < 2 or not all(_LABEL.match(lb) for lb in labels) \
            or labels[-1].isdigit():
        raise NameError_(f"“{value}” is not a valid domain name (expected something like example.com).")
    return name


def local_part(value):
    local = (value or "").strip().lower()
    if not local:
        raise NameError_("The part before @ is required.")
    if len(local) > 64:
        raise NameError_("The part before @ may not be longer than 64 characters.")
    if not _LOCAL.match(local):
        raise NameError_(f"“{value}” is not allowed before @: use letters, digits and . _ + - "
                         "(no spaces, no leading, trailing or double dots).")
    return local


def address(value):
    value = (value or "").strip()
    if value.count("@") != 1:
        raise NameError_(f"“{value}” is not a valid email address.")
    local, _, domain = value.partition("@")
    return f"{local_part(local)}@{domain_name(domain)}"


def check_password(value):
    if not isinstance(value, str) or not 8 <= len(value) <= 256:
        raise NameError_("The password must be 8 to 256 characters long.")
    if any(ord(c) < 32 or ord(c) == 127 for c in value):
        raise NameError_("The password may not contain control characters.")
    return value
