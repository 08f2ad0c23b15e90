"""connector/emboux_connector/vacation.py: validation and the generated
Sieve script (no services; tests/inbound/test_vacation_replies.py compiles
and runs it in Dovecot)."""

import datetime as dt

import pytest

from emboux_connector import vacation
from emboux_connector.errors import ApiError


def _settings(**kw):
    return {**vacation.DEFAULTS, "enabled": True, "subject": "S", "body": "B", **kw}


def test_disabled_has_no_script():
    assert vacation.sieve_script({**vacation.DEFAULTS}) is None


def test_quoted_escapes_backslash_and_quote():
    assert vacation.quoted('a"b\\c') == '"a\\"b\\\\c"'
    assert vacation.quoted('";\\') == '"\\";\\\\"'


def test_multiline_dot_stuffs_and_uses_crlf():
    text = vacation.multiline(".\n..x\r\nplain\r.")
    assert text == "text:\r\n..\r\n...x\r\nplain\r\n..\r\n.\r\n"
    # no line of the payload is the terminator
    lines = text.split("\r\n")
    assert lines.index(".") == len(lines) - 2


def test_script_with_dates_and_days():
    s = _settings(subject='Out "now" \\', body="Hi\n.\nBye", start=dt.date(2030, 1, 2),
                  end=dt.date(2030, 1, 9), days=3)
    script = vacation.sieve_script(s)
    assert 'require ["vacation", "date", "relational"];' in script
    assert 'currentdate :value "ge" "date" "2030-01-02"' in script
    assert 'currentdate :value "le" "date" "2030-01-09"' in script
    assert ':days 3 :subject "Out \\"now\\" \\\\"' in script
    assert "text:\r\nHi\r\n..\r\nBye\r\n.\r\n;" in script


def test_script_without_dates_has_no_condition():
    script = vacation.sieve_script(_settings())
    assert script.endswith('require ["vacation"];\r\nvacation :days 7 :subject "S"\r\ntext:\r\nB\r\n.\r\n;\r\n')


@pytest.mark.parametrize("body,field,code", [
    ({"enabled": True, "subject": "x\ry", "body": "B"}, "subject", "invalid_field"),
    ({"enabled": True, "subject": "x\x00", "body": "B"}, "subject", "invalid_field"),
    ({"enabled": True, "subject": "S", "body": ""}, "body", "invalid_field"),
    ({"enabled": False, "start": "2030-01-02", "end": "2030-01-01"}, "end", "vacation_dates"),
    ({"enabled": False, "days": 1.5}, "days", "invalid_field"),
])
def test_merge_refuses(body, field, code):
    with pytest.raises(ApiError) as err:
        vacation.merge(dict(vacation.DEFAULTS), body)
    assert err.value.status == 400 and err.value.code == code and err.value.detail.startswith(field + ":")


def test_merge_keeps_fields_not_given():
    current = _settings(start=dt.date(2030, 1, 2), days=9)
    assert vacation.merge(current, {"enabled": False}) == {**current, "enabled": False}
