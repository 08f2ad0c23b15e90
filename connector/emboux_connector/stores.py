"""Stored mail of deleted mailboxes and domains, removed after commit.

The mail server side lives in mailserver.py; this seam keeps the REST API
importable (and testable) on a host where no mail store is configured.
"""

import logging

log = logging.getLogger(__name__)


def _mailserver():
    try:
        from . import mailserver
    except ImportError:
        return None
    return mailserver


def remove_mailbox_store(email):
    ms = _mailserver()
    if ms is not None:
        ms.remove_mailbox_store(email)


def remove_domain_store(domain):
    ms = _mailserver()
    if ms is not None:
        ms.remove_domain_store(domain)


def storage_used(email):
    """{'storage_used_mb': float} when the mail store can tell, else {}."""
    ms = _mailserver()
    if ms is None:
        return {}
    try:
        return {"storage_used_mb": ms.storage_used_mb(email)}
    except Exception:  # the quota read must not fail because Dovecot is slow
        log.exception("storage in use of %s unavailable", email)
        return {"storage_used_mb": None}


def mail_server_checks():
    """{'postfix': {'ok': ..}, 'dovecot': {'ok': ..}} where a mail server is configured."""
    ms = _mailserver()
    if ms is None or not hasattr(ms, "health_checks"):
        return {}
    return ms.health_checks()


def purge_retention(rows):
    """rows: (email, retention_days). Returns the mail server's report."""
    ms = _mailserver()
    if ms is None:
        return {"mailboxes": 0, "expunged": 0, "errors": ["no mail server configured"]}
    return ms.purge_retention(rows)
