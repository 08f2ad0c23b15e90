"""The dns-check entries of mail-client setup and transport security (issue 14):
RFC 6186/8314 SRV records, the autoconfig./autodiscover. host names, and
MTA-STS (`mta-sts.` host, `_mta-sts` TXT) with TLS-RPT (`_smtp._tls` TXT).

Each function takes dnscheck's lookup `lk(name, rtype)` and returns one
dnscheck.entry; `checks()` lists them (function, args) for dnscheck.check to
run. The SRV and host records only help clients find the settings: they are
`required: false`. MTA-STS and TLS-RPT are required once the domain set an
MTA-STS mode of testing or enforce (a policy with no id published is never
fetched; a testing policy nobody reports on tests nothing).
"""

from . import clientsetup, mtasts
from .dnscheck import entry, tags


def _srv_check(lk, name, want):
    """An SRV record with our port and target (priority and weight are the owner's)."""
    _prio, _weight, port, target = want.split()
    found = [f.rstrip(".") for f in lk(name, "SRV")]
    ok = any(f.split()[2:] == [port, target] for f in found if len(f.split()) == 4)
    st = "ok" if ok else ("wrong" if found else "missing")
    return entry("SRV", "SRV", name, want, found, st,
                 f"optional: publish SRV {name} {want}. (mail clients find the server by it, RFC 6186)",
                 required=False)


def _host_check(lk, record, name, target, required):
    """`name` reaches our web host: a CNAME to it, or the same addresses."""
    found = lk(name, "CNAME")
    if target.lower() in (f.lower() for f in found):
        return entry(record, "CNAME", name, target, found, "ok", None, required=required)
    addresses = set(lk(name, "A")) | set(lk(name, "AAAA"))
    ours = set(lk(target, "A")) | set(lk(target, "AAAA"))
    if addresses and addresses == ours:
        return entry(record, "CNAME", name, target, sorted(addresses), "ok", None, required=required)
    st = "wrong" if (found or addresses) else "missing"
    return entry(record, "CNAME", name, target, found or sorted(addresses), st,
                 ("" if required else "optional: ") + f"publish CNAME {name} -> {target}.", required=required)


def _mta_sts_check(lk, domain, want, required):
    """One v=STSv1 record at _mta-sts.<domain> whose id is the served policy's."""
    name = f"_mta-sts.{domain}"
    found = [v for v in lk(name, "TXT") if v.strip().lower().startswith("v=stsv1")]
    if want is None:
        return entry("MTA-STS", "TXT", name, None, found, "missing" if not found else "wrong",
                     "optional: set a mode with PUT /domains/{name}/mta-sts, then publish the record it gives"
                     if not found else "no MTA-STS mode is set here: PUT /domains/{name}/mta-sts, or remove "
                     "the record", required=False)
    if len(found) == 1 and tags(found[0]).get("id") == tags(want).get("id"):
        return entry("MTA-STS", "TXT", name, want, found, "ok", None, required=required)
    fix = (f'publish TXT "{want}" at {name}' if not found else
           f'replace the record with TXT "{want}" (the id changes whenever the policy does)'
           if len(found) == 1 else "keep a single v=STSv1 record: " + want)
    return entry("MTA-STS", "TXT", name, want, found, "wrong" if found else "missing", fix, required=required)


def _tlsrpt_check(lk, domain, want, required):
    """One v=TLSRPTv1 record at _smtp._tls.<domain> with a rua= (ours or the owner's)."""
    name = f"_smtp._tls.{domain}"
    found = [v for v in lk(name, "TXT") if v.strip().lower().startswith("v=tlsrptv1")]
    if len(found) == 1 and tags(found[0]).get("rua"):
        return entry("TLS-RPT", "TXT", name, want, found, "ok", None, required=required)
    prefix = "" if required else "optional: "
    fix = (f'{prefix}publish TXT "{want}" at {name} (receivers report TLS failures there)' if not found else
           f'{prefix}keep one v=TLSRPTv1 record with a rua= address: "{want}"')
    return entry("TLS-RPT", "TXT", name, want, found, "wrong" if found else "missing", fix, required=required)


def checks(domain, sts_row):
    """(function, *args) of every entry, for dnscheck.check(extra=...)."""
    web = clientsetup.public_host()
    out = [(_srv_check, name, want) for name, want in clientsetup.srv_records(domain)]
    out += [(_host_check, "autoconfig", f"autoconfig.{domain}", web, False),
            (_host_check, "autodiscover", f"autodiscover.{domain}", web, False)]
    enforcing = sts_row is not None and sts_row["mode"] in ("testing", "enforce")
    want = (mtasts.sts_record(domain, mtasts.policy_text(sts_row["mode"], sts_row["max_age"]))["value"]
            if sts_row is not None else None)
    if sts_row is not None:
        out.append((_host_check, "MTA-STS policy host", f"mta-sts.{domain}", web, enforcing))
    out.append((_mta_sts_check, domain, want, enforcing))
    out.append((_tlsrpt_check, domain, mtasts.tlsrpt_record(domain)["value"], enforcing))
    return out
