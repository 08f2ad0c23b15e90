"""The Postfix policy protocol request parser (emboux-policyd)."""

from emboux_connector.policy.protocol import parse_request


def block(**attrs):
    return "\n".join(f"{k}={v}" for k, v in attrs.items()).encode()


def test_reads_the_attributes_a_decision_needs():
    req = parse_request(block(request="smtpd_access_policy", protocol_state="RCPT",
                              sasl_username="info@example.com", sender="info@example.com",
                              recipient="bob@example.org", client_address="127.0.0.1",
                              queue_id="4ZkTqW0abc", instance="1a2b.3c", size="1234"))
    assert req == {"request": "smtpd_access_policy", "protocol_state": "RCPT",
                   "sasl_username": "info@example.com", "sender": "info@example.com",
                   "recipient": "bob@example.org", "size": "1234", "queue_id": "4ZkTqW0abc",
                   "instance": "1a2b.3c"}


def test_attribute_names_match_whole_lines_only():
    """`xsender=` or a value containing `sender=` must not be read as the sender."""
    req = parse_request(block(xsender="evil@x.y", ccert_subject="sender=evil@x.y",
                              sender="good@example.com"))
    assert req["sender"] == "good@example.com"


def test_empty_values_and_missing_attributes():
    req = parse_request(block(sender="", recipient="a@b.c"))
    assert req == {"sender": "", "recipient": "a@b.c"}
    assert parse_request(b"") == {}


def test_invalid_utf8_is_replaced_not_fatal():
    req = parse_request(b"sender=\xff\xfe@example.com\nrecipient=a@b.c")
    assert req["recipient"] == "a@b.c" and req["sender"].endswith("@example.com")
