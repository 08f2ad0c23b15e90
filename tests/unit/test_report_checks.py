"""reports.check_content (issue 14, docs/reports.md): the bounds applied to a
report mail before parsedmarc sees it -- its size, every gzip or zip
attachment decompressed only up to REPORT_MAX_DECOMPRESSED_BYTES (a zip's
declared sizes are not trusted), no DOCTYPE/ENTITY in XML."""

import gzip
import io
import struct
import zipfile
from email.message import EmailMessage

import pytest

from emboux_connector import reports

LIMIT = 20 * 1024 * 1024   # REPORT_MAX_DECOMPRESSED_BYTES's default


def mail(payload, subtype="gzip"):
    m = EmailMessage()
    m["From"], m["To"], m["Subject"] = "r@reporter.example", "dmarc-reports@mail.emboux.test", "Report"
    m.set_content("report")
    m.add_attachment(payload, maintype="application", subtype=subtype, filename="r")
    return m.as_bytes()


def reason(raw):
    with pytest.raises(reports.Rejected) as exc:
        reports.check_content(raw)
    return exc.value.reason


def test_a_plain_report_passes():
    reports.check_content(mail(gzip.compress(b"<feedback/>")))
    reports.check_content(mail(b'<?xml version="1.0"?><feedback/>', "xml"))


def test_gzip_bomb_stops_at_the_bound():
    assert reason(mail(gzip.compress(b"\0" * (LIMIT + 1)))) == "too_large_decompressed"


def _zip_bomb():
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("r.xml", b" " * (LIMIT + 1))
    return bytearray(buf.getvalue())


def test_zip_bomb_stops_at_the_bound():
    assert reason(mail(bytes(_zip_bomb()), "zip")) == "too_large_decompressed"


def test_zip_bomb_with_a_lying_size_inflates_no_further_than_it_claims():
    data = _zip_bomb()
    # claim 100 bytes in the central directory: zipfile stops there, the CRC fails
    cd = data.rfind(b"PK\x01\x02")
    struct.pack_into("<I", data, cd + 24, 100)
    assert reason(mail(bytes(data), "zip")) == "malformed"


def test_entities_refused_even_compressed():
    laughs = b'<?xml version="1.0"?><!DOCTYPE f [<!ENTITY a "x">]><feedback>&a;</feedback>'
    assert reason(mail(laughs, "xml")) == "xml_entities"
    assert reason(mail(gzip.compress(laughs))) == "xml_entities"
    assert reason(mail(gzip.compress(b"<!ENTITY x SYSTEM 'file:///etc/passwd'>"))) == "xml_entities"


def test_an_oversized_mail_is_not_decoded():
    assert reason(mail(b"\0" * (2 * 1024 * 1024 + 1), "octet-stream")) == "too_large"


def test_a_broken_gzip_is_malformed():
    assert reason(mail(b"\x1f\x8b" + b"garbage" * 10)) == "malformed"
