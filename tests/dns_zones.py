"""Zones served by the dev stack's NSD (tests/ is on sys.path through
tests/conftest.py): the identity tests publish DKIM/SPF/DMARC records with
it, and every test domain created with a client token proves its ownership
with it (tests/conftest.py: Tenant.domain)."""

import os
import subprocess
import time
import contextlib


class Zones:
    """write(zone, records) then query through DNS_RESOLVER. Records:
    (name relative or absolute, type, rdata)."""

    def __init__(self, env):
        self.dir, self.conf = env["DNS_ZONES_DIR"], env["NSD_CONF"]
        host, _, port = env["DNS_RESOLVER"].rpartition(":")
        self.resolver = (host, int(port))
        self.created = []
        self.serials = {}

    def _ctl(self, *args):
        return subprocess.run(["nsd-control", "-c", self.conf, *args], capture_output=True, text=True, timeout=20)

    def write(self, zone, records):
        # a new serial at every write, two in the same second included: the
        # wait below recognises the new zone by its serial
        serial = self.serials[zone] = max(int(time.time()), self.serials.get(zone, 0) + 1)
        lines = [f"$ORIGIN {zone}.", "$TTL 1",
                 f"@ IN SOA ns.{zone}. hostmaster.{zone}. ({serial} 60 60 60 1)",
                 f"@ IN NS ns.{zone}.", "ns IN A 127.0.0.1"]
        for name, rtype, rdata in records:
            if rtype == "TXT":
                chunks = [rdata[i:i + 250] for i in range(0, len(rdata), 250)] or [""]
                rdata = " ".join('"' + c.replace('"', '\\"') + '"' for c in chunks)
            lines.append(f"{name} IN {rtype} {rdata}")
        with open(os.path.join(self.dir, f"{zone}.zone"), "w") as f:
            f.write("\n".join(lines) + "\n")
        r = self._ctl("addzone", zone, "emboux")
        if zone not in self.created:
            self.created.append(zone)
        if "already" in (r.stdout + r.stderr).lower() or r.returncode != 0:
            r = self._ctl("reload", zone)
            assert r.returncode == 0, r.stdout + r.stderr
        self._wait(zone)

    def _wait(self, zone):
        import dns.resolver
        res = dns.resolver.Resolver(configure=False)
        host, port = self.resolver
        res.nameservers, res.port = [host], port
        deadline = time.monotonic() + 10
        while True:
            try:
                serial = res.resolve(zone, "SOA").rrset[0].serial
                with open(os.path.join(self.dir, f"{zone}.zone")) as f:
                    if f"({serial} " in f.read():
                        return
            except Exception:
                pass
            if time.monotonic() > deadline:
                raise AssertionError(f"NSD did not load {zone}")
            time.sleep(0.1)

    def remove(self, zone):
        self._ctl("delzone", zone)
        with contextlib.suppress(FileNotFoundError):
            os.remove(os.path.join(self.dir, f"{zone}.zone"))
        if zone in self.created:
            self.created.remove(zone)

    def cleanup(self):
        for zone in list(self.created):
            self.remove(zone)


def publish_ownership(zones, domain):
    """Publish the ownership TXT record of a domain (its JSON from the API)
    in a zone of its own."""
    rec = domain["ownership_record"]
    zones.write(domain["name"], [(rec["name"] + ".", "TXT", rec["value"])])


def prove_ownership(zones, client, domain):
    """The integrator's flow: publish the TXT record, ask for the check.
    client: anything with .post(path) (a Tenant, or the Api with the master).
    The proof is recorded: the zone goes again at once."""
    publish_ownership(zones, domain)
    try:
        # A lookup that failed (not: found nothing) is asked again, a bounded
        # number of times: NSD briefly answers nothing while another part of
        # the shared dev stack reloads it (seen once in a full run).
        for _ in range(5):
            r = client.post(f"/domains/{domain['name']}/ownership/check")
            if r.status_code != 200 or not r.json()["detail"].startswith("DNS lookup failed"):
                break
            publish_ownership(zones, domain)
        assert r.status_code == 200 and r.json()["ownership"] == "verified", r.text
    finally:
        zones.remove(domain["name"])
    return r.json()
