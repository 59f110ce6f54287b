"""A finding: one kind of identifying information, where it was found, and a MASKED example.

Raw values never leave this package: `detail` is always built by `mask` (or is a description
such as "GPS position (4 tags)"), so findings can be written to the privacy record, printed and
shown in reports without leaking what they describe.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import asdict, dataclass, replace
from typing import Any

from dlworkflow.store.privacy import RESOLVED  # what a scrub did; anything else remains

# The kinds a finding can have (the privacy record counts findings by kind).
KINDS = (
    # image metadata (EXIF, PNG text, JPEG comments, XMP)
    "gps",
    "serial-number",
    "owner",
    "timestamp",
    "description",
    "device-id",
    "embedded-metadata",
    "unreadable-metadata",
    # DICOM (PS3.15 Annex E) and tables
    "patient-name",
    "patient-id",
    "birth-date",
    "patient-demographic",
    "address",
    "institution",
    "person-name",
    "uid",
    "study-id",
    "private-tag",
    "burned-in-annotation",
    "free-text",
    # text and tables
    "email",
    "phone",
    "national-id",
)


@dataclass(frozen=True)
class Finding:
    """One kind of identifying information in one sample (or, sample_id None, one column).

    where:  "EXIF GPSInfo", "DICOM PatientName (0010,0010)", "column 'email'" ...
    detail: a masked example, never the raw value ("j***@e***.com", "D***^J***").
    count:  how many values (tags, cells, matches) it stands for.
    key:    the machine name of the place: EXIF tag name, DICOM keyword, column name.
    match:  "value" (the whole value identifies), "text" (found inside free text) or "name"
            (flagged by a column's name).
    action: "found" after a scan; after a scrub what was done ("removed", "emptied",
            "replaced", "masked", "dropped", "pseudonymised") or "remains" (cannot be scrubbed,
            e.g. text burned into DICOM pixels).
    """

    sample_id: str | None
    where: str
    kind: str
    detail: str
    count: int = 1
    key: str | None = None
    match: str = "value"
    action: str = "found"

    @property
    def resolved(self) -> bool:
        return self.action in RESOLVED

    def with_sample(self, sample_id: str | None) -> Finding:
        return replace(self, sample_id=sample_id)

    def with_action(self, action: str) -> Finding:
        return replace(self, action=action)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


_EMAIL = re.compile(r"^([^@\s]+)@([^@\s]+?)((?:\.[A-Za-z]{2,})?)$")


def mask(value: Any, *, limit: int = 40) -> str:
    """A masked rendering of a value that keeps its shape but not its content.

    Letters: the first of each run of 3 or more is kept, the rest become '***'
    ("Doe^John" -> "D***^J***"); shorter runs and every digit become '*' / '#'
    ("1970-01-01" -> "####-##-##"); e-mail: "jane.doe@example.com" -> "j***@e***.com".
    """
    text = _as_text(value).strip()
    if not text:
        return "(empty)"
    email = _EMAIL.match(text)
    if email:
        local, domain, tld = email.groups()
        return f"{_first(local)}@{_first(domain)}{tld}"[:limit]
    masked = re.sub(r"[^\W\d_]+", lambda m: _letters(m.group(0)), text)
    masked = re.sub(r"\d", "#", masked)
    if len(masked) > limit:
        masked = masked[: limit - 3] + "..."
    return masked


def _letters(run: str) -> str:
    return run[0] + "***" if len(run) >= 3 else "*" * len(run)


def _first(part: str) -> str:
    return (part[0] + "***") if len(part) >= 3 else "***"


def _as_text(value: Any) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace").replace("\x00", "")
    if isinstance(value, (list, tuple)):
        return ", ".join(_as_text(v) for v in value)
    return str(value)


def has_content(value: Any) -> bool:
    """A value worth reporting: not None, not empty, not only NULs / spaces."""
    if value is None:
        return False
    if isinstance(value, (list, tuple)):
        return any(has_content(v) for v in value)
    return bool(_as_text(value).strip(" \x00"))


class DeidentifyError(Exception):
    """One sample that cannot be de-identified; `reason` goes to the quarantine."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def pseudonym(value: Any, key: bytes, *, prefix: str = "anon-") -> str:
    """A stable stand-in for an identifier: HMAC-SHA256 under the project's secret key.

    The same value always gives the same pseudonym (so groups such as patients stay together),
    and without the key it cannot be reversed by hashing candidate identifiers.
    """
    digest = hmac.new(key, _as_text(value).strip().encode("utf-8"), hashlib.sha256)
    return prefix + digest.hexdigest()[:16]


def hashed_uid(uid: str, key: bytes | None = None) -> str:
    """A new DICOM UID derived from an old one: '2.25.' + a 128-bit hash (PS3.5 B.2).

    Deterministic (references between files stay consistent); keyed when a key is given.
    """
    data = str(uid).strip().encode("ascii", "replace")
    digest = (hmac.new(key, data, hashlib.sha256) if key else hashlib.sha256(data)).digest()
    return "2.25." + str(int.from_bytes(digest[:16], "big"))
