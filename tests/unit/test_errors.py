"""Error codes are the stable contract clients match on: derived from the
contract's fixed messages, overridable at the raise site."""

import pytest

from emboux_connector.errors import ApiError, code_for, validation_detail


@pytest.mark.parametrize("status,detail,code", [
    (403, "Invalid authorization header format", "auth_header_invalid"),
    (403, "Invalid API key", "auth_invalid_key"),
    (403, "API key is deactivated", "auth_key_deactivated"),
    (403, "API key has expired", "auth_key_expired"),
    (403, "Master token required", "master_required"),
    (403, "Domain quota exceeded: 5/5", "quota_exceeded"),
    (403, "Mailbox quota exceeded for this domain: 3/3", "quota_exceeded"),
    (403, "Alias quota exceeded: 5/5", "quota_exceeded"),
    (400, "Domain already exists", "domain_exists"),
    (400, "Email already exists", "email_exists"),
    (400, "Alias source already exists", "alias_exists"),
    (404, "Domain not found", "domain_not_found"),
    (404, "User not found", "mailbox_not_found"),
    (400, "name: invalid domain name 'x'", "invalid_field"),
    (400, "parent or wildcard is required", "invalid"),
    (404, "Not Found", "not_found"),
    (500, "Internal server error", "internal_error"),
    (418, "I'm a teapot", "error"),
])
def test_codes_from_contract_messages(status, detail, code):
    assert code_for(status, detail) == code
    assert ApiError(status, detail).code == code


def test_raise_site_code_wins():
    assert ApiError(400, "Domain already exists", code="special").code == "special"


def test_validation_detail_names_fields_in_order():
    msgs = {"quota_mb": ["Must be greater than or equal to 0."], "email": ["Missing data."],
            "_schema": ["Invalid input type."]}
    assert validation_detail(msgs) == ("Invalid input type.; email: Missing data.; "
                                       "quota_mb: Must be greater than or equal to 0.")
