"""Identifying information in tables and text: by column NAME and by CONTENT.

Content patterns: e-mail addresses; phone numbers (international +CC, US (555) 123-4567 /
555-123-4567, UK 020 7946 0958 / 07700 900123 and other 0-prefixed national forms, 9 to 15
digits); national ids (US SSN ddd-dd-dddd; UK NHS numbers, 10 digits passing the mod-11
check; 9-11 digit numbers in an id-like column); birth dates (dates in a birth/dob column, or
a column of dates whose years span decades of plausible birth years); person names (a column of
capitalised 1-3 word values enough of which hold a common given name or surname from
names.txt; "Dr./Mr./Mrs./Ms. Name" inside free text).

A column is "free text" when its values average 4 words or more: matches inside it are
reported (match="text") and masked by `scrub_table` with tokens ([EMAIL], [PHONE], [ID],
[NAME]); a column whose values mostly ARE one identifier (match="value"), or whose name says it
holds one (match="name"), is dropped (or masked whole, or pseudonymised: see `scrub_table`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Iterable
from datetime import date
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from dlworkflow.data.deid.findings import Finding, mask, pseudonym

if TYPE_CHECKING:
    import pandas as pd

# ---- column names ----------------------------------------------------------------------------
NAME_RULES: tuple[tuple[str, str], ...] = (  # regex on the normalised name (a_b_c) -> kind
    (r"e_?mail|mail_?address", "email"),
    (r"(tele)?phone(_?n(o|umber|r))?|tel|mobile|cell(_?phone)?|fax", "phone"),
    (
        r"ssn|social_?security(_?n(o|umber))?|national_?id|nino|nhs(_?n(o|umber))?|passport"
        r"(_?n(o|umber))?|tax_?id|driver_?s?_?licen[cs]e|insurance_?n(o|umber)",
        "national-id",
    ),
    (r"dob|d_o_b|birth|birth_?date|birthday|date_of_birth|born", "birth-date"),
    (
        r"(first|last|given|family|middle|full|maiden|patient|person)_?name|surname|forename",
        "person-name",
    ),
    (r"patient(_?id)?|mrn|medical_?record(_?n(o|umber))?", "patient-id"),
    (r"address|street|zip(_?code)?|post_?code|postal_?code", "address"),
)
ID_LIKE = re.compile(r"(^|_)(id|ident|identifier|n(o|r|um|umber)|code)(_|$)")

# ---- content ---------------------------------------------------------------------------------
EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")
SSN = re.compile(r"\b(?!000|666|9\d\d)\d{3}-(?!00)\d{2}-(?!0000)\d{4}\b")
NHS = re.compile(
    r"(?<!\+\d )(?<!\+\d\d )(?<!\+\d\d\d )"  # not the tail of "+1 415 555 2671"
    r"\b\d{3}[ ]?\d{3}[ ]?\d{4}\b"
)
PHONE = re.compile(
    r"(?<![\w+])(?:\+\d{1,3}[ .-]?(?:\(\d{1,4}\)[ .-]?)?\d{1,4}(?:[ .-]?\d{2,4}){1,4}"  # +44 20 ...
    r"|\(\d{3}\)[ ]?\d{3}[ .-]\d{4}"  # (555) 123-4567
    r"|\d{3}[.-]\d{3}[.-]\d{4}"  # 555-123-4567
    r"|0\d{2,4}[ -]?\d{3,4}[ -]?\d{3,4})(?![\w])"  # 020 7946 0958, 07700 900123
)
HONORIFIC = re.compile(r"\b(?:Mr|Mrs|Ms|Miss|Dr|Prof)\.?\s+[A-Z][a-z'-]+(?:\s+[A-Z][a-z'-]+)?")
NAME_VALUE = re.compile(
    r"[A-Z][a-z'’-]+(?:[ -][A-Z][a-z'’-]+){0,2}"  # Jane Doe, Mary-Ann Lee
    r"|[A-Z][a-z'’-]+, [A-Z][a-z'’-]+"
)  # Doe, Jane
DATE = re.compile(
    r"^\s*(?:(\d{4})[-/.]\d{1,2}[-/.]\d{1,2}|\d{1,2}[-/.]\d{1,2}[-/.](\d{4}))"
    r"(?:[ T]\d{1,2}:\d{2}(?::\d{2})?)?\s*$"
)
TOKENS = {
    "email": "[EMAIL]",
    "national-id": "[ID]",
    "phone": "[PHONE]",
    "person-name": "[NAME]",
    "birth-date": "[DATE]",
    "patient-id": "[ID]",
    "address": "[ADDRESS]",
}
FREE_TEXT_WORDS = 4.0  # mean words per value from which a column is free text
VALUE_SHARE = 0.5  # share of values that must BE an identifier for a "value" column


def _nhs_ok(number: str) -> bool:
    digits = [int(c) for c in number if c.isdigit()]
    if len(digits) != 10:
        return False
    check = 11 - sum(d * w for d, w in zip(digits[:9], range(10, 1, -1))) % 11
    check = 0 if check == 11 else check
    return check != 10 and check == digits[9]


def _phone_ok(text: str) -> bool:
    return 9 <= sum(c.isdigit() for c in text) <= 15


# kind -> (pattern, validator); applied in this order (masking replaces earlier kinds first)
TEXT_PATTERNS: tuple[tuple[str, re.Pattern[str], Callable[[str], bool] | None], ...] = (
    ("email", EMAIL, None),
    ("national-id", SSN, None),
    ("national-id", NHS, _nhs_ok),
    ("phone", PHONE, _phone_ok),
    ("person-name", HONORIFIC, None),
)


@lru_cache(maxsize=1)
def common_names() -> frozenset[str]:
    text = (Path(__file__).with_name("names.txt")).read_text(encoding="utf-8")
    return frozenset(
        w for line in text.splitlines() if not line.startswith("#") for w in line.split()
    )


def normalise_name(column: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", str(column).lower()).strip("_")


def kind_of_name(column: str) -> str | None:
    name = normalise_name(column)
    for pattern, kind in NAME_RULES:
        if re.search(rf"(^|_)(?:{pattern})(_|$)", name):
            return kind
    return None


# ---- scanning --------------------------------------------------------------------------------
def scan_table(df: pd.DataFrame, *, columns: Iterable[str] | None = None) -> list[Finding]:
    """One finding per (column, kind) with its count and a masked example; sample_id None."""
    out: list[Finding] = []
    for column in list(df.columns) if columns is None else list(columns):
        out += scan_column(df[column], name=str(column))
    return out


def scan_column(series: pd.Series, *, name: str) -> list[Finding]:
    """Findings of one column. Numeric columns are only checked as id-like number columns
    (a feature column of 10-digit numbers is not a list of NHS numbers)."""
    from pandas.api.types import is_bool_dtype, is_numeric_dtype

    values = series.dropna()
    text = values.astype(str).str.strip()
    text = text[text != ""]
    if is_numeric_dtype(series) or is_bool_dtype(series):
        found = [f for f in [_id_column(text.str.removesuffix(".0"), name)] if f and len(text)]
    else:
        found = _content_findings(text, name) if len(text) else []
    by_name = kind_of_name(name)
    if by_name and not any(f.kind == by_name for f in found):
        example = mask(text.iloc[0]) if len(text) else "(no values)"
        found.insert(
            0,
            Finding(
                None,
                _where(name),
                by_name,
                f"column name; e.g. {example}",
                count=len(text),
                key=name,
                match="name",
            ),
        )
    return found


def _where(column: str) -> str:
    return f"column {column!r}"


def _content_findings(text: pd.Series, name: str) -> list[Finding]:
    # (pandas-stubs type .str.len() for strings only; on lists of words it counts them)
    free = text.str.split().str.len().mean() >= FREE_TEXT_WORDS  # type: ignore[misc]
    found: dict[str, Finding] = {}
    rest = text
    for kind, pattern, valid in TEXT_PATTERNS:
        hits = rest.map(
            lambda v, p=pattern, ok=valid: [m for m in p.findall(v) if ok is None or ok(m)]
        )
        has = hits.str.len() > 0
        if not has.any():
            continue
        whole = rest.map(
            lambda v, p=pattern, ok=valid: bool(p.fullmatch(v)) and (ok is None or ok(v))
        )
        match = "value" if not free and whole.mean() >= VALUE_SHARE else "text"
        example = mask(next(iter(hits[has].iloc[0])))
        previous = found.get(kind)
        count = int(has.sum()) + (previous.count if previous else 0)
        found[kind] = Finding(
            None,
            _where(name),
            kind,
            example,
            count=count,
            key=name,
            match="value" if previous and previous.match == "value" else match,
        )
        rest = rest.map(lambda v, p=pattern: p.sub(" ", v))  # later patterns see what is left
    if not free:
        for finding in (_id_column(text, name), _birth_dates(text, name), _names(text, name)):
            if finding and finding.kind not in found:
                found[finding.kind] = finding
    return list(found.values())


def _id_column(text: pd.Series, name: str) -> Finding | None:
    if not ID_LIKE.search(normalise_name(name)):
        return None
    ids = text.str.replace(r"[ -]", "", regex=True).str.fullmatch(r"\d{9,11}")
    if ids.mean() < 0.8:
        return None
    return Finding(
        None, _where(name), "national-id", mask(text[ids].iloc[0]), count=int(ids.sum()), key=name
    )


def _birth_dates(text: pd.Series, name: str) -> Finding | None:
    parts = text.str.extract(DATE)
    years = parts[0].fillna(parts[1]).dropna().astype(int)
    if len(years) < max(1, 0.8 * len(text)):
        return None
    plausible = years[(years >= 1900) & (years < date.today().year)]
    birth_name = kind_of_name(name) == "birth-date"
    decades = (
        len(plausible) >= 3
        and plausible.max() - plausible.min() >= 10
        and plausible.median() <= date.today().year - 16
    )
    if not (birth_name or decades) or plausible.empty:
        return None
    detail = (
        "dates in a birth column"
        if birth_name
        else f"dates spanning {plausible.min()}-{plausible.max()} (birth dates?)"
    )
    return Finding(
        None,
        _where(name),
        "birth-date",
        f"{detail}; e.g. {mask(text.iloc[0])}",
        count=len(plausible),
        key=name,
    )


def _names(text: pd.Series, name: str) -> Finding | None:
    shaped = text.str.fullmatch(NAME_VALUE)
    if shaped.mean() < 0.6:
        return None
    names = common_names()
    known = text[shaped].map(lambda v: any(t in names for t in re.split(r"[ ,-]+", v.lower())))
    if known.mean() < 0.3:
        return None
    return Finding(
        None,
        _where(name),
        "person-name",
        mask(text[shaped].iloc[0]),
        count=int(shaped.sum()),
        key=name,
    )


# ---- scrubbing -------------------------------------------------------------------------------
def mask_text(text: str) -> str:
    """Free text with every pattern match replaced by its token ("[EMAIL]", "[PHONE]", ...)."""
    for kind, pattern, valid in TEXT_PATTERNS:

        def token(m: re.Match[str], k: str = kind, ok: Callable[[str], bool] | None = valid) -> str:
            return TOKENS[k] if ok is None or ok(m.group(0)) else m.group(0)

        text = pattern.sub(token, text)
    return text


def scrub_table(
    df: pd.DataFrame,
    findings: Iterable[Finding],
    *,
    columns: Literal["drop", "mask"] = "drop",
    pseudonymise: Collection[str] = (),
    key: bytes | None = None,
) -> tuple[pd.DataFrame, list[Finding]]:
    """A copy of df without the findings (df itself is never changed).

    Columns named in `pseudonymise` (e.g. the group column: patient ids that must keep samples
    together) get a keyed pseudonym per value (needs `key`); other columns with a "value" or
    "name" finding are dropped (`columns="drop"`) or replaced by a token (`"mask"`); free-text
    columns ("text" findings only) have each match replaced by its token.
    Returns the new frame and the findings with the action taken.
    """
    if pseudonymise and key is None:
        raise ValueError("pseudonymise needs the project's secret key (key=...)")
    out = df.copy()
    done: list[Finding] = []
    by_column: dict[str, list[Finding]] = {}
    for finding in findings:
        by_column.setdefault(finding.key or "", []).append(finding)
    for column, items in by_column.items():
        if column not in out.columns:
            done += items
            continue
        action = _scrub_column(
            out, column, items, columns=columns, pseudonymise=column in pseudonymise, key=key
        )
        done += [f.with_action(action) for f in items]
    return out, done


def _scrub_column(
    out: pd.DataFrame,
    column: str,
    items: list[Finding],
    *,
    columns: str,
    pseudonymise: bool,
    key: bytes | None,
) -> str:
    present = out[column].notna()
    if pseudonymise:
        assert key is not None  # scrub_table refuses pseudonymise without a key
        out[column] = out[column].astype("object")
        out.loc[present, column] = out.loc[present, column].map(lambda v: pseudonym(v, key))
        return "pseudonymised"
    if any(f.match in ("value", "name") for f in items):
        if columns == "drop":
            del out[column]
            return "dropped"
        out[column] = out[column].astype("object")
        out.loc[present, column] = TOKENS.get(items[0].kind, "[REMOVED]")
        return "masked"
    out[column] = out[column].astype("object")
    out.loc[present, column] = out.loc[present, column].astype(str).map(mask_text)
    return "masked"
