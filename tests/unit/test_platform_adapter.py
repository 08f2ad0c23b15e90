"""The Odoo module's platform adapter (addons/emboux_core/services/
platform_adapter.py): kind -> verb, path, body, and the replay rules that
turn an 'already done' refusal into success, through the client seam with
a scripted session (no connector, no Odoo)."""

import datetime

import pytest
from odoo_services import REFUSED_CONNECTION, client, load

adapter = load("platform_adapter")
cc = load("connector_client")

TARGETS = {
    "tenant": {"ref": "acme"},
    "api_key": {"key_id": 7},
    "domain": {"name": "example.com"},
    "alias": {"source": "@example.com"},
    "mailbox": {"email": "info@example.com"},
    "suppression": {"email": "r+tag@example.org"},
}

# kind -> (target, body fields, expected method, path, body)
CASES = {
    "tenant.quotas": ("tenant", dict(domains_allowed=3, mailboxes_per_domain=0, aliases_per_mailbox=2,
                                     alias_external_destinations=True),
                      "PUT", "/partners/acme", {"domains_allowed": 3, "mailboxes_per_domain": 0,
                                                "aliases_per_mailbox": 2, "alias_external_destinations": True}),
    "api_key.create": ("api_key", dict(partner_ref="acme", active=True, expires_at=None),
                       "POST", "/api-keys/", {"partner_ref": "acme", "active": True, "expires_at": None}),
    "api_key.resolve": ("api_key", {}, "PUT", "/api-keys/{token}", {}),
    "api_key.update": ("api_key", dict(active=False, expires_at=datetime.datetime(2027, 1, 2, 3, 4, 5)),
                       "PUT", "/api-keys/by-id/7", {"active": False, "expires_at": "2027-01-02T03:04:05Z"}),
    "api_key.delete": ("api_key", {}, "DELETE", "/api-keys/by-id/7", None),
    "domain.create": ("domain", dict(name="example.com", partner_ref="acme"), "POST", "/domains/",
                      {"name": "example.com", "partner_ref": "acme", "require_ownership_proof": True}),
    "domain.suspend": ("domain", {}, "PUT", "/domains/example.com/suspend", None),
    "domain.activate": ("domain", {}, "PUT", "/domains/example.com/activate", None),
    "domain.retention": ("domain", dict(retention_days=30), "PUT", "/domains/example.com/retention",
                         {"retention_days": 30}),
    "domain.transfer": ("domain", dict(transfer_monthly_mb=0), "PUT", "/domains/example.com/transfer",
                        {"transfer_monthly_mb": 0}),
    "domain.owner": ("domain", dict(partner_ref="other"), "PUT", "/domains/example.com/owner",
                     {"partner_ref": "other"}),
    "domain.vouch": ("domain", dict(vouched_by="Admin (admin)"), "PUT", "/domains/example.com/ownership/vouch",
                     {"vouched_by": "Admin (admin)"}),
    "domain.delete": ("domain", {}, "DELETE", "/domains/example.com", None),
    "domain.wildcard": ("domain", dict(wildcard=True), "PUT", "/domains/example.com/parent", {"wildcard": True}),
    "domain.parent": ("domain", dict(parent=None), "PUT", "/domains/example.com/parent", {"parent": None}),
    "domain.register_subdomain": ("domain", {}, "POST", "/domains/example.com/register-subdomain", None),
    "domain.dkim": ("domain", dict(rotation_days=90), "PUT", "/domains/example.com/dkim", {"rotation_days": 90}),
    # partial: only the settings that changed
    "domain.outbound": ("domain", dict(outbound_daily_limit=200, warmup_profile=None), "PUT",
                        "/domains/example.com/outbound", {"outbound_daily_limit": 200, "warmup_profile": None}),
    "domain.spam": ("domain", dict(reject_score=12.5, block_senders=["@spam.example"]), "PUT",
                    "/domains/example.com/spam", {"reject_score": 12.5, "block_senders": ["@spam.example"]}),
    "alias.upsert": ("alias", dict(domain_name="example.com", source="@example.com", destination="a@b.org"),
                     "POST", "/aliases/", {"domain_name": "example.com", "source": "@example.com",
                                           "destination": "a@b.org"}),
    "alias.delete": ("alias", {}, "DELETE", "/aliases/@example.com", None),
    "mailbox.create": ("mailbox", dict(domain_name="example.com", email="info@example.com", quota_mb=0),
                       "POST", "/users/", {"domain_name": "example.com", "email": "info@example.com",
                                           "quota_mb": 0}),
    "mailbox.password": ("mailbox", {}, "PUT", "/users/info@example.com", {}),
    "mailbox.quota": ("mailbox", dict(quota_mb=512), "PUT", "/users/info@example.com/quota", {"quota_mb": 512}),
    "mailbox.active": ("mailbox", dict(active=False), "PUT", "/users/info@example.com", {"active": False}),
    "mailbox.delete": ("mailbox", {}, "DELETE", "/users/info@example.com", None),
    "mailbox.vacation": ("mailbox", dict(enabled=True, subject="Away", body="Back soon.",
                                         start=datetime.date(2027, 1, 2), end=None, days=7),
                         "PUT", "/users/info@example.com/vacation",
                         {"enabled": True, "subject": "Away", "body": "Back soon.", "start": "2027-01-02",
                          "end": None, "days": 7}),
    "suppression.lift": ("suppression", {}, "DELETE", "/suppression/r%2Btag@example.org", None),
}


def test_a_partial_kind_needs_one_field_and_refuses_unknown_ones():
    with pytest.raises(ValueError):
        adapter.build("domain.outbound", TARGETS["domain"])
    with pytest.raises(ValueError):
        adapter.build("domain.outbound", TARGETS["domain"], outbound_status="active")


def test_every_kind_has_a_case():
    assert set(CASES) == set(adapter.KINDS)


@pytest.mark.parametrize("kind", sorted(CASES))
def test_kind_gives_verb_path_and_body(kind):
    target, values, method, path, body = CASES[kind]
    assert adapter.build(kind, TARGETS[target], **values) == (method, path, body)


def test_path_segments_are_quoted_but_at_signs_kept():
    assert adapter.build("mailbox.delete", {"email": "a b/c@ex.com"})[1] == "/users/a%20b%2Fc@ex.com"
    assert adapter.build("domain.delete", {"name": "x?y#z"})[1] == "/domains/x%3Fy%23z"


def test_api_key_not_created_yet_keeps_the_key_id_placeholder():
    assert adapter.build("api_key.delete", {"key_id": None})[1] == "/api-keys/by-id/{key_id}"
    assert adapter.build("api_key.delete", {"key_id": False})[1] == "/api-keys/by-id/{key_id}"


def test_a_missing_path_parameter_is_an_error_not_a_wrong_path():
    with pytest.raises(KeyError):
        adapter.build("domain.delete", {})


def test_body_fields_must_be_exactly_the_kinds():
    with pytest.raises(ValueError, match="retention_days"):
        adapter.build("domain.retention", TARGETS["domain"])
    with pytest.raises(ValueError):
        adapter.build("domain.retention", TARGETS["domain"], retention_days=1, password="leak")
    with pytest.raises(adapter.UnknownKind):
        adapter.build("domain.rename", TARGETS["domain"])


def test_secrets_go_to_the_kinds_field():
    assert adapter.secret_field("api_key.create") == "token"
    assert adapter.secret_field("mailbox.create") == "password"
    assert adapter.secret_field("mailbox.password") == "password"
    assert adapter.secret_field("domain.outbound") == "password"   # unknown kinds: the old default


def test_parallel_kinds_are_the_independent_ones():
    independent = {"mailbox.create", "mailbox.delete", "alias.upsert", "alias.delete",
                   "mailbox.password", "mailbox.quota"}
    assert independent == adapter.PARALLEL_KINDS


# --- replay rules ---------------------------------------------------------------
def refusal(status, code, detail="refused"):
    return cc.ConnectorRefused(detail, status=status, detail=detail, code=code)


def test_delete_of_what_is_gone_is_done():
    c, session = client()
    assert adapter.resolve_refusal(c, "mailbox.delete", "DELETE", refusal(404, "mailbox_not_found"), None) \
        == ("done", None)
    assert session.calls == []


def test_domain_created_earlier_by_the_same_partner_is_done():
    row = {"name": "example.com", "partner_ref": "acme"}
    c, session = client({("GET", "/domains/example.com"): (200, row)})
    body = {"name": "example.com", "partner_ref": "acme"}
    assert adapter.resolve_refusal(c, "domain.create", "POST", refusal(409, "domain_exists"), body) \
        == ("done", row)


def test_domain_of_another_partner_stays_refused():
    c, _ = client({("GET", "/domains/example.com"): (200, {"partner_ref": "someone-else"})})
    exc = refusal(409, "domain_exists")
    assert adapter.resolve_refusal(c, "domain.create", "POST", exc,
                                   {"name": "example.com", "partner_ref": "acme"}) == ("refused", exc)


def test_decided_on_the_code_never_the_english_detail():
    c, session = client({("GET", "/domains/example.com"): (200, {"partner_ref": "acme"})})
    exc = refusal(409, "quota_exceeded", detail="domain_exists: already exists")
    assert adapter.resolve_refusal(c, "domain.create", "POST", exc,
                                   {"name": "example.com", "partner_ref": "acme"}) == ("refused", exc)
    assert session.calls == []


def test_mailbox_created_earlier_gets_this_password_again():
    c, session = client({("GET", "/users/info@example.com"): (200, {"email": "info@example.com"}),
                         ("PUT", "/users/info@example.com"): (200, {"email": "info@example.com"})})
    body = {"email": "info@example.com", "domain_name": "example.com", "password": "S3cret-pass"}
    outcome, _ = adapter.resolve_refusal(c, "mailbox.create", "POST", refusal(409, "email_exists"), body)
    assert outcome == "done"
    assert session.calls[-1][:3] == ("PUT", "/users/info@example.com", {"password": "S3cret-pass"})


def test_api_key_whose_answer_was_lost_learns_its_id():
    row = {"id": 42, "partner_ref": "acme"}
    c, _ = client({("PUT", "/api-keys/tok-123"): (200, row)})
    body = {"partner_ref": "acme", "token": "tok-123"}
    assert adapter.resolve_refusal(c, "api_key.create", "POST", refusal(409, "api_key_exists"), body) \
        == ("done", row)


def test_lookup_unreachable_means_try_again_later():
    c, _ = client({("GET", "/domains/example.com"): REFUSED_CONNECTION})
    outcome, exc = adapter.resolve_refusal(c, "domain.create", "POST", refusal(409, "domain_exists"),
                                           {"name": "example.com", "partner_ref": "acme"})
    assert outcome == "unavailable" and isinstance(exc, cc.ConnectorUnavailable)


def test_lookup_refused_keeps_the_first_refusal():
    c, _ = client({("GET", "/users/info@example.com"): (403, {"detail": "no", "code": "forbidden"})})
    exc = refusal(409, "email_exists")
    assert adapter.resolve_refusal(c, "mailbox.create", "POST", exc,
                                   {"email": "info@example.com", "password": "x"}) == ("refused", exc)
