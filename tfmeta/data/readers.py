"""Readers for raw interaction logs: one line in, one clean interaction or one reason out.

Every format is line based, so the same parser serves the Beam pipeline (which reads
lines in parallel) and plain Python. A line that cannot be parsed is never dropped: the
parser raises `BadRow` with a reason, and callers set the row aside in a dead-letter
output.

Formats (`RowFormat.name`):
  csv, tsv      delimited text with a header row; columns named by `Columns`
  inter         RecBole atomic files (`user_id:token<TAB>item_id:token<TAB>...`)
  udata         MovieLens-100K `u.data` (tab separated, no header: user item rating ts)
  ratings-dat   MovieLens-1M/10M `ratings.dat` (`user::item::rating::ts`, no header)
  jsonl         one JSON object per line; keys named by `Columns`

Timestamps are epoch seconds (integers or decimals) or ISO-8601 (naive means UTC).
Categories are '|' separated in text formats, a list or a '|' separated string in JSON.
"""
from __future__ import annotations

import bz2
import collections
import csv
import dataclasses
import datetime
import gzip
import io
import json
import math
import os
from typing import Iterator, Optional, Sequence

CATEGORY_SEPARATOR = "|"
# Bits of a row's sequence number given to the line number; the file index takes the
# rest, so (file index, line) order is plain integer order.
LINE_BITS = 40
# 9999-12-31T23:59:59Z: later stamps have no calendar date (and are most often
# milliseconds given as seconds).
MAX_TIMESTAMP = 253_402_300_799

Interaction = collections.namedtuple(
    "Interaction", ["user", "item", "ts", "rating", "categories", "seq"])
Interaction.__doc__ = """A clean interaction.

user, item: ids as strings, exactly as in the input; ts: UTC epoch seconds (int);
rating: float or None; categories: tuple of strings; seq: the row's position in the
input (file index << 40 | line number), which breaks timestamp ties in input order.
"""


class BadRow(ValueError):
    """A raw row that cannot become an interaction; the message is the reason."""


class BadInput(ValueError):
    """The input as a whole is unusable (missing file, unknown format, bad header)."""


@dataclasses.dataclass(frozen=True)
class Columns:
    """Names (header columns or JSON keys) of the roles user, item, ts, rating, categories.

    `rating` and `categories` are optional: None means the data has no such column.
    """
    user: str = "user"
    item: str = "item"
    ts: str = "ts"
    rating: Optional[str] = None
    categories: Optional[str] = None

    @classmethod
    def parse(cls, spec: str) -> "Columns":
        """Parses `user=uid,item=iid,ts=time,rating=stars` (roles not named keep defaults)."""
        values = {}
        for part in filter(None, (p.strip() for p in spec.split(","))):
            role, sep, name = part.partition("=")
            if not sep or role not in {f.name for f in dataclasses.fields(cls)}:
                raise BadInput(
                    f"bad column spec {part!r}: use role=name with role one of "
                    "user, item, ts, rating, categories (e.g. 'user=uid,ts=time')")
            values[role] = name
        return cls(**values)

    def roles(self) -> dict[str, str]:
        return {k: v for k, v in dataclasses.asdict(self).items() if v is not None}


@dataclasses.dataclass(frozen=True)
class RowFormat:
    name: str
    columns: Columns = Columns()

    FORMATS = ("csv", "tsv", "inter", "udata", "ratings-dat", "jsonl")

    def __post_init__(self):
        if self.name not in self.FORMATS:
            raise BadInput(f"unknown format {self.name!r}; choose one of {', '.join(self.FORMATS)}")

    @property
    def has_header(self) -> bool:
        return self.name in ("csv", "tsv", "inter")


def detect_format(path: str) -> str:
    """Guesses the format from a file name; `--format` overrides it."""
    base = os.path.basename(path).lower()
    for suffix in (".gz", ".bz2"):
        base = base.removesuffix(suffix)
    if base.endswith(".inter"):
        return "inter"
    if base == "u.data":
        return "udata"
    if base.endswith(".dat"):
        return "ratings-dat"
    if base.endswith((".jsonl", ".json", ".ndjson")):
        return "jsonl"
    if base.endswith(".tsv"):
        return "tsv"
    if base.endswith((".csv", ".txt")):
        return "csv"
    raise BadInput(f"cannot tell the format of {path!r} from its name; pass --format "
                   f"({', '.join(RowFormat.FORMATS)})")


def parse_timestamp(text) -> int:
    """Epoch seconds or ISO-8601 -> int UTC seconds; raises BadRow."""
    if isinstance(text, bool):
        raise BadRow(f"non-numeric timestamp {text!r}")
    if isinstance(text, (int, float)):
        try:
            value = float(text)
        except OverflowError:
            raise BadRow(f"timestamp out of range {str(text)[:40]!r}") from None
    else:
        text = str(text).strip()
        if not text:
            raise BadRow("empty timestamp")
        try:
            value = float(text)
        except ValueError:
            try:
                parsed = datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
            except ValueError:
                raise BadRow(f"non-numeric timestamp {text[:40]!r} (want epoch seconds "
                             "or ISO-8601)") from None
            if parsed.tzinfo is None:
                parsed = parsed.replace(tzinfo=datetime.timezone.utc)
            value = parsed.timestamp()
    if not math.isfinite(value):
        raise BadRow(f"non-finite timestamp {text!r}")
    if value < 0:
        raise BadRow(f"negative timestamp {text!r}")
    if value > MAX_TIMESTAMP:
        raise BadRow(f"timestamp {str(text)[:40]!r} is after year 9999 (milliseconds given "
                     "as seconds?)")
    return int(value)


def _parse_rating(text) -> float:
    if isinstance(text, bool):
        raise BadRow(f"unparsable rating {text!r}")
    try:
        value = float(text)
    except (TypeError, ValueError, OverflowError):
        raise BadRow(f"unparsable rating {str(text)[:40]!r}") from None
    if not math.isfinite(value):
        raise BadRow(f"unparsable rating {text!r}")
    return value


def _parse_id(text, role: str) -> str:
    if text is None or isinstance(text, (dict, list, bool)):
        raise BadRow(f"bad {role} id {text!r}")
    if isinstance(text, float):
        text = repr(text)
    text = str(text).strip()
    if not text:
        raise BadRow(f"empty {role} id")
    return text


def _parse_categories(value) -> tuple:
    if value is None:
        return ()
    parts = value if isinstance(value, list) else str(value).split(CATEGORY_SEPARATOR)
    return tuple(dict.fromkeys(p for p in (str(x).strip() for x in parts) if p))


class LineParser:
    """Turns raw lines of one file into `Interaction`s or `BadRow`s.

    Construct it with the file's header line (for formats that have one); the header is
    checked once, so a file without the needed columns fails as a whole (`BadInput`).
    """

    def __init__(self, row_format: RowFormat, header: Optional[str] = None):
        self.format = row_format
        name = row_format.name
        if name == "udata":
            self._delimiter, self._names = "\t", ["user", "item", "rating", "ts"]
            self._index = {"user": 0, "item": 1, "rating": 2, "ts": 3}
        elif name == "ratings-dat":
            self._delimiter, self._names = "::", ["user", "item", "rating", "ts"]
            self._index = {"user": 0, "item": 1, "rating": 2, "ts": 3}
        elif name == "jsonl":
            self._delimiter, self._names, self._index = None, None, None
        else:
            if header is None:
                raise BadInput(f"format {name!r} needs a header row")
            self._delimiter = "," if name == "csv" else "\t"
            self._names = self._split(header)
            self._index = self._header_index(self._names)

    @property
    def roles(self) -> set:
        """The roles (user, item, ts, rating, categories) this file provides."""
        return set(self._index if self._index is not None else self.format.columns.roles())

    def _header_index(self, names: Sequence[str]) -> dict[str, int]:
        if self.format.name == "inter":
            # RecBole headers carry types: 'user_id:token'. Map the usual names.
            plain = [n.split(":")[0].strip() for n in names]
            aliases = {"user": ["user_id", "user"], "item": ["item_id", "item"],
                       "ts": ["timestamp", "ts"], "rating": ["rating"],
                       "categories": ["categories", "genre", "class"]}
            index = {}
            for role, options in aliases.items():
                found = [plain.index(o) for o in options if o in plain]
                if found:
                    index[role] = found[0]
            missing = [r for r in ("user", "item", "ts") if r not in index]
        else:
            stripped = [n.strip() for n in names]
            wanted = self.format.columns.roles()
            index = {role: stripped.index(col) for role, col in wanted.items() if col in stripped}
            missing = [f"{role} (column {col!r})" for role, col in wanted.items()
                       if col not in stripped]
        if missing:
            raise BadInput(
                f"header {list(names)!r} lacks {', '.join(missing)}; name the columns with "
                "--columns, e.g. --columns user=uid,item=iid,ts=time")
        return index

    def _split(self, line: str) -> list:
        if self._delimiter == ",":
            try:
                return next(csv.reader([line]), [])
            except csv.Error as e:  # e.g. a field over the csv module's size limit
                raise BadRow(f"malformed CSV: {e}") from None
        return line.split(self._delimiter)

    def parse(self, line: str, seq: int) -> Interaction:
        line = line.rstrip("\r\n")
        if self.format.name == "jsonl":
            return self._parse_json(line, seq)
        fields = self._split(line)
        if len(fields) < len(self._names):
            raise BadRow(f"missing fields: {len(fields)} of {len(self._names)}")
        if len(fields) > len(self._names):
            raise BadRow(f"extra fields: {len(fields)} instead of {len(self._names)}")
        get = {role: fields[i] for role, i in self._index.items()}
        return self._build(get, seq)

    def _parse_json(self, line: str, seq: int) -> Interaction:
        try:
            record = json.loads(line)
        except ValueError as e:  # JSONDecodeError, or an integer too long to convert
            raise BadRow(f"invalid JSON: {getattr(e, 'msg', e)}") from None
        except RecursionError:
            raise BadRow("invalid JSON: nested too deeply") from None
        if not isinstance(record, dict):
            raise BadRow("JSON line is not an object")
        roles = self.format.columns.roles()
        missing = [key for role, key in roles.items() if key not in record]
        if missing:
            raise BadRow(f"missing fields: {', '.join(missing)}")
        return self._build({role: record[key] for role, key in roles.items()}, seq)

    def _build(self, get: dict, seq: int) -> Interaction:
        rating = _parse_rating(get["rating"]) if "rating" in get else None
        categories = _parse_categories(get.get("categories"))
        return Interaction(_parse_id(get["user"], "user"), _parse_id(get["item"], "item"),
                           parse_timestamp(get["ts"]), rating, categories, seq)


def make_seq(file_index: int, line_number: int) -> int:
    return (file_index << LINE_BITS) | line_number


def split_seq(seq: int) -> tuple[int, int]:
    return seq >> LINE_BITS, seq & ((1 << LINE_BITS) - 1)


def open_text(path: str):
    """Opens a local or remote (gs://...) text file, decompressing .gz/.bz2 by name.

    A UTF-8 byte-order mark is dropped; undecodable bytes become U+FFFD (and usually a
    rejected row) rather than failing the whole file.
    """
    from apache_beam.io.filesystems import CompressionTypes, FileSystems
    # Beam's own decompressing reader lacks the file protocol TextIOWrapper needs, so
    # decompress with the standard library on top of Beam's raw byte stream.
    raw = FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED)
    lower = path.lower()
    if lower.endswith(".gz"):
        raw = gzip.GzipFile(fileobj=raw)
    elif lower.endswith(".bz2"):
        raw = bz2.BZ2File(raw)
    return io.TextIOWrapper(raw, encoding="utf-8-sig", errors="replace", newline="")


def iter_lines(path: str, row_format: RowFormat) -> Iterator[tuple]:
    """Yields (line_number, text) of a file's data lines, and the parser as the first item.

    Blank lines are not rows and are skipped; line numbers are 1-based physical lines,
    so a dead-letter entry points at the line a person sees in an editor.
    """
    with open_text(path) as f:
        header = None
        if row_format.has_header:
            header = f.readline().rstrip("\r\n")
            if not header.strip():
                raise BadInput(f"{path}: empty file or missing header row")
        yield LineParser(row_format, header)
        first = 2 if header is not None else 1
        for number, line in enumerate(f, start=first):
            if line.strip():
                yield number, line


def input_roles(paths: Sequence[str], row_format: RowFormat) -> set:
    """Checks that every file exists and has the needed columns (BadInput names the
    file otherwise); returns the roles (rating, categories, ...) all of them provide."""
    from apache_beam.io.filesystems import FileSystems
    roles = None
    for path in paths:
        if not FileSystems.exists(path):
            raise BadInput(f"input file {path} does not exist")
        lines = iter_lines(path, row_format)
        try:
            found = next(lines).roles
        except BadInput as e:
            raise BadInput(f"{path}: {e}") from None
        finally:
            lines.close()
        roles = found if roles is None else roles & found
    return roles or set()


def rejection(path: str, line_number: int, reason: str, text: str) -> dict:
    """The dead-letter record of a bad row."""
    return {"file": path, "line": line_number, "reason": reason, "text": text.rstrip("\r\n")}


def read_file(path: str, row_format: RowFormat, file_index: int = 0):
    """Reads one file in plain Python: returns (interactions, rejections, rows_in)."""
    lines = iter_lines(path, row_format)
    parser = next(lines)
    good, bad, rows_in = [], [], 0
    for number, text in lines:
        rows_in += 1
        try:
            good.append(parser.parse(text, make_seq(file_index, number)))
        except BadRow as e:
            bad.append(rejection(path, number, str(e), text))
    return good, bad, rows_in
