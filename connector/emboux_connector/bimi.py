"""BIMI logos: an SVG uploaded by a tenant, checked against the SVG Tiny
Portable/Secure profile (draft-svg-tiny-ps-abrotman) before it is stored,
then served publicly at `https://<PUBLIC_HOST>/bimi/<domain>/logo.svg` --
the `l=` of the BIMI record `dns-check` proposes.

The file is parsed with defusedxml (no DTD, no entities, no external
references: a billion-laughs or XXE upload is refused, never expanded) and
then walked: only SVG Tiny PS elements, no scripts, event handlers,
animation, raster images or references outside the document, and the
profile's root attributes (`version="1.2"`, `baseProfile="tiny-ps"`, a
`<title>`, no x/y). Mailbox providers refuse anything else; refusing it at
upload says why, where a receiver would silently show no logo.
"""

import hashlib
import re

from defusedxml import ElementTree as SafeET
from defusedxml.common import DefusedXmlException

from .errors import ApiError

MAX_BYTES = 32 * 1024      # the BIMI group's recommended maximum
SVG_NS = "http://www.w3.org/2000/svg"
XLINK_NS = "http://www.w3.org/1999/xlink"
# SVG Tiny 1.2 elements the PS profile keeps (no script, animation, image,
# foreignObject, video/audio, handlers, or switch)
ALLOWED = {"svg", "title", "desc", "metadata", "g", "defs", "use", "path", "rect", "circle", "ellipse", "line",
           "polyline", "polygon", "text", "tspan", "textArea", "tbreak", "linearGradient", "radialGradient",
           "stop", "solidColor"}
_URL = re.compile(r"url\(\s*['\"]?\s*([^)'\"\s]*)", re.I)


def _refuse(why):
    raise ApiError(400, f"svg: {why}", code="bimi_svg_invalid")


def _local(tag):
    """'{ns}name' -> (ns, name)."""
    if tag.startswith("{"):
        ns, _, name = tag[1:].partition("}")
        return ns, name
    return "", tag


def _check_references(el, name):
    for attr, value in el.attrib.items():
        ans, aname = _local(attr)
        if aname.lower().startswith("on"):
            _refuse(f"event handler attribute {aname} on <{name}> is not allowed")
        if aname == "href" and ans in ("", XLINK_NS) and not value.strip().startswith("#"):
            _refuse(f"<{name}> refers outside the document ({value[:80]!r}): only #fragment references")
        for ref in _URL.findall(value):
            if ref and not ref.startswith("#"):
                _refuse(f"<{name}> {aname} refers outside the document ({ref[:80]!r})")


def validate(svg_text):
    """The logo's bytes when the text is an SVG Tiny PS document, else 400
    `bimi_svg_invalid` naming what is wrong."""
    data = svg_text.encode("utf-8")
    if len(data) > MAX_BYTES:
        _refuse(f"the logo is {len(data)} bytes; at most {MAX_BYTES} (32 KB)")
    try:
        root = SafeET.fromstring(data, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except DefusedXmlException:
        _refuse("a DTD, entities or external references are not allowed")
    except (SafeET.ParseError, ValueError, RecursionError) as exc:
        _refuse(f"not well-formed XML ({exc})"[:200])
    ns, name = _local(root.tag)
    if ns != SVG_NS or name != "svg":
        _refuse("the root element must be <svg> in the SVG namespace (http://www.w3.org/2000/svg)")
    if root.get("baseProfile") != "tiny-ps":
        _refuse('the root <svg> must have baseProfile="tiny-ps" (SVG Tiny PS)')
    if root.get("version") != "1.2":
        _refuse('the root <svg> must have version="1.2"')
    if root.get("x") is not None or root.get("y") is not None:
        _refuse("the root <svg> must not have x or y attributes")
    if root.find(f"{{{SVG_NS}}}title") is None:
        _refuse("the root <svg> must have a <title> (the brand's name)")
    for el in root.iter():
        ens, ename = _local(el.tag)
        if ens != SVG_NS:
            _refuse(f"element <{ename}> is not SVG (namespace {ens or 'none'!r})")
        if ename not in ALLOWED:
            _refuse(f"element <{ename}> is not allowed in SVG Tiny PS")
        _check_references(el, ename)
    return data


def digest(data):
    return hashlib.sha256(data).hexdigest()


def logo_url(public_host, domain):
    return f"https://{public_host}/bimi/{domain}/logo.svg"
