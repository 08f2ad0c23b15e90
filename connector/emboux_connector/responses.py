"""JSON schemas of the main success answers, for the OpenAPI document
(`response=` of routing.endpoint). They name the fields the contract
promises, with their types; answers may carry more fields (added fields are
how the API grows), so objects stay open. The fuzzing tier checks every
answer against them."""

_STR = {"type": "string"}
_INT = {"type": "integer"}
_BOOL = {"type": "boolean"}
_TIME = {"type": "string", "format": "date-time"}
_NULLABLE_STR = {"type": "string", "nullable": True}
_NULLABLE_TIME = {"type": "string", "format": "date-time", "nullable": True}


def _object(**props):
    return {"type": "object", "properties": props, "required": sorted(props)}


def array_of(schema):
    return {"type": "array", "items": schema}


QUOTAS = dict(domains_allowed=_INT, mailboxes_per_domain=_INT, aliases_per_mailbox=_INT, domains_used=_INT)

DOMAIN = _object(id=_INT, name=_STR, created_at=_TIME, partner_ref=_NULLABLE_STR,
                 status=_STR, suspended=_BOOL,
                 parent=_NULLABLE_STR, wildcard=_BOOL, retention_days=_INT, transfer_monthly_mb=_INT)
MAILBOX_CREATED = _object(id=_INT, domain_id=_INT, email=_STR, quota_mb=_INT, created_at=_TIME)
MAILBOX = _object(id=_INT, domain_id=_INT, email=_STR, quota_mb=_INT, active=_BOOL,
                  created_at=_TIME, updated_at=_TIME)
ALIAS = _object(id=_INT, domain_id=_INT, source=_STR, destination=_STR, created_at=_TIME)
API_KEY = _object(id=_INT, token=_STR, partner_ref=_STR, active=_BOOL, expires_at=_NULLABLE_TIME,
                  created_at=_TIME, last_used_at=_NULLABLE_TIME, **QUOTAS)
PARTNER = _object(partner_ref=_STR, created_at=_TIME,
                  counts={"type": "object"},
                  api_keys=_object(active=_INT, total=_INT), **QUOTAS)
CHANGES = _object(since=_NULLABLE_TIME, next_since=_TIME, truncated=_BOOL,
                  changes=array_of(_object(resource={"type": "string", "enum": ["domain", "mailbox", "alias"]},
                                           key=_STR, action=_STR, changed_at=_TIME,
                                           current={"type": "object", "nullable": True})))
USAGE = {"allOf": [CHANGES, _object(partner_ref=_STR, counts={"type": "object"}, **QUOTAS)]}
