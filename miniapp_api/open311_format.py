"""Open311 GeoReport v2 on the wire: reading what clients send, and writing JSON or XML with the spec's names.

JSON follows the spec's Spark convention (a list of objects where the XML has a root with repeated items); XML
is built with ElementTree, so text is escaped, and carries the XML declaration the spec asks for. What a
public answer says about people is masked here: phone numbers, e-mail addresses and ID-card numbers in free
text. Contact fields of a POST are never stored, so no answer can show them.
"""

from __future__ import annotations

import json
import math
import re
import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal
from urllib.parse import urlsplit

from fastapi import Response

from core import clock
from core.catalog.models import Subclass
from core.geo.datum import to_wgs84
from core.reports.public import ReportView
from core.reports.service import MAX_TEXT

Format = Literal["json", "xml"]
FORMATS: tuple[Format, ...] = ("json", "xml")
MEDIA_TYPES = {"json": "application/json; charset=utf-8", "xml": "text/xml; charset=utf-8"}
# Plural element → the element of each item, for lists inside an object (the service definition).
ITEM_TAGS = {"attributes": "attribute", "values": "value"}
SERVICE_TYPE = "realtime"  # the service_request_id is known as soon as the POST returns
MAX_ADDRESS = 256  # Report.address
MAX_MEDIA_URL = 512  # Report.media_url
MAX_CONTACT = 256
CONTACT_FIELDS = ("email", "device_id", "account_id", "first_name", "last_name", "phone")
KNOWN_FIELDS = frozenset(
    {"api_key", "jurisdiction_id", "service_code", "lat", "long", "address_string", "address_id"}
    | {"description", "media_url", *CONTACT_FIELDS}
)
_ATTRIBUTE = re.compile(r"attribute\[([^\]]+)\](\[\])?")
# XML 1.0 cannot carry most control characters, even escaped; a report's text could hold them.
_NOT_XML = re.compile("[^\x09\x0a\x0d\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_MOBILE = re.compile(r"(?<!\d)(?:\+?86[ -]?)?(1[3-9]\d)[ -]?\d{4}[ -]?(\d{4})(?!\d)")
_LANDLINE = re.compile(r"(?<!\d)(0\d{2,3})[ -]?\d{3,4}(\d{4})(?!\d)")
_ID_CARD = re.compile(r"(?<!\d)(\d{6})\d{8}(\d{3}[\dXx])(?![\dXx])")
_EMAIL = re.compile(r"([A-Za-z0-9])[A-Za-z0-9._%+-]*@([A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+)")


class Open311Error(Exception):
    """A refusal in the spec's terms: the HTTP status (400, 403 or 404) and a description for the client."""

    def __init__(self, status: int, description: str, *, code: str = "", headers: dict[str, str] | None = None) -> None:
        super().__init__(description)
        self.status = status
        self.description = description
        self.code = code or f"open311_{status}"
        self.headers = headers or {}


# --- writing -------------------------------------------------------------------------------------------------


def w3c(moment: datetime | None) -> str | None:
    """A W3C date-time in China time with its offset, to the second (2026-05-01T09:30:00+08:00)."""
    return clock.china(moment).replace(microsecond=0).isoformat() if moment is not None else None


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return _NOT_XML.sub("", str(value))


def _append(parent: ET.Element, tag: str, value: Any) -> None:
    element = ET.SubElement(parent, tag)
    if isinstance(value, Mapping):
        for key, child in value.items():
            _append(element, key, child)
    elif isinstance(value, list):
        for item in value:
            _append(element, ITEM_TAGS.get(tag, "item"), item)
    elif value is not None:
        element.text = _text(value)


def to_xml(root: str, item: str | None, content: Mapping[str, Any] | Sequence[Mapping[str, Any]]) -> bytes:
    """XML with the declaration: a list becomes <root><item>…</item>…</root>, an object becomes <root>…</root>."""
    element = ET.Element(root)
    if item is None:
        assert isinstance(content, Mapping)
        for key, value in content.items():
            _append(element, key, value)
    else:
        for entry in content:
            _append(element, item, entry)
    return b'<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(element, encoding="utf-8", xml_declaration=False)


def render(
    fmt: Format,
    root: str,
    item: str | None,
    content: Mapping[str, Any] | Sequence[Mapping[str, Any]],
    *,
    status: int = 200,
) -> Response:
    """One answer in the asked format with the spec's Content-Type."""
    if fmt == "json":
        body = json.dumps(content, ensure_ascii=False, separators=(",", ":")).encode()
    else:
        body = to_xml(root, item, content)
    return Response(body, status_code=status, media_type=MEDIA_TYPES[fmt])


def error_response(fmt: Format, error: Open311Error) -> Response:
    """The spec's error list: [{"code": 400, "description": "..."}] or <errors><error>…</error></errors>."""
    response = render(fmt, "errors", "error", [{"code": error.status, "description": error.description}])
    response.status_code = error.status
    response.headers.update(error.headers)
    return response


def format_of(path: str) -> Format:
    """The format a path asks for by its suffix; XML (the spec's required format) when it names none we serve."""
    suffix = path.rsplit(".", 1)[-1] if "." in path.rsplit("/", 1)[-1] else ""
    return "json" if suffix == "json" else "xml"


def service_code(subclass: Subclass) -> str:
    """The URL-safe service code of a subclass: kind-code (event-0102, component-0101)."""
    return f"{subclass.kind}-{subclass.code}"


def subclass_ref(code: str) -> str | None:
    """event-0102 → "event:0102", the reports service's subclass reference; None when it is not of that form."""
    kind, sep, number = code.partition("-")
    if not sep or kind not in ("event", "component") or not (len(number) == 4 and number.isdigit()):
        return None
    return f"{kind}:{number}"


def attributes_of(subclass: Subclass) -> list[dict[str, Any]]:
    """The service definition's attributes: a component's code, for problems with a coded component (部件)."""
    if subclass.kind != "component":
        return []
    return [
        {
            "variable": True,
            "code": "component_code",
            "datatype": "string",
            "required": False,
            "datatype_description": "16 digits: district (6), class (4), serial (6)",
            "order": 1,
            "description": "The code on the component's plate (部件编码), when it can be read",
        }
    ]


def service(subclass: Subclass, group: str) -> dict[str, Any]:
    return {
        "service_code": service_code(subclass),
        "service_name": subclass.name,
        "description": subclass.filing_condition,
        "metadata": bool(attributes_of(subclass)),
        "type": SERVICE_TYPE,
        "keywords": ", ".join(subclass.keywords),
        "group": group,
    }


def definition(subclass: Subclass) -> dict[str, Any]:
    return {"service_code": service_code(subclass), "attributes": attributes_of(subclass)}


def mask_personal(text: str) -> str:
    """Free text as the public may read it: 13812345678 → 138****5678, zhang.san@x.cn → z***@x.cn, ID numbers."""
    text = _ID_CARD.sub(lambda m: f"{m[1]}********{m[2]}", text)
    text = _MOBILE.sub(lambda m: f"{m[1]}****{m[2]}", text)
    text = _LANDLINE.sub(lambda m: f"{m[1]}-****{m[2]}", text)
    return _EMAIL.sub(lambda m: f"{m[1]}***@{m[2]}", text)


def _status_notes(view: ReportView) -> str:
    notes = view.status_text
    last = view.steps[-1] if view.steps else None
    if last is not None and last.action == "reject" and last.note:
        notes = f"{notes}：{last.note}"
    return mask_personal(notes)


def _point(view: ReportView) -> tuple[float | None, float | None]:
    report = view.report
    if report.lon is not None and report.lat is not None:
        lon, lat = report.lon, report.lat
    else:  # not located yet: the point as received, in WGS-84
        lon, lat = to_wgs84(report.raw_lon, report.raw_lat, report.datum)
    if not (math.isfinite(lon) and math.isfinite(lat)):
        return None, None
    return round(lat, 7), round(lon, 7)


def service_request(view: ReportView, subclass: Subclass | None) -> dict[str, Any]:
    """One report as an Open311 service request (public: no reporter, personal data in text masked)."""
    report = view.report
    lat, lon = _point(view)
    return {
        "service_request_id": str(report.id),
        "status": "open" if view.is_open else "closed",
        "status_notes": _status_notes(view),
        "service_name": subclass.name if subclass else None,
        "service_code": service_code(subclass) if subclass else None,
        # A report held for a person's look (content review) keeps its words to itself until then.
        "description": None if report.flagged else mask_personal(report.text) or None,
        "agency_responsible": view.department_name or None,
        "service_notice": None,
        "requested_datetime": w3c(report.created_at),
        "updated_datetime": w3c(view.updated_at),
        "expected_datetime": w3c(view.expected_at),
        "address": mask_personal(report.address) or None,
        "lat": lat,
        "long": lon,
        "media_url": report.media_url,
    }


# --- reading -------------------------------------------------------------------------------------------------


@dataclass
class PostedRequest:
    """A POST requests.json as received: every field a string, attribute[code] values in `attributes`."""

    fields: dict[str, str] = field(default_factory=dict)
    attributes: dict[str, list[str]] = field(default_factory=dict)

    def get(self, name: str) -> str:
        return self.fields.get(name, "").strip()


def posted(items: Sequence[tuple[str, Any]]) -> PostedRequest:
    """Form or JSON pairs → a PostedRequest; a field sent twice, a non-text value or an unknown field is a 400."""
    result = PostedRequest()
    for name, value in items:
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise Open311Error(400, f"{name} must be text")
        text = str(value)
        attribute = _ATTRIBUTE.fullmatch(name)
        if attribute:
            result.attributes.setdefault(attribute[1], []).append(text)
        elif name not in KNOWN_FIELDS:
            raise Open311Error(400, f"unknown field {name}")
        elif name in result.fields:
            raise Open311Error(400, f"{name} was sent more than once")
        else:
            result.fields[name] = text
    return result


def parse_json_body(body: bytes) -> list[tuple[str, Any]]:
    try:
        doc = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise Open311Error(400, "the body is not valid JSON") from None
    if not isinstance(doc, dict):
        raise Open311Error(400, "the JSON body must be an object of fields")
    pairs: list[tuple[str, Any]] = []
    for name, value in doc.items():
        if name == "attribute" and isinstance(value, dict):  # {"attribute": {"component_code": "..."}}
            pairs += [(f"attribute[{k}]", v) for k, v in value.items()]
        elif value is not None:
            pairs.append((name, value))
    return pairs


def coordinate(request: PostedRequest, name: str, low: float, high: float) -> float:
    try:
        value = float(request.get(name))
    except ValueError:
        raise Open311Error(400, f"{name} must be a number of degrees (WGS-84)") from None
    if not (math.isfinite(value) and low <= value <= high):
        raise Open311Error(400, f"{name} must lie between {low:g} and {high:g} degrees")
    return value


def check_lengths(request: PostedRequest) -> None:
    """Text longer than we keep is refused, never cut."""
    limits = {"description": MAX_TEXT, "address_string": MAX_ADDRESS, "media_url": MAX_MEDIA_URL}
    limits |= dict.fromkeys(CONTACT_FIELDS, MAX_CONTACT)
    for name, limit in limits.items():
        if len(request.get(name)) > limit:
            raise Open311Error(400, f"{name} may have at most {limit} characters", code=f"{name}_too_long")
    media_url = request.get("media_url")
    if media_url:
        parts = urlsplit(media_url)
        if parts.scheme not in ("http", "https") or not parts.netloc or any(c.isspace() for c in media_url):
            raise Open311Error(400, "media_url must be an http or https URL")


def component_code(request: PostedRequest, subclass: Subclass) -> str | None:
    """The component_code attribute, the only one a service defines; any other attribute is refused."""
    allowed = {a["code"] for a in attributes_of(subclass)}
    for code, values in request.attributes.items():
        if code not in allowed:
            raise Open311Error(400, f"service {service_code(subclass)} has no attribute {code}")
        if len(values) != 1:
            raise Open311Error(400, f"attribute {code} takes one value")
    value = request.attributes.get("component_code", [""])[0].strip()
    return value or None
