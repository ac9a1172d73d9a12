"""The BI writer rules in one place: what a Power BI / Superset / Tableau refresh reads safely.

:func:`conform` turns an Arrow table into one that follows the rules (or lists why it cannot);
:func:`check_file` reads a written parquet file and lists every rule it breaks. Both use the same
type classification (:func:`classify`), so the writer and the checker cannot disagree.

Rules (ids in brackets appear in every problem line):

* [names] column names are snake_case ASCII (``^[a-z][a-z0-9_]*$``) and unique regardless of case;
* [types] signed ``int32``/``int64``, ``float64`` measures, ``string`` codes and text, ``bool``,
  ``date32`` dates, ``timestamp[us]`` without time zone (UTC); never unsigned, small or 32-bit
  floats, dictionaries, untyped (all-null), binary, nested (struct/list/map), duration or time;
* [text-length] text values are shorter than 32,000 characters (Power BI keeps about that many);
* [page-v1] data pages are version 1 (the on-premises gateway failed on V2 pages);
* [encodings] values are PLAIN or dictionary encoded (no DELTA_*, BYTE_STREAM_SPLIT, RLE booleans);
* [compression] column chunks are snappy compressed.

Page headers are read with a small reader of Thrift's compact protocol (``_page_types``): pyarrow
exposes column-chunk metadata but not page headers, and the data page version lives only there.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

__all__ = ["MAX_TEXT_CHARS", "Verdict", "check_file", "classify", "conform", "name_problems"]

MAX_TEXT_CHARS = 32_000
NAME_RE = re.compile(r"^[a-z][a-z0-9_]*$")
ALLOWED_ENCODINGS = frozenset({"PLAIN", "PLAIN_DICTIONARY", "RLE_DICTIONARY", "RLE"})
COMPRESSION = "snappy"
_INT64_MAX = 2**63 - 1


@dataclass(frozen=True)
class Verdict:
    """How a column type stands against the rules: ``ok``, ``cast`` (to ``target``) or ``bad``."""

    status: str
    why: str = ""
    target: pa.DataType | None = None


def _rule(column: str, rule: str, what: str, fix: str) -> str:
    return f"column '{column}': {what} breaks BI rule [{rule}]; fix: {fix}"


def classify(t: pa.DataType) -> Verdict:
    """The rule verdict for an Arrow type (``cast`` targets are what :func:`conform` writes)."""
    if pa.types.is_boolean(t) or pa.types.is_float64(t) or pa.types.is_date32(t):
        return Verdict("ok")
    if pa.types.is_string(t):
        return Verdict("ok")
    if pa.types.is_int32(t) or pa.types.is_int64(t):
        return Verdict("ok")
    if pa.types.is_timestamp(t):
        if t.unit == "us" and t.tz is None:
            return Verdict("ok")
        why = f"timestamp[{t.unit}{', tz=' + t.tz if t.tz else ''}]"
        return Verdict("cast", why + " (must be naive UTC microseconds)", pa.timestamp("us"))
    if pa.types.is_integer(t):
        if t.bit_width < 32:
            return Verdict("cast", f"{t} (small or unsigned integer)", pa.int32())
        return Verdict("cast", f"{t} (unsigned integer)", pa.int64())
    if pa.types.is_floating(t):
        return Verdict("cast", f"{t} (measures are float64)", pa.float64())
    if pa.types.is_decimal(t):
        return Verdict("cast", f"{t} (decimal; measures are float64)", pa.float64())
    if pa.types.is_large_string(t) or pa.types.is_string_view(t):
        return Verdict("cast", f"{t} (text is plain string)", pa.string())
    if pa.types.is_dictionary(t):
        return Verdict("cast", f"{t} (Arrow dictionary; text is plain string)", t.value_type)
    if pa.types.is_null(t):
        return Verdict("cast", "untyped all-null column", pa.string())
    if pa.types.is_date64(t):
        return Verdict("cast", "date64 (dates are date32)", pa.date32())
    if pa.types.is_binary(t) or pa.types.is_large_binary(t) or pa.types.is_fixed_size_binary(t):
        return Verdict("bad", f"binary type {t} (Power BI cannot load binary columns)")
    if pa.types.is_binary_view(t):
        return Verdict("bad", f"binary type {t} (Power BI cannot load binary columns)")
    if pa.types.is_nested(t):
        return Verdict("bad", f"nested type {t} (Power BI loads it as a record to expand)")
    return Verdict("bad", f"type {t} (not a BI type)")


def _fix_for(t: pa.DataType) -> str:
    if pa.types.is_binary(t) or pa.types.is_large_binary(t) or pa.types.is_fixed_size_binary(t):
        return "drop it, or for WKB geometry write WKT text (shapely.to_wkt) and lon/lat doubles"
    if pa.types.is_struct(t):
        return "flatten it into one column per field (e.g. bbox_xmin ... bbox_ymax)"
    if pa.types.is_nested(t):
        return "flatten it or write it as JSON text"
    return "convert it to int64, float64, string, bool, date32 or timestamp[us]"


def _rule_of(v: Verdict, t: pa.DataType) -> str:
    if pa.types.is_nested(t):
        return "types: no nested"
    if "binary" in v.why:
        return "types: no binary"
    if pa.types.is_integer(t) and not pa.types.is_signed_integer(t):
        return "types: no unsigned"
    if pa.types.is_timestamp(t):
        return "types: timestamp[us] naive UTC"
    return "types"


def name_problems(names: list[str]) -> list[str]:
    """Problems of column names: not snake_case ASCII, or equal to another regardless of case."""
    out = []
    for n in names:
        if not NAME_RE.match(n):
            suggestion = re.sub(r"[^a-z0-9]+", "_", n.encode("ascii", "ignore").decode().lower())
            suggestion = suggestion.strip("_") or "column"
            if not suggestion[0].isalpha():
                suggestion = "c_" + suggestion
            out.append(
                _rule(n, "names", "name is not snake_case ASCII", f"rename it, e.g. '{suggestion}'")
            )
    seen: dict[str, str] = {}
    for n in names:
        key = n.casefold()
        if key in seen:
            out.append(
                _rule(
                    n,
                    "names",
                    f"name equals '{seen[key]}' regardless of case",
                    "give one of them another name",
                )
            )
        else:
            seen[key] = n
    return out


def _text_problems(table: pa.Table, where: str) -> list[str]:
    out = []
    for name, col in zip(table.column_names, table.columns, strict=True):
        if not (pa.types.is_string(col.type) or pa.types.is_large_string(col.type)):
            continue
        if col.length() == 0 or col.null_count == col.length():
            continue
        lengths = pc.utf8_length(col)
        longest = pc.max(lengths).as_py()
        if longest is not None and longest >= MAX_TEXT_CHARS:
            row = pc.index(lengths, longest).as_py()
            out.append(
                _rule(
                    name,
                    "text-length",
                    f"{where} row {row} holds {longest:,} characters (limit {MAX_TEXT_CHARS:,})",
                    "shorten the text; for WKT geometry simplify it (write_bi_tables does)",
                )
            )
    return out


def conform(table: pa.Table) -> tuple[pa.Table, list[str]]:
    """Cast ``table`` to the BI types; return it and the problems no cast can fix.

    Casts: small/unsigned integers to int32/int64 (a uint64 above 2**63-1 is a problem),
    float16/32 and decimals to float64, dictionaries and large strings to string, all-null
    columns to string, date64 to date32, timestamps to naive UTC microseconds (time-zone values
    converted to UTC, nanoseconds truncated).
    """
    problems = name_problems(table.column_names)
    for i, field in enumerate(table.schema):
        v = classify(field.type)
        col = table.column(i)
        if v.status == "ok":
            continue
        if v.status == "bad":
            problems.append(_rule(field.name, _rule_of(v, field.type), v.why, _fix_for(field.type)))
            continue
        if pa.types.is_dictionary(field.type):
            col = col.cast(field.type.value_type)
            inner = classify(col.type)
            if inner.status == "bad":
                problems.append(_rule(field.name, "types", inner.why, _fix_for(col.type)))
                continue
            v = inner if inner.status == "cast" else Verdict("cast", "", col.type)
        if pa.types.is_uint64(col.type) and (pc.max(col).as_py() or 0) > _INT64_MAX:
            problems.append(
                _rule(
                    field.name,
                    "types: no unsigned",
                    "uint64 values above 2**63-1",
                    "store them as text (string) if they are identifiers",
                )
            )
            continue
        safe = not pa.types.is_timestamp(col.type)
        col = col.cast(v.target, safe=safe) if v.target is not None else col
        table = table.set_column(i, pa.field(field.name, col.type, field.nullable), col)
    problems += _text_problems(table, "value in")
    return table, problems


# ------------------------------------------------------------------------------ page headers
_ENCODING_NAMES = {
    0: "PLAIN",
    2: "PLAIN_DICTIONARY",
    3: "RLE",
    4: "BIT_PACKED",
    5: "DELTA_BINARY_PACKED",
    6: "DELTA_LENGTH_BYTE_ARRAY",
    7: "DELTA_BYTE_ARRAY",
    8: "RLE_DICTIONARY",
    9: "BYTE_STREAM_SPLIT",
}
_PAGE_TYPES = {0: "DATA_PAGE", 1: "INDEX_PAGE", 2: "DICTIONARY_PAGE", 3: "DATA_PAGE_V2"}


class _Compact:
    """Just enough of Thrift's compact protocol to read a parquet PageHeader."""

    def __init__(self, buf: bytes | memoryview) -> None:
        self.buf, self.pos = buf, 0

    def byte(self) -> int:
        b = self.buf[self.pos]
        self.pos += 1
        return b

    def varint(self) -> int:
        shift = result = 0
        while True:
            b = self.byte()
            result |= (b & 0x7F) << shift
            if not b & 0x80:
                return result
            shift += 7

    def zigzag(self) -> int:
        n = self.varint()
        return (n >> 1) ^ -(n & 1)

    def skip(self, ftype: int) -> None:
        if ftype in (1, 2):  # bool: value in the type nibble
            return
        if ftype == 3:
            self.pos += 1
        elif ftype in (4, 5, 6):
            self.varint()
        elif ftype == 7:
            self.pos += 8
        elif ftype == 8:
            size = self.varint()
            self.pos += size
        elif ftype in (9, 10):
            head = self.byte()
            size = head >> 4 if head >> 4 != 15 else self.varint()
            for _ in range(size):
                self.skip(head & 0x0F)
        elif ftype == 11:
            size = self.varint()
            if size:
                kv = self.byte()
                for _ in range(size):
                    self.skip(kv >> 4)
                    self.skip(kv & 0x0F)
        elif ftype == 12:
            self.struct()
        else:
            raise ValueError(f"unknown thrift type {ftype}")

    def struct(self) -> dict[int, int]:
        """Read a struct; return its i32 fields (id -> value), skipping everything else."""
        fields: dict[int, int] = {}
        last = 0
        while True:
            head = self.byte()
            if head == 0:
                return fields
            delta, ftype = head >> 4, head & 0x0F
            fid = last + delta if delta else self.zigzag()
            last = fid
            if ftype == 5:
                fields[fid] = self.zigzag()
            else:
                self.skip(ftype)


def _page_types(f: object, start: int, length: int) -> set[str]:
    """Page types of one column chunk (``f`` an open binary file)."""
    f.seek(start)  # type: ignore[attr-defined]
    data = f.read(length)  # type: ignore[attr-defined]
    view = memoryview(data)
    pos, types = 0, set()
    while pos < len(data):
        reader = _Compact(view[pos:])
        header = reader.struct()
        types.add(_PAGE_TYPES.get(header.get(1, -1), f"unknown({header.get(1)})"))
        pos += reader.pos + header.get(3, 0)  # field 3: compressed_page_size
        if header.get(3) is None:
            break
    return types


def _chunk_problems(path: Path, pf: pq.ParquetFile) -> list[str]:
    md = pf.metadata
    top = {i: md.schema.column(i).path.split(".")[0] for i in range(md.num_columns)}
    physical = {i: md.schema.column(i).physical_type for i in range(md.num_columns)}
    codecs: dict[str, set[str]] = {}
    encodings: dict[str, set[str]] = {}
    pages: dict[str, set[str]] = {}
    bool_rle: set[str] = set()
    with open(path, "rb") as f:
        for rg in range(md.num_row_groups):
            group = md.row_group(rg)
            for i in range(md.num_columns):
                c = group.column(i)
                name = top[i]
                codecs.setdefault(name, set()).add(c.compression.lower())
                encs = set(c.encodings)
                encodings.setdefault(name, set()).update(encs)
                if physical[i] == "BOOLEAN" and "PLAIN" not in encs and c.num_values:
                    bool_rle.add(name)
                start = (
                    c.dictionary_page_offset
                    if c.has_dictionary_page and c.dictionary_page_offset
                    else c.data_page_offset
                )
                try:
                    pages.setdefault(name, set()).update(
                        _page_types(f, start, c.total_compressed_size)
                    )
                except (IndexError, ValueError):
                    pages.setdefault(name, set()).add("unreadable")
    out = []
    for name in dict.fromkeys(top.values()):
        bad_codec = sorted(codecs.get(name, set()) - {COMPRESSION})
        if bad_codec:
            out.append(
                _rule(name, "compression", f"compressed with {bad_codec}", "write it with snappy")
            )
        bad_enc = sorted(encodings.get(name, set()) - ALLOWED_ENCODINGS)
        if name in bool_rle:
            bad_enc.append("RLE (boolean values)")
        if bad_enc:
            out.append(
                _rule(
                    name,
                    "encodings",
                    f"uses encodings {bad_enc}",
                    "write with PLAIN/dictionary encodings only (pyarrow defaults, data page V1)",
                )
            )
        bad_pages = sorted(pages.get(name, set()) - {"DATA_PAGE", "DICTIONARY_PAGE"})
        if bad_pages:
            out.append(
                _rule(
                    name,
                    "page-v1",
                    f"has pages {bad_pages}",
                    "write with data_page_version='1.0'",
                )
            )
    return out


def check_file(path: Path, *, text: bool = True) -> list[str]:
    """Every BI rule the parquet file ``path`` breaks, one line each (empty list: it passes).

    ``text=False`` skips reading the text values (the writer has checked them already).
    """
    if not path.is_file():
        return [f"'{path}' does not exist"]
    try:
        pf = pq.ParquetFile(path)
    except (pa.ArrowInvalid, OSError) as exc:
        return [f"'{path}' is not a readable parquet file ({exc})"]
    schema = pf.schema_arrow
    problems = name_problems(schema.names)
    text_cols = []
    for field in schema:
        v = classify(field.type)
        if v.status != "ok":
            problems.append(_rule(field.name, _rule_of(v, field.type), v.why, _fix_for(field.type)))
        if pa.types.is_string(field.type) or pa.types.is_large_string(field.type):
            text_cols.append(field.name)
    problems += _chunk_problems(path, pf)
    if text and text_cols:
        problems += _text_problems(pf.read(columns=text_cols), "value in")
    return problems
