# License AGPL-3.0 or later (https://www.gnu.org/licenses/agpl).
"""Transient secrets of queued changes (a mailbox password waiting for the
connector, a new API token until the connector has it) are kept encrypted with a key that does
not live in the database: a file in Odoo's data_dir, or EMBOUX_SYNC_KEY.
A database dump alone therefore never reveals them, and a mailbox password is
wiped from its sync job as soon as the connector has it (so is a token)."""

import contextlib
import os

from cryptography.fernet import Fernet, InvalidToken

from odoo.tools import config

_CACHE = {}


def _key(dbname):
    env_key = os.environ.get("EMBOUX_SYNC_KEY")
    if env_key:
        return env_key.encode()
    if dbname in _CACHE:
        return _CACHE[dbname]
    path = os.path.join(config["data_dir"], "emboux", f"{dbname}.key")
    if not os.path.exists(path):
        os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
        tmp = f"{path}.{os.getpid()}"
        with open(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb") as fh:
            fh.write(Fernet.generate_key())
        with contextlib.suppress(FileExistsError):
            os.link(tmp, path)  # first writer wins, atomically
        os.unlink(tmp)
    with open(path, "rb") as fh:
        _CACHE[dbname] = fh.read().strip()
    return _CACHE[dbname]


def seal(dbname, plaintext):
    if not plaintext:
        return False
    return Fernet(_key(dbname)).encrypt(plaintext.encode()).decode()


def unseal(dbname, sealed):
    if not sealed:
        return None
    try:
        return Fernet(_key(dbname)).decrypt(sealed.encode()).decode()
    except InvalidToken:
        return None
