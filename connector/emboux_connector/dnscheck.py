"""GET /domains/{name}/dns-check: what the domain's DNS says against what its
provider and we need, one entry per record.

Each entry: {record, type, name, expected, found: [...], status, fix,
lookup_failed} with status ok / missing / wrong (and `required` false for
the optional BIMI); `lookup_failed` says the resolver did not answer (a
timeout, SERVFAIL, REFUSED), so that `missing` may be wrong. The resolver
is configurable: DNS_RESOLVER=host[:port] (else the system's), DNS_TIMEOUT
seconds (default 3).
"""

import re

import dns.exception
import dns.resolver

from . import settings

DMARC_STAGES = ("none", "quarantine", "reject")


def mx_host():
    return (settings.get("MX_HOST") or settings.get("MAIL_HOSTNAME")).rstrip(".")


def resolver():
    spec = settings.get("DNS_RESOLVER")
    r = dns.resolver.Resolver(configure=not spec)
    if spec:
        host, _, port = spec.rpartition(":") if spec.count(":") == 1 else (spec, "", "")
        r.nameservers = [host or spec]
        r.port = int(port) if port else 53
    t = float(settings.get("DNS_TIMEOUT"))
    r.timeout, r.lifetime = t, t
    r.cache = None
    return r


class LookupFailed(Exception):
    pass


def lookup(res, name, rtype, errors=None):
    """Answers as strings; [] for NXDOMAIN / no data. A failed lookup (timeout,
    SERVFAIL, REFUSED) is [] too, noted in `errors` when given, else raised."""
    try:
        ans = res.resolve(name, rtype, raise_on_no_answer=False)
    except dns.resolver.NXDOMAIN:
        return []
    except (dns.resolver.NoNameservers, dns.exception.Timeout) as exc:
        if errors is None:
            raise LookupFailed(f"{name} {rtype}: {type(exc).__name__}") from exc
        why = "no answer from the resolver" if isinstance(exc, dns.resolver.NoNameservers) else "timeout"
        errors.append(f"{name} {rtype}: {why}")
        return []
    if ans.rrset is None:
        return []
    out = []
    for rd in ans.rrset:
        if rtype == "TXT":
            out.append(b"".join(rd.strings).decode("utf-8", "replace"))
        elif rtype == "MX":
            out.append(f"{rd.preference} {rd.exchange.to_text().rstrip('.')}")
        elif rtype == "CNAME":
            out.append(rd.target.to_text().rstrip("."))
        else:
            out.append(rd.to_text())
    return out


def tags(value):
    """'v=DMARC1; p=none' -> {'v': 'DMARC1', 'p': 'none'} (lower-case keys)."""
    out = {}
    for part in value.split(";"):
        if "=" in part:
            k, _, v = part.partition("=")
            out[k.strip().lower()] = v.strip()
    return out


def entry(record, rtype, name, expected, found, status, fix, **extra):
    return {"record": record, "type": rtype, "name": name, "expected": expected, "found": found,
            "status": status, "fix": fix if status != "ok" else None, **extra}


def dkim_txt_published(domain, selector, public_b64):
    """(published?, found values or None when DNS failed) for one local key."""
    try:
        found = lookup(resolver(), f"{selector}._domainkey.{domain}", "TXT")
    except LookupFailed:
        return False, None
    return any(tags(v).get("p", "").replace(" ", "") == public_b64 for v in found), found


def _spf_check(lk, domain, mech):
    """Exactly one v=spf1 record that includes the provider's mechanism."""
    found = [v for v in lk(domain, "TXT") if v.lower().startswith("v=spf1")]
    expected = f"v=spf1 {mech} ~all"
    if not found:
        return entry("SPF", "TXT", domain, expected, [], "missing", f'publish TXT "{expected}" at {domain}')
    if len(found) > 1:
        return entry("SPF", "TXT", domain, expected, found, "wrong",
                     "merge the SPF records into one (several v=spf1 records is a permerror)")
    terms = found[0].lower().split()
    if mech.lower() not in terms:
        return entry("SPF", "TXT", domain, expected, found, "wrong",
                     f"add {mech} to the SPF record before its all term")
    return entry("SPF", "TXT", domain, expected, found, "ok", None)


def _mx_check(lk, domain):
    """Inbound is always ours: our host and no other."""
    want = mx_host()
    found = lk(domain, "MX")
    hosts = [f.split(" ", 1)[1].lower() for f in found]
    if want in hosts:
        st = "ok" if len(set(hosts)) == 1 else "wrong"
        fix = f"remove the other MX records; keep only {want}"
    else:
        st = "missing" if not found else "wrong"
        fix = f"publish MX 10 {want}. for {domain}" + (" and remove the others" if found else "")
    return entry("MX", "MX", domain, f"10 {want}", found, st, fix)


def _verification_check(lk, verification):
    """The provider's verification TXT (SES only)."""
    name, value = verification["name"], verification["value"]
    found = lk(name, "TXT")
    if value in found:
        return entry("verification", "TXT", name, value, found, "ok", None)
    return entry("verification", "TXT", name, value, found, "wrong" if found else "missing",
                 f'publish TXT "{value}" at {name}')


def _dkim_check(lk, rec):
    """One expected DKIM record: the CNAME target, or a TXT with the same p= key."""
    found = lk(rec["name"], rec["type"])
    if rec["type"] == "CNAME":
        ok = rec["value"].rstrip(".").lower() in [f.lower() for f in found]
    else:
        want_p = tags(rec["value"]).get("p", "").replace(" ", "")
        ok = any(tags(f).get("p", "").replace(" ", "") == want_p for f in found)
    if ok:
        return entry("DKIM", rec["type"], rec["name"], rec["value"], found, "ok", None,
                     selector=rec.get("selector"))
    return entry("DKIM", rec["type"], rec["name"], rec["value"], found,
                 "wrong" if found else "missing",
                 f"publish {rec['type']} {rec['name']} -> {rec['value'][:60]}"
                 f"{'...' if len(rec['value']) > 60 else ''} (exactly this value)",
                 selector=rec.get("selector"))


def _dmarc_records(lk, name):
    return [v for v in lk(name, "TXT") if v.strip().lower().startswith("v=dmarc1")]


ALIGNED_PASS_TARGET = 98.0   # % of aligned passes before raising p= (the usual precondition)


def _next_dmarc_step(nxt, aligned_pass):
    """The staged roll-out none -> quarantine -> reject, judged by the aligned
    pass rate of the aggregate reports when it is known (percent, or None)."""
    if nxt is None:
        return None
    if aligned_pass is None:
        return (f"when the aggregate reports show only aligned mail ({ALIGNED_PASS_TARGET:g} % aligned "
                f"passes or more), raise p= to {nxt}")
    if aligned_pass >= ALIGNED_PASS_TARGET:
        return f"aligned pass {aligned_pass:.1f} % >= {ALIGNED_PASS_TARGET:g} %: raise p= to {nxt}"
    return (f"aligned pass {aligned_pass:.1f} % < {ALIGNED_PASS_TARGET:g} %: authenticate the unaligned "
            f"sources in the aggregate reports before raising p= to {nxt}")


def _dmarc_check(lk, domain, org_domain, aligned_pass=None):
    """Present, one record, a known policy; the staged rollout none -> quarantine -> reject.
    The entry's `policy` is what BIMI's check needs."""
    name = f"_dmarc.{domain}"
    from .reports import dmarc_rua   # the platform's report address (reports.py imports this module)
    expected = f"v=DMARC1; p=none; rua={dmarc_rua()}"
    found = _dmarc_records(lk, name)
    inherited = None
    if not found and org_domain:
        found = _dmarc_records(lk, f"_dmarc.{org_domain}")
        inherited = org_domain if found else None
    if not found:
        return entry("DMARC", "TXT", name, expected, [], "missing",
                     f'publish TXT "{expected}" at {name}, then move p= to quarantine and reject '
                     "once the reports are clean", policy=None, stage=None)
    if len(found) > 1:
        return entry("DMARC", "TXT", name, expected, found, "wrong",
                     "keep a single DMARC record", policy=None, stage=None)
    t = tags(found[0])
    policy = (t.get("sp") if inherited and "sp" in t else t.get("p", "")).lower()
    if policy not in DMARC_STAGES:
        return entry("DMARC", "TXT", name, expected, found, "wrong",
                     "p= must be none, quarantine or reject", policy=policy or None, stage=None)
    stage = DMARC_STAGES.index(policy) + 1
    nxt = {"none": "quarantine", "quarantine": "reject"}.get(policy)
    return entry("DMARC", "TXT", name, expected, found, "ok", None, policy=policy,
                 stage=f"{stage}/3", next_step=_next_dmarc_step(nxt, aligned_pass),
                 inherited_from=inherited)


def _bimi_check(lk, domain, dmarc_policy, logo_url=None):
    """Optional; points at an SVG over https; only meaningful once DMARC enforces.
    With a logo uploaded here (PUT /domains/{name}/bimi), l= must be its URL."""
    name = f"default._bimi.{domain}"
    expected = f"v=BIMI1; l={logo_url}" if logo_url else "v=BIMI1; l=https://<your host>/logo.svg"
    found = [v for v in lk(name, "TXT") if v.strip().lower().startswith("v=bimi1")]
    enforcing = dmarc_policy in ("quarantine", "reject")
    if not found:
        first = "" if logo_url else "upload the logo (SVG Tiny PS) with PUT /domains/{name}/bimi, then "
        return entry("BIMI", "TXT", name, expected, [], "missing",
                     f'optional: {first}publish TXT "{expected}" at {name}'
                     + ("" if enforcing else " (after DMARC is at quarantine or reject)"), required=False)
    loc = tags(found[0]).get("l", "")
    if not re.match(r"^https://[^\s/]+/\S*\.svg$", loc, re.I):
        return entry("BIMI", "TXT", name, expected, found, "wrong",
                     "l= must be an https URL of an SVG (Tiny PS) logo", required=False)
    if logo_url and loc != logo_url:
        return entry("BIMI", "TXT", name, expected, found, "wrong",
                     f"l= must be {logo_url}, where the logo uploaded here is served", required=False)
    if not enforcing:
        return entry("BIMI", "TXT", name, expected, found, "wrong",
                     "BIMI is ignored until DMARC is enforcing: set p=quarantine (pct=100) or p=reject",
                     required=False)
    return entry("BIMI", "TXT", name, expected, found, "ok", None, required=False)


def check(domain, spf_mechanism, dkim_expected, verification=None, org_domain=None, bimi_logo_url=None,
          extra=(), dmarc_aligned_pass=None):
    """Run every check.

    spf_mechanism: what the domain's SPF record must include (the provider's)
    dkim_expected: [{type, name, value}] (CNAME for SES, TXT otherwise)
    verification: {type, name, value} or None (SES _amazonses TXT)
    org_domain: the parent whose DMARC applies when the domain has none
    bimi_logo_url: the URL of the logo uploaded here, if any
    extra: further checks, (fn(lookup, *args) -> entry, *args) each (setupdns.py)
    dmarc_aligned_pass: % of aligned passes in the aggregate reports, when known:
    the DMARC entry's next_step says whether to raise p= now
    """
    res = resolver()

    def safe(fn, *args):
        """fn(lookup, *args) -> entry; a failed lookup is named in a failing entry's fix."""
        errors = []

        def lk(name, rtype):
            return lookup(res, name, rtype, errors)
        e = fn(lk, *args)
        e["lookup_failed"] = bool(errors)
        if errors and e["status"] != "ok":
            e["fix"] = f"{e['fix']} (DNS lookup failed: {'; '.join(errors)})"
        return e

    out = [safe(_mx_check, domain), safe(_spf_check, domain, spf_mechanism)]
    if verification:
        out.append(safe(_verification_check, verification))
    out.extend(safe(_dkim_check, rec) for rec in dkim_expected)
    if not dkim_expected:
        out.append(entry("DKIM", "TXT", f"*._domainkey.{domain}", None, [], "missing",
                         "no DKIM key yet: POST /domains/{name}/verify creates or requests one",
                         lookup_failed=False))
    dmarc = safe(_dmarc_check, domain, org_domain, dmarc_aligned_pass)
    out.append(dmarc)
    # BIMI counts only under an enforcing policy of a DMARC record that checked ok
    out.append(safe(_bimi_check, domain, _enforcing_policy(dmarc), bimi_logo_url))
    out.extend(safe(fn, *args) for fn, *args in extra)
    return out


def _enforcing_policy(dmarc):
    """The DMARC policy BIMI may count on: an ok record, and quarantine only at pct=100."""
    if dmarc["status"] != "ok":
        return None
    if dmarc.get("policy") == "quarantine" and dmarc["found"]:
        pct = tags(dmarc["found"][0]).get("pct", "100")
        if pct.strip() != "100":
            return None
    return dmarc.get("policy")
