"""Mailbox password hashes that Dovecot verifies itself.

SHA512-CRYPT with 5,000 rounds is what `doveadm pw -s SHA512-CRYPT` produces
(glibc's default); passlib's own default of 656,000 rounds would cost about
0.23 s per IMAP login on these machines. Override with EMBOUX_PASSWORD_ROUNDS.
"""

from passlib.hash import sha512_crypt

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


def verify_password(value, stored):
    if not stored.startswith(SCHEME):
        return False
    return sha512_crypt.verify(value, stored[len(SCHEME):])
