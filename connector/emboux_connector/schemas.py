"""Request bodies and query strings, as marshmallow schemas.

They validate input (type errors name the field) and feed the generated
OpenAPI document. Name rules (IDNA, local parts) live in names.py.
"""

from marshmallow import EXCLUDE, Schema, fields, validate

from .fields import AwareDateTime, FullRegexp, StrictBoolean, StrictInteger, StrictString

QUOTA = validate.Range(min=0, max=1_000_000)
PARTNER_REF = FullRegexp(r"^[A-Za-z0-9][A-Za-z0-9._:@-]*$", error="letters, digits and . _ : @ - only")


class Body(Schema):
    class Meta:
        # Integrators send whole records; fields we do not know are ignored.
        unknown = EXCLUDE


class DomainCreate(Body):
    name = StrictString(required=True, max_length=1000)
    partner_ref = StrictString(max_length=128, allow_none=True, validate=PARTNER_REF,
                               metadata={"description": "honoured for the master token only"})
    require_ownership_proof = StrictBoolean(metadata={
        "description": "master: the domain waits for its DNS ownership proof instead of being vouched "
                       "for by the operator (a client's domain always waits)"})


class OwnershipVouch(Body):
    vouched_by = StrictString(max_length=200, metadata={
        "description": "who vouches, recorded with the domain (e.g. the ERP user); default 'master'"})


class DomainOwner(Body):
    partner_ref = StrictString(required=True, max_length=128, validate=PARTNER_REF)


class DomainParent(Body):
    parent = StrictString(max_length=1000, allow_none=True,
                          metadata={"description": "parent domain, or null to unlink"})
    wildcard = StrictBoolean(metadata={"description": "subdomains created later link to this domain"})


class Retention(Body):
    retention_days = StrictInteger(required=True, validate=validate.Range(min=0, max=36500))


class Transfer(Body):
    transfer_monthly_mb = StrictInteger(required=True, validate=validate.Range(min=0, max=100_000_000))


class UserCreate(Body):
    domain_name = StrictString(required=True, max_length=1000)
    email = StrictString(required=True, max_length=600)
    password = StrictString(required=True, min_length=1, max_length=256, load_only=True)
    quota_mb = StrictInteger(validate=QUOTA)


class UserUpdate(Body):
    """At least one of the four fields."""
    password = StrictString(min_length=1, max_length=256, load_only=True)
    spoofing_whitelist = fields.List(
        StrictString(max_length=600), validate=validate.Length(max=200),
        metadata={"description": "extra sender addresses: 'user@domain', '@domain' or 'domain', '*' = any"})
    submission_disabled = StrictBoolean(metadata={"description": "refuse this mailbox's outbound mail"})
    active = StrictBoolean(metadata={"description": "false = disabled: logins and incoming mail refused, "
                                                    "stored mail kept; true enables it again"})


class MailboxPasswordChange(Body):
    """The mailbox holder's own password change (webmail): the current
    password is the credential, no API token."""
    email = StrictString(required=True, max_length=600)
    current_password = StrictString(required=True, min_length=1, max_length=256, load_only=True)
    new_password = StrictString(required=True, min_length=1, max_length=256, load_only=True)


class UserQuota(Body):
    quota_mb = StrictInteger(required=True, validate=QUOTA)


class AliasCreate(Body):
    domain_name = StrictString(required=True, max_length=1000)
    source = StrictString(required=True, max_length=600,
                          metadata={"description": "address, or @domain for a catch-all"})
    destination = StrictString(required=True, max_length=20000,
                               metadata={"description": "one or more addresses, comma separated"})


class PartnerQuotas(Body):
    domains_allowed = StrictInteger(validate=QUOTA)
    mailboxes_per_domain = StrictInteger(validate=QUOTA)
    aliases_per_mailbox = StrictInteger(validate=QUOTA)
    alias_external_destinations = StrictInteger(validate=QUOTA, metadata={
        "description": "most destinations outside EmBoux (forwards) one alias may have (default 10, 0 = unlimited)"})


class ApiKeyUpdate(PartnerQuotas):
    active = StrictBoolean()
    expires_at = AwareDateTime(allow_none=True)


class ApiKeyCreate(ApiKeyUpdate):
    token = StrictString(min_length=24, max_length=256,
                         validate=FullRegexp(r"^[A-Za-z0-9._~+/=-]+$", error="only URL-safe characters"),
                         metadata={"description": "generated when omitted; returned only in this response"})
    partner_ref = StrictString(required=True, max_length=128, validate=PARTNER_REF)


class DomainIdQuery(Body):
    domain_id = fields.Integer(validate=validate.Range(min=1, max=2**62))


class SinceQuery(Body):
    since = AwareDateTime(metadata={"description": "ISO 8601; changes strictly after this instant"})
