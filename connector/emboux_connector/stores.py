"""Stored mail of deleted mailboxes and domains, removed after commit.

The mail server side lives in mailserver.py (standard library only, so
always importable; it answers for itself where no mail store is configured);
this module is what the API's endpoints call, with the API's error policy.
"""

import logging

from . import mailserver

log = logging.getLogger(__name__)


def remove_mailbox_store(email):
    mailserver.remove_mailbox_store(email)


def remove_domain_store(domain):
    mailserver.remove_domain_store(domain)


def storage_used(email):
    """{'storage_used_mb': float or None (unavailable now)}."""
    try:
        return {"storage_used_mb": mailserver.storage_used_mb(email)}
    except Exception:  # the quota read must not fail because Dovecot is slow
        log.exception("storage in use of %s unavailable", email)
        return {"storage_used_mb": None}


def storage_by_domain():
    """{domain: bytes stored} of every mailbox Dovecot serves, or None when
    it cannot be measured now (no mail server here, doveadm failed)."""
    try:
        return mailserver.storage_by_domain()
    except Exception:  # billing then says "not measured", never a wrong 0
        log.exception("storage per domain unavailable")
        return None


def mail_server_checks():
    """{'postfix': {'ok': ..}, 'dovecot': {'ok': ..}} where a mail server is configured."""
    return mailserver.health_checks()


def purge_retention(rows):
    """rows: (email, retention_days). Returns the mail server's report."""
    return mailserver.purge_retention(rows)
