"""Inbound spam settings of a domain (issue 17, docs/inbound.md): the
thresholds for Junk and for refusal at SMTP, greylisting, allow and block
lists -- and the Rspamd settings map made of them, which Rspamd polls
(from an address listed in RSPAMD_MAP_CLIENTS)."""

import ipaddress
import math
import re
import socket
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime, parsedate_to_datetime

from flask import Blueprint, Response, current_app, request
from marshmallow import fields

from .. import feedback, names, schemas, settings, spam
from ..errors import ApiError
from ..fields import StrictString
from ..routing import endpoint
from ..tenancy import visible_domain

bp = Blueprint("spam", __name__)
_HOST_NAME = re.compile(r"[A-Za-z0-9]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?")


class SpamSettingsBody(schemas.Body):
    junk_score = fields.Raw(metadata={"type": "number", "description":
                                      "score from which mail goes to Junk (default 6)"})
    reject_score = fields.Raw(metadata={"type": "number", "description":
                                        "score from which mail is refused at SMTP with 5xx (default 15); "
                                        "above junk_score"})
    greylisting = fields.Raw(metadata={"type": "boolean", "description":
                                       "greylist suspicious mail from unknown senders (default false)"})
    allow_senders = fields.Raw(metadata={"type": "array", "items": {"type": "string"}, "description":
                                         "addresses or @domains whose mail scores lower (at most 1000)"})
    block_senders = fields.Raw(metadata={"type": "array", "items": {"type": "string"}, "description":
                                         "addresses or @domains whose mail is refused (at most 1000)"})


def _out(row, s):
    return {"domain": row["name"], **s}


@endpoint(bp, "/domains/<name>/spam", "GET", role="either", tag="inbound protection",
          summary="A domain's spam settings: Junk and reject thresholds, greylisting, allow and block lists")
def get_spam(cur, caller, name):
    row = visible_domain(cur, caller, names.domain_name(name))
    return _out(row, spam.load(cur, row["id"]))


@endpoint(bp, "/domains/<name>/spam", "PUT", role="either", body=SpamSettingsBody, tag="inbound protection",
          summary="Change a domain's spam settings (the fields given); Rspamd applies them within seconds")
def put_spam(cur, caller, name, body):
    """Fields not given keep their value. 400 `invalid_field` naming the field
    (junk_score must stay below reject_score; an entry on both lists), and
    nothing is written."""
    row = visible_domain(cur, caller, names.domain_name(name), lock=True)
    new = spam.merge(spam.load(cur, row["id"]), body)
    spam.store(cur, row["id"], new)
    return _out(row, new)


def _host_addresses(name):
    """The addresses a host name resolves to now: in the docker/ deployment
    RSPAMD_MAP_CLIENTS is the rspamd service's name, whose address the
    container network assigns at each start."""
    if not _HOST_NAME.fullmatch(name):
        return set()
    try:
        infos = socket.getaddrinfo(name, None, proto=socket.IPPROTO_TCP)
    except (OSError, UnicodeError):
        return set()
    return {ipaddress.ip_address(info[4][0].split("%", 1)[0]) for info in infos}


def _map_caller_ok():
    """Rspamd is recognised by the address it connects from (no secret: Rspamd
    prints its map URLs, credentials included, in its log)."""
    allowed = settings.get("RSPAMD_MAP_CLIENTS")
    if not allowed:
        raise ApiError(404, "The Rspamd settings map is not configured (RSPAMD_MAP_CLIENTS)",
                       code="rspamd_map_not_configured")
    try:
        client = ipaddress.ip_address(request.remote_addr or "")
    except ValueError:
        client = None
    if isinstance(client, ipaddress.IPv6Address) and client.ipv4_mapped:
        client = client.ipv4_mapped
    for net in allowed.replace(",", " ").split():
        try:
            if client is not None and client in ipaddress.ip_network(net, strict=False):
                return
        except ValueError:
            if client is not None and client in _host_addresses(net):
                return
    raise ApiError(403, "This address may not read the Rspamd settings map", code="forbidden")


@endpoint(bp, "/mailserver/rspamd/settings", "GET", role=None, errors=(403, 404),
          response={"type": "object",
                    "description": "every domain's spam settings under `domains` (read by rspamd.local.lua)"},
          tag="inbound protection",
          summary="Rspamd's settings map of every domain's spam settings (read by Rspamd; RSPAMD_MAP_CLIENTS)")
def rspamd_settings_map(cur, caller):
    """Last-Modified / If-Modified-Since: 304 while nothing changed."""
    _map_caller_ok()
    text, changed = spam.map_text(cur)
    resp = Response(text, status=200, mimetype="application/json")
    if changed is not None:
        # whole seconds, rounded up; a change in the second after is newer
        stamp = changed.replace(microsecond=0)
        if stamp < changed:
            stamp += timedelta(seconds=1)
        since = request.headers.get("If-Modified-Since")
        if since:
            try:
                if changed < parsedate_to_datetime(since):
                    return Response(status=304)
            except (TypeError, ValueError):
                pass
        if stamp <= datetime.now(UTC):
            resp.headers["Last-Modified"] = format_datetime(stamp, usegmt=True)
    resp.headers["Cache-Control"] = "no-store"
    return resp


class StrictNumber(fields.Float):
    """A JSON number (not a string, not a boolean), finite."""

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise self.make_error("invalid")
        return float(value)


class OutboundSpamReport(schemas.Body):
    user = StrictString(required=True, max_length=320, metadata={"description": "the SASL login (a mailbox)"})
    score = StrictNumber(metadata={"description": "Rspamd's score"})
    message_id = StrictString(min_length=0, max_length=998, metadata={"description": "for the log"})


@endpoint(bp, "/mailserver/rspamd/outbound-spam", "POST", role=None, body=OutboundSpamReport, errors=(403, 404),
          tag="inbound protection",
          summary="Rspamd reports a message of an authenticated user refused as spam (RSPAMD_MAP_CLIENTS only)")
def outbound_spam(cur, caller, body):
    """Counted for the user's domain (spam_count) and judged by the same
    guillotine as bounces and complaints: GUILLOTINE_SPAM_LIMIT refusals in
    the month suspend the domain's outbound, the reason recorded. An unknown
    user counts nothing (200, domain null)."""
    _map_caller_ok()
    user = body["user"]
    cur.execute("SELECT d.id, d.name FROM mailboxes m JOIN domains d ON d.id = m.domain_id "
                "WHERE m.email = %s FOR UPDATE OF d", (user.strip().lower(),))
    dom = cur.fetchone()
    if dom is None:
        return {"domain": None, "spam_count": None, "suspended": False}
    count, suspended_now = feedback.record_outbound_spam(cur, dom)
    current_app.logger.warning("outbound spam refused for %s (domain %s, message %s, score %s): %d this month%s",
                               user, dom["name"], str(body.get("message_id", ""))[:200], body.get("score"),
                               count, "; outbound suspended" if suspended_now else "")
    cur.execute("SELECT outbound_status FROM domains WHERE id = %s", (dom["id"],))
    return {"domain": dom["name"], "spam_count": count,
            "suspended": cur.fetchone()["outbound_status"] == "suspended"}
