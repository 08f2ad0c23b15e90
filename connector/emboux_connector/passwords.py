"""Mailbox password hashes that Dovecot verifies itself.

SHA512-CRYPT with 5,000 rounds is what `doveadm pw -s SHA512-CRYPT` produces
(glibc's default); passlib's own default of 656,000 rounds would cost about
0.23 s per IMAP login on these machines. Override with EMBOUX_PASSWORD_ROUNDS.
"""

import re

from passlib.hash import md5_crypt, sha256_crypt, sha512_crypt

from . import settings
from .errors import ApiError

SCHEME = "{SHA512-CRYPT}"
MIN_LENGTH = 8
MAX_LENGTH = 256
_hasher = sha512_crypt.using(rounds=settings.number("EMBOUX_PASSWORD_ROUNDS"))


def check_password(value, field="password"):
    if not isinstance(value, str):
        raise ApiError(400, f"{field}: must be a string")
    if not MIN_LENGTH <= len(value) <= MAX_LENGTH:
        raise ApiError(400, f"{field}: must be {MIN_LENGTH} to {MAX_LENGTH} characters long")
    if any(ord(c) < 32 or ord(c) == 127 for c in value):
        raise ApiError(400, f"{field}: must not contain control characters")
    return value


def hash_password(value):
    return SCHEME + _hasher.hash(check_password(value))


# Crypt hashes an integrator hands over as they are (seed 002's JSON document):
# crypt prefix -> (Dovecot's scheme, passlib's verifier, weak). Dovecot reads
# the scheme from the stored prefix, so each verifies its own way. Rounds
# are capped at 999,999: every login pays them.
CRYPT_SCHEMES = {
    "$1$": ("{MD5-CRYPT}", md5_crypt, True),
    "$5$": ("{SHA256-CRYPT}", sha256_crypt, False),
    "$6$": ("{SHA512-CRYPT}", sha512_crypt, False),
}
_ROUNDS_SALT = r"(?:rounds=[1-9][0-9]{3,5}\$)?[./0-9A-Za-z]{1,16}\$"
_CRYPT = re.compile(r"\$1\$[./0-9A-Za-z]{1,8}\$[./0-9A-Za-z]{22}"
                    rf"|\$5\${_ROUNDS_SALT}[./0-9A-Za-z]{{43}}|\$6\${_ROUNDS_SALT}[./0-9A-Za-z]{{86}}")


def stored_from_crypt(value, field="password"):
    """(stored value with its scheme prefix, weak) for a crypt hash given as
    is; 400 naming the field for anything else (a plain password included)."""
    if not isinstance(value, str) or not _CRYPT.fullmatch(value):   # fullmatch: no final newline
        raise ApiError(400, f"{field}: a crypt hash is required ($1$, $5$ or $6$, e.g. "
                            "$6$rounds=100000$salt$hash)", code="password_hash_invalid")
    scheme, _verifier, weak = CRYPT_SCHEMES[value[:3]]
    return scheme + value, weak


def crypt_of(stored):
    """The crypt hash of a stored value (its scheme prefix dropped)."""
    return stored.split("}", 1)[1] if stored.startswith("{") else stored


def verify_password(value, stored):
    for scheme, verifier, _weak in CRYPT_SCHEMES.values():
        if stored.startswith(scheme):
            return verifier.verify(value, stored[len(scheme):])
    return False
