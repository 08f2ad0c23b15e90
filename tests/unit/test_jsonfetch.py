"""The JSON pull's fetcher refuses, before any connection, what a tenant must
not make the platform fetch: not HTTPS, credentials in the URL, and (unless
JSON_PULL_ALLOW_PRIVATE) loopback, private, link-local, CGNAT and reserved
addresses, IPv4-mapped IPv6 forms included. And the crypt hashes it takes."""

import ipaddress

import pytest

from emboux_connector import jsonfetch, passwords
from emboux_connector.errors import ApiError


@pytest.fixture
def strict(monkeypatch):
    monkeypatch.delenv("JSON_PULL_ALLOW_PRIVATE", raising=False)


@pytest.mark.parametrize("ip", ["127.0.0.1", "10.1.2.3", "172.16.0.1", "192.168.1.1", "169.254.169.254",
                                "100.64.0.1", "0.0.0.0", "224.0.0.1", "::1", "fe80::1", "fc00::1",
                                "::ffff:127.0.0.1", "::ffff:10.0.0.1", "240.0.0.1"])
def test_internal_addresses_refused(strict, ip):
    assert not jsonfetch._allowed(ipaddress.ip_address(ip))


def test_public_address_allowed(strict):
    assert jsonfetch._allowed(ipaddress.ip_address("93.184.216.34"))
    assert jsonfetch._allowed(ipaddress.ip_address("2606:2800:220:1::1"))


@pytest.mark.parametrize("url", ["https://127.0.0.1/doc.json", "https://localhost:8443/doc.json",
                                 "https://[::1]/doc.json", "https://10.0.0.8/"])
def test_fetch_refuses_internal_before_connecting(strict, url):
    with pytest.raises(jsonfetch.FetchError, match="does not fetch from"):
        jsonfetch.fetch(url)


def test_dev_setting_allows_loopback(monkeypatch):
    monkeypatch.setenv("JSON_PULL_ALLOW_PRIVATE", "1")
    assert jsonfetch._allowed(ipaddress.ip_address("127.0.0.1"))


@pytest.mark.parametrize("url", ["http://example.org/d.json", "ftp://example.org/d", "https://u:p@example.org/d",
                                 "https:///d", "https://example.org:99999/d", "file:///etc/passwd"])
def test_urls_refused(url):
    with pytest.raises(jsonfetch.FetchError):
        jsonfetch.check_url(url)


@pytest.mark.parametrize("value", ["plain password", "$1$short$hash", "$2y$10$" + "a" * 53,
                                   "$6$rounds=99999999$salt$" + "a" * 86, "{SHA512-CRYPT}$6$s$" + "a" * 86,
                                   "$6$salt$" + "a" * 86 + "\n"])
def test_crypt_hashes_refused(value):
    with pytest.raises(ApiError):
        passwords.stored_from_crypt(value)
