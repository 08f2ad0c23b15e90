"""A mailbox's vacation auto-reply (issue 17; vacation.py, docs/inbound.md)."""

from flask import Blueprint
from marshmallow import fields

from .. import names, schemas, vacation
from ..routing import endpoint
from ..tenancy import visible_mailbox

bp = Blueprint("vacation", __name__)

_DATE = {"type": "string", "format": "date", "nullable": True}
VACATION = {"type": "object", "required": ["email", "enabled", "subject", "body", "start", "end", "days"],
            "properties": {"email": {"type": "string"}, "enabled": {"type": "boolean"},
                           "subject": {"type": "string"}, "body": {"type": "string"},
                           "start": _DATE, "end": _DATE, "days": {"type": "integer"}}}


class VacationBody(schemas.Body):
    # Raw fields: vacation.merge checks them (400 naming the field, the
    # dates' order as code vacation_dates); the metadata is what clients see.
    enabled = fields.Raw(required=True, metadata={"type": "boolean", "description": "reply or not"})
    subject = fields.Raw(metadata={"type": "string", "maxLength": vacation.SUBJECT_MAX, "description":
                                   "the reply's subject, one line; required when enabled"})
    body = fields.Raw(metadata={"type": "string", "maxLength": vacation.BODY_MAX, "description":
                                "the reply's text; required when enabled"})
    start = fields.Raw(allow_none=True, metadata={**_DATE, "description": "first day of replies (server's local date); "
                                                         "null = from now"})
    end = fields.Raw(allow_none=True, metadata={**_DATE, "description": "last day of replies, not before start; "
                                                                     "null = no end"})
    days = fields.Raw(metadata={"type": "integer", "minimum": 1, "maximum": 30, "description":
                                "one reply per sender per this many days (default 7)"})


@endpoint(bp, "/users/<email>/vacation", "GET", role="either", response=VACATION, tag="inbound protection",
          summary="A mailbox's vacation auto-reply")
def get_vacation(cur, caller, email):
    """A mailbox that never set one: disabled, empty subject and body, no
    dates, 7 days."""
    box = visible_mailbox(cur, caller, names.address(email)[0])
    return vacation.as_json(box["email"], vacation.load(cur, box["id"]))


@endpoint(bp, "/users/<email>/vacation", "PUT", role="either", body=VacationBody, response=VACATION,
          tag="inbound protection",
          summary="Set a mailbox's vacation auto-reply (RFC 3834: once per sender per `days`, never to "
                  "lists, bulk or automatic mail; sent as the domain's outbound mail)")
def put_vacation(cur, caller, email, body):
    """`enabled` is required; other fields not given keep their value.
    400 `invalid_field` naming the field (subject over 200 characters or
    with a line break, body over 10,000, subject or body empty while
    enabled, days outside 1-30, a date not YYYY-MM-DD), 400
    `vacation_dates` for an end before the start; nothing is written."""
    box = visible_mailbox(cur, caller, names.address(email)[0], lock=True)
    new = vacation.merge(vacation.load(cur, box["id"]), body)
    vacation.store(cur, box["id"], new)
    return vacation.as_json(box["email"], new)
