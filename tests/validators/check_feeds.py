"""Validates the public Atom feed or ICS calendar with tools that share no code with the service.

    check_feeds.py atom FILE CONTENT_TYPE
    check_feeds.py ics FILE
    check_feeds.py env          (only checks that the pinned validators are installed)

On success it prints a JSON summary of what it read (so the caller can tell it validated the
document it meant to) and exits 0. It exits 1 listing every problem found, 2 on wrong usage,
and 3 when the validators are not installed as tests/validators/requirements.txt pins them.
"""

import json
import re
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
INVALID, USAGE, ENVIRONMENT = 1, 2, 3


def check_environment():
    """The pinned versions, or exit 3: a validator that differs from the pin may judge differently."""
    from importlib import metadata

    wrong = []
    for line in (HERE / "requirements.txt").read_text(encoding="utf-8").splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        name, _, pinned = line.partition("==")
        try:
            installed = metadata.version(name)
        except metadata.PackageNotFoundError:
            installed = None
        if installed != pinned:
            wrong.append(f"{name}=={pinned} (installed: {installed or 'none'})")
    if wrong:
        print("validators not installed as pinned: " + ", ".join(wrong), file=sys.stderr)
        sys.exit(ENVIRONMENT)


# ---------------------------------------------------------------------------------------------
# Atom (RFC 4287)

ATOM = "http://www.w3.org/2005/Atom"
NS = {"atom": ATOM}
# RFC 4287 §3.3: an RFC 3339 date-time, with an uppercase T and Z and a time zone always.
RFC3339 = re.compile(
    r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})\Z"
)


def is_absolute_iri(value):
    """atom:id is an absolute IRI (§4.2.6). Links may be relative in general (§4.2.7.1), but a
    reader would resolve them against wherever it fetched the feed, so this feed's are not."""
    return re.match(r"[A-Za-z][A-Za-z0-9+.-]*:\S+\Z", value) is not None


def check_atom(data, content_type):
    import feedparser
    import lxml.etree as etree

    problems = []

    # A reader's view: feedparser tries a strict XML parser first and sets bozo on anything a
    # strict reader would reject (malformed XML, an encoding that disagrees with the header).
    parsed = feedparser.parse(data, response_headers={"content-type": content_type})
    if parsed.bozo:
        problems.append(f"feedparser: {parsed.bozo_exception!r}")
    if parsed.version != "atom10":
        problems.append(f"feedparser: read as {parsed.version!r}, not Atom 1.0")

    try:
        root = etree.fromstring(data, etree.XMLParser(resolve_entities=False, no_network=True))
    except etree.XMLSyntaxError as error:
        problems.append(f"XML: {error}")
        return problems, None

    # RFC 4287's structure: the root, and the elements a feed and each entry carry exactly once
    # (§4.1.1, §4.1.2).
    if root.tag != f"{{{ATOM}}}feed":
        problems.append(f"the root element is {root.tag}, not atom:feed")
    entries = root.xpath("atom:entry", namespaces=NS)
    for element, where in [(root, "feed")] + [(e, "entry") for e in entries]:
        for name in ("id", "title", "updated"):
            count = len(element.findall(f"{{{ATOM}}}{name}"))
            if count != 1:
                problems.append(f"{where}: {count} atom:{name} elements, not exactly one")
        for name in ("rights", "subtitle", "summary", "published", "content", "source"):
            if len(element.findall(f"{{{ATOM}}}{name}")) > 1:
                problems.append(f"{where}: more than one atom:{name}")
        for link in element.findall(f"{{{ATOM}}}link"):
            if not link.get("href"):
                problems.append(f"{where}: an atom:link without href")
        for person in element.findall(f"{{{ATOM}}}author") + element.findall(f"{{{ATOM}}}contributor"):
            if len(person.findall(f"{{{ATOM}}}name")) != 1:
                problems.append(f"{where}: a person construct without exactly one atom:name")
    for text in root.iter(f"{{{ATOM}}}title", f"{{{ATOM}}}summary", f"{{{ATOM}}}rights", f"{{{ATOM}}}subtitle"):
        if text.get("type", "text") not in ("text", "html", "xhtml"):
            problems.append(f"{text.tag}: type {text.get('type')!r} is not text, html or xhtml")

    # What RFC 4287's prose requires beyond the structure.
    feed_has_author = bool(root.xpath("atom:author", namespaces=NS))
    for entry in entries:
        where = "entry " + "".join(entry.xpath("atom:id/text()", namespaces=NS))
        # §4.1.1, §4.1.2: an author on the entry, its source or its feed.
        if not (feed_has_author or entry.xpath("atom:author | atom:source/atom:author", namespaces=NS)):
            problems.append(f"{where}: no atom:author, and the feed has none")
        # §4.1.2: an alternate link or a content.
        if not entry.xpath("atom:link[@rel='alternate' or not(@rel)] | atom:content", namespaces=NS):
            problems.append(f"{where}: neither an alternate link nor content")
        # §4.1.2: a summary wherever the content is out of line or not text.
        content = entry.find(f"{{{ATOM}}}content")
        if content is not None and entry.find(f"{{{ATOM}}}summary") is None:
            kind = content.get("type", "text")
            textual = kind in ("text", "html", "xhtml") or kind.startswith("text/")
            xml = kind.endswith("+xml") or kind.endswith("/xml")
            if content.get("src") is not None or not (textual or xml):
                problems.append(f"{where}: content needs an atom:summary")
    for element in [root] + entries:
        # §4.2.7.2: at most one alternate link per type and language.
        seen = set()
        for link in element.xpath("atom:link[@rel='alternate' or not(@rel)]", namespaces=NS):
            key = (link.get("type"), link.get("hreflang"))
            if key in seen:
                problems.append(f"{element.tag}: two alternate links for {key}")
            seen.add(key)
    for node in root.xpath("//atom:id", namespaces=NS):
        if not is_absolute_iri(node.text or ""):
            problems.append(f"atom:id {node.text!r} is not an absolute IRI")
    for node in root.xpath("//atom:link/@href", namespaces=NS):
        if not is_absolute_iri(node):
            problems.append(f"link href {node!r} is not absolute")
    for node in root.xpath("//atom:updated | //atom:published", namespaces=NS):
        if not RFC3339.match(node.text or ""):
            problems.append(f"{node.tag}: {node.text!r} is not an RFC 3339 date-time")
    # §4.1.1: entries sharing an atom:id are one entry to a reader, so an announcement and a
    # publication, being two, must not.
    ids = [e.findtext(f"{{{ATOM}}}id") for e in entries]
    if len(set(ids)) != len(ids):
        problems.append(f"entries share an atom:id: {ids}")

    summary = {
        "id": parsed.feed.get("id"),
        "title": parsed.feed.get("title"),
        "entries": [
            {"id": e.get("id"), "title": e.get("title"), "updated": e.get("updated")}
            for e in parsed.entries
        ],
    }
    if len(parsed.entries) != len(entries):
        problems.append(
            f"feedparser read {len(parsed.entries)} entries, the document has {len(entries)}"
        )
    return problems, summary


# ---------------------------------------------------------------------------------------------
# iCalendar (RFC 5545)

# Properties whose value is one TEXT (RFC 5545 §3.7, §3.8; X- properties default to TEXT).
# CATEGORIES and RESOURCES are lists of TEXT, separated by bare commas, so they are left out.
TEXT_PROPERTIES = {
    "CALSCALE", "METHOD", "PRODID", "VERSION", "CLASS", "COMMENT", "DESCRIPTION", "LOCATION",
    "STATUS", "SUMMARY", "TRANSP", "UID", "CONTACT", "RELATED-TO",
}
# §3.3.11: in TEXT, a backslash escapes only \ ; , N n, and ; and , appear only escaped.
TEXT_VALUE = re.compile(r"(?:[^\\;,]|\\[\\;,nN])*\Z")
UTC_DATE_TIME = re.compile(r"\d{8}T\d{6}Z\Z")


def raw_lines(data):
    """§3.1: CRLF-terminated physical lines of at most 75 octets, in UTF-8 (§6)."""
    problems = []
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as error:
        problems.append(f"not UTF-8: {error}")
    if not data.endswith(b"\r\n"):
        problems.append("the last line does not end with CRLF")
    body = data[:-2] if data.endswith(b"\r\n") else data
    physical = body.split(b"\r\n")
    for number, line in enumerate(physical, 1):
        if b"\r" in line or b"\n" in line:
            problems.append(f"line {number}: a bare CR or LF")
        if len(line) > 75:
            problems.append(f"line {number}: {len(line)} octets, more than 75")
        # §3.1: no control characters but HTAB in a content line.
        if any(b < 0x20 and b != 0x09 or b == 0x7F for b in line):
            problems.append(f"line {number}: a control character")
        if number == 1 and line[:1] in (b" ", b"\t"):
            problems.append("the first line is a continuation")
    # Unfold: a CRLF followed by one space or tab disappears.
    logical = re.sub(rb"\r\n[ \t]", b"", body).split(b"\r\n")
    return problems, [line.decode("utf-8", "replace") for line in logical]


def check_ics(data):
    import ical.calendar_stream
    import vobject

    problems, lines = raw_lines(data)
    text = data.decode("utf-8", "replace")

    # ical: typed models; malformed values, unknown STATUS values, repeated single properties
    # and DTEND with DURATION are refused.
    events = []
    try:
        calendar = ical.calendar_stream.IcsCalendarStream.calendar_from_ics(text)
        events = calendar.events
    except Exception as error:  # noqa: BLE001 - every refusal is a finding
        problems.append(f"ical: {type(error).__name__}: {getattr(error, 'detailed_error', '') or error}")

    # vobject: which properties each component must have and may repeat (§3.6, §3.6.1, §3.7).
    try:
        vobject.readOne(text, validate=True)
    except Exception as error:  # noqa: BLE001 - every refusal is a finding
        problems.append(f"vobject: {type(error).__name__}: {error}")

    # What neither fully checks: the structure and the properties each component must have
    # (§3.6, §3.6.1; vobject misses a missing VERSION), TEXT escaping (§3.3.11), the version
    # (§3.7.4), DTEND after DTSTART (§3.8.2.2) and unique UIDs (§3.8.4.7).
    stack, components, uids = [], [], []
    for line in lines:
        match = re.match(r'([A-Za-z0-9-]+)((?:;[^:;"]*(?:"[^"]*"[^:;"]*)*)*):(.*)\Z', line)
        if not match:
            problems.append(f"not a content line: {line!r}")
            continue
        name, value = match.group(1).upper(), match.group(3)
        if name == "BEGIN":
            if not stack and components:
                problems.append("more than one VCALENDAR")
            stack.append((value.upper(), {}))
            components.append(stack[-1])
            continue
        if name == "END":
            if not stack or stack[-1][0] != value.upper():
                problems.append(f"END:{value} does not close {stack[-1][0] if stack else 'anything'}")
            else:
                stack.pop()
            continue
        if not stack:
            problems.append(f"{name} outside any component")
            continue
        stack[-1][1].setdefault(name, []).append(value)
        if (name in TEXT_PROPERTIES or name.startswith("X-")) and not TEXT_VALUE.match(value):
            problems.append(f"{name}: unescaped TEXT value {value!r}")
    if stack:
        problems.append(f"unclosed {[kind for kind, _ in stack]}")
    if not components or components[0][0] != "VCALENDAR":
        problems.append("the document is not a VCALENDAR")
    for kind, props in components:
        def count(name):
            return len(props.get(name, []))

        if kind == "VCALENDAR":
            for name in ("PRODID", "VERSION"):
                if count(name) != 1:
                    problems.append(f"VCALENDAR has {count(name)} {name}, needs exactly 1")
            for name in ("CALSCALE", "METHOD"):
                if count(name) > 1:
                    problems.append(f"VCALENDAR has {count(name)} {name}")
            if props.get("VERSION", ["2.0"])[0] != "2.0":
                problems.append(f"VERSION is {props['VERSION'][0]!r}, not 2.0")
        if kind == "VEVENT":
            for name in ("DTSTAMP", "UID", "DTSTART"):
                if count(name) != 1:
                    problems.append(f"VEVENT has {count(name)} {name}, needs exactly 1")
            for name in ("DTEND", "SUMMARY", "DESCRIPTION", "URL", "STATUS"):
                if count(name) > 1:
                    problems.append(f"VEVENT has {count(name)} {name}")
            # This calendar's events are timed, in UTC; so is every DTSTAMP (§3.8.7.2).
            for name in ("DTSTAMP", "DTSTART", "DTEND"):
                for value in props.get(name, []):
                    if not UTC_DATE_TIME.match(value):
                        problems.append(f"{name}: {value!r} is not a UTC date-time")
            start, end = props.get("DTSTART", [""])[0], props.get("DTEND", [""])[0]
            if start and end and not end > start:
                problems.append(f"DTEND {end} is not after DTSTART {start}")
            uids.extend(props.get("UID", []))
    if len(set(uids)) != len(uids):
        problems.append(f"UIDs repeat: {uids}")

    summary = {
        "events": [
            {
                "uid": e.uid,
                "summary": e.summary,
                "start": e.dtstart.isoformat() if e.dtstart else None,
                "end": e.dtend.isoformat() if e.dtend else None,
                "url": e.url,
            }
            for e in events
        ]
    }
    return problems, summary


def main(argv):
    if argv[1:] == ["env"]:
        check_environment()
        return 0
    if len(argv) < 3 or argv[1] not in ("atom", "ics") or (argv[1] == "atom") != (len(argv) == 4):
        print(__doc__, file=sys.stderr)
        return USAGE
    check_environment()
    data = Path(argv[2]).read_bytes()
    if argv[1] == "atom":
        problems, summary = check_atom(data, argv[3])
    else:
        problems, summary = check_ics(data)
    if problems:
        for problem in problems:
            print(problem, file=sys.stderr)
        return INVALID
    print(json.dumps(summary, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
