"""Tests of the line-based interaction readers (tfmeta.data.readers).

Small files are written under tmp_path and read through `read_file`, the same path the
plain-Python reference takes; single lines go through `LineParser.parse`, which the Beam
pipeline calls on every line. Property-based tests (hypothesis) check the promise of the
module: every line becomes an Interaction or a BadRow with a reason, never anything else.
"""
import bz2
import csv
import gzip
import io
import json
import math
import string

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tfmeta.data import readers
from tfmeta.data.readers import (BadInput, BadRow, Columns, Interaction, LineParser,
                                 RowFormat)

# 2020-01-01T00:00:00Z
NEW_YEAR_2020 = 1577836800


def _write(path, text: str, newline: str = "\n") -> str:
    with open(path, "w", encoding="utf-8", newline="") as f:
        f.write(text.replace("\n", newline))
    return str(path)


def _read(tmp_path, name: str, text: str, row_format=None, newline: str = "\n", **kwargs):
    path = _write(tmp_path / name, text, newline)
    row_format = row_format or RowFormat(readers.detect_format(path))
    return readers.read_file(path, row_format, **kwargs)


def _parser(name: str, header=None, columns: Columns = Columns()) -> LineParser:
    return LineParser(RowFormat(name, columns), header)


def _reason(parser: LineParser, line: str) -> str:
    with pytest.raises(BadRow) as caught:
        parser.parse(line, 0)
    return str(caught.value)


# ------------------------------------------------------------------------ formats

def test_csv_with_quoted_ids_ratings_and_categories(tmp_path):
    text = ('uid,iid,time,stars,genres\n'
            '"Smith, J.",item 1,1577836800,4.5,Drama|Comedy\n'
            'u""2,"a,b,c",1577836800.75,3,\n'
            ' u3 ,007,2020-01-01T00:00:00Z,1e0,Drama|Drama| |x\n')
    columns = Columns.parse("user=uid,item=iid,ts=time,rating=stars,categories=genres")
    good, bad, rows_in = _read(tmp_path, "x.csv", text, RowFormat("csv", columns),
                               file_index=3)
    assert bad == [] and rows_in == 3
    assert good == [
        Interaction("Smith, J.", "item 1", NEW_YEAR_2020, 4.5, ("Drama", "Comedy"),
                    readers.make_seq(3, 2)),
        # An unquoted field keeps its quotes verbatim (csv module semantics).
        Interaction('u""2', "a,b,c", NEW_YEAR_2020, 3.0, (), readers.make_seq(3, 3)),
        # Ids are kept as strings ("007" stays "007"), surrounding blanks trimmed;
        # categories are de-duplicated in order and empty ones dropped.
        Interaction("u3", "007", NEW_YEAR_2020, 1.0, ("Drama", "x"), readers.make_seq(3, 4)),
    ]
    assert readers.split_seq(good[2].seq) == (3, 4)
    assert all(type(row.ts) is int for row in good)


def test_csv_without_rating_column_has_no_rating(tmp_path):
    good, bad, rows_in = _read(tmp_path, "plain.csv", "user,item,ts\n1,2,3\n")
    assert good == [Interaction("1", "2", 3, None, (), 2)] and bad == [] and rows_in == 1


def test_tsv(tmp_path):
    text = "ts\tuser\titem\n1577836800\tu 1\ti,1\n"
    good, bad, _ = _read(tmp_path, "x.tsv", text)
    assert bad == []
    assert good == [Interaction("u 1", "i,1", NEW_YEAR_2020, None, (), 2)]


def test_recbole_inter(tmp_path):
    text = ("user_id:token\titem_id:token\trating:float\ttimestamp:float\tgenre:token_seq\n"
            "196\t242\t3\t881250949\tAction|Drama\n"
            "186\t302\t3.5\t891717742.0\t\n")
    good, bad, rows_in = _read(tmp_path, "ml.inter", text)
    assert bad == [] and rows_in == 2
    assert good == [Interaction("196", "242", 881250949, 3.0, ("Action", "Drama"), 2),
                    Interaction("186", "302", 891717742, 3.5, (), 3)]


def test_recbole_inter_header_without_item_is_bad_input(tmp_path):
    path = _write(tmp_path / "x.inter", "user_id:token\trating:float\ttimestamp:float\n1\t2\t3\n")
    with pytest.raises(BadInput, match="--columns"):
        readers.read_file(path, RowFormat("inter"))


def test_movielens_udata(tmp_path):
    good, bad, _ = _read(tmp_path, "u.data", "196\t242\t3\t881250949\n22\t377\t1\t878887116\n")
    assert bad == []
    assert good == [Interaction("196", "242", 881250949, 3.0, (), 1),
                    Interaction("22", "377", 878887116, 1.0, (), 2)]


def test_movielens_ratings_dat(tmp_path):
    good, bad, _ = _read(tmp_path, "ratings.dat", "1::1193::5::978300760\n1::661::3::978302109\n")
    assert bad == []
    assert good == [Interaction("1", "1193", 978300760, 5.0, (), 1),
                    Interaction("1", "661", 978302109, 3.0, (), 2)]


def test_jsonl(tmp_path):
    lines = [
        {"u": "alice", "i": "book, vol. 1", "t": 1577836800, "r": 4, "c": ["a", "b", "a"]},
        {"u": 17, "i": 2.5, "t": "2020-01-01T01:00:00+01:00", "r": "3.5", "c": "x|y"},
        {"u": "bob", "i": "z", "t": 1577836800.9, "r": 1, "c": None, "extra": [1, 2]},
    ]
    text = "\n".join(json.dumps(line) for line in lines) + "\n"
    columns = Columns.parse("user=u,item=i,ts=t,rating=r,categories=c")
    good, bad, _ = _read(tmp_path, "x.jsonl", text, RowFormat("jsonl", columns))
    assert bad == []
    assert good == [
        Interaction("alice", "book, vol. 1", NEW_YEAR_2020, 4.0, ("a", "b"), 1),
        Interaction("17", "2.5", NEW_YEAR_2020, 3.5, ("x", "y"), 2),
        Interaction("bob", "z", NEW_YEAR_2020, 1.0, (), 3),
    ]


# --------------------------------------------------------------------- timestamps

@pytest.mark.parametrize("text, expected", [
    ("1577836800", NEW_YEAR_2020),
    (" 1577836800 ", NEW_YEAR_2020),
    ("1577836800.0", NEW_YEAR_2020),
    ("1577836800.999", NEW_YEAR_2020),      # decimals are truncated to whole seconds
    ("1.5778368e9", NEW_YEAR_2020),
    ("0", 0),
    ("0.5", 0),
    ("2020-01-01T00:00:00Z", NEW_YEAR_2020),
    ("2020-01-01T00:00:00+00:00", NEW_YEAR_2020),
    ("2020-01-01T05:30:00+05:30", NEW_YEAR_2020),
    ("2019-12-31T19:00:00-05:00", NEW_YEAR_2020),
    ("2020-01-01T00:00:00", NEW_YEAR_2020),  # naive means UTC
    ("2020-01-01 00:00:00", NEW_YEAR_2020),
    ("2020-01-01T00:00:01.75Z", NEW_YEAR_2020 + 1),
    ("2020-01-01", NEW_YEAR_2020),           # date only: midnight UTC
    ("1970-01-01T00:00:00Z", 0),
    (1577836800, NEW_YEAR_2020),             # JSON numbers
    (1577836800.5, NEW_YEAR_2020),
])
def test_parse_timestamp(text, expected):
    value = readers.parse_timestamp(text)
    assert value == expected and type(value) is int


@pytest.mark.parametrize("text, reason", [
    ("", "empty timestamp"),
    ("  ", "empty timestamp"),
    ("yesterday", "non-numeric timestamp"),
    ("12:00", "non-numeric timestamp"),
    ("2020-13-01", "non-numeric timestamp"),
    (True, "non-numeric timestamp"),
    ("-1", "negative timestamp"),
    ("-0.5", "negative timestamp"),
    (-1, "negative timestamp"),
    ("1969-12-31T23:59:59Z", "negative timestamp"),
    ("nan", "non-finite timestamp"),
    ("inf", "non-finite timestamp"),
    ("1e400", "non-finite timestamp"),
    (float("-inf"), "non-finite timestamp"),
    (str(2**62), "after year 9999"),
    ("1700000000000", "milliseconds given as seconds"),
])
def test_parse_timestamp_rejects(text, reason):
    with pytest.raises(BadRow, match=reason):
        readers.parse_timestamp(text)


# ------------------------------------------------------------------------ columns

def test_columns_parse():
    assert Columns.parse("user=uid,ts=time") == Columns(user="uid", item="item", ts="time")
    assert Columns.parse(" user=uid, ,rating=stars ,") == Columns(user="uid", rating="stars")
    assert Columns.parse("") == Columns()
    assert Columns.parse("categories=genre").roles() == {
        "user": "user", "item": "item", "ts": "ts", "categories": "genre"}


@pytest.mark.parametrize("spec", ["uid", "usr=uid", "user=uid,time", "timestamp=t"])
def test_columns_parse_error_says_how(spec):
    with pytest.raises(BadInput) as caught:
        Columns.parse(spec)
    message = str(caught.value)
    assert "role=name" in message and "user=uid" in message


@pytest.mark.parametrize("name, header, missing", [
    ("csv", "uid,item,ts", "user (column 'user')"),
    ("csv", "user,item,time", "ts (column 'ts')"),
    ("tsv", "user,item,ts", "user"),          # a CSV header given to the TSV reader
])
def test_header_lacking_a_column_is_bad_input_naming_columns_flag(name, header, missing):
    with pytest.raises(BadInput) as caught:
        _parser(name, header)
    assert missing in str(caught.value) and "--columns" in str(caught.value)


def test_header_lacking_a_requested_optional_column(tmp_path):
    path = _write(tmp_path / "x.csv", "user,item,ts\n1,2,3\n")
    with pytest.raises(BadInput, match=r"rating \(column 'stars'\).*--columns"):
        readers.read_file(path, RowFormat("csv", Columns(rating="stars")))


def test_header_formats_need_a_header(tmp_path):
    with pytest.raises(BadInput, match="header"):
        _parser("csv", None)
    with pytest.raises(BadInput, match="empty file or missing header"):
        _read(tmp_path, "empty.csv", "")
    with pytest.raises(BadInput, match="empty file or missing header"):
        _read(tmp_path, "blank_first.csv", "\nuser,item,ts\n1,2,3\n")


def test_unknown_format_name():
    with pytest.raises(BadInput, match="unknown format 'parquet'.*csv"):
        RowFormat("parquet")


# ----------------------------------------------------------------- detect_format

@pytest.mark.parametrize("path, expected", [
    ("u.data", "udata"),
    ("/data/ml-100k/U.DATA", "udata"),
    ("u.data.gz", "udata"),
    ("ratings.dat", "ratings-dat"),
    ("ml-1m/ratings.dat.bz2", "ratings-dat"),
    ("x.inter", "inter"),
    ("gs://bucket/ml-100k.inter", "inter"),
    ("x.jsonl", "jsonl"),
    ("x.ndjson", "jsonl"),
    ("x.tsv", "tsv"),
    ("x.csv", "csv"),
    ("x.csv.gz", "csv"),
    ("X.CSV", "csv"),
])
def test_detect_format(path, expected):
    assert readers.detect_format(path) == expected


@pytest.mark.parametrize("path", ["x.parquet", "data", "x.gz", "u.data.zip", "x.csv.xz"])
def test_detect_format_unknown_name_says_use_format_flag(path):
    with pytest.raises(BadInput) as caught:
        readers.detect_format(path)
    message = str(caught.value)
    assert repr(path) in message and "--format" in message and "csv" in message


# ----------------------------------------------------------------------- bad rows

CSV_HEADER = "user,item,ts,rating"


@pytest.mark.parametrize("name, header, line, reason", [
    ("csv", CSV_HEADER, "u,i,1", "missing fields: 3 of 4"),
    ("csv", CSV_HEADER, "u,i,1,2,3", "extra fields: 5 instead of 4"),
    ("csv", CSV_HEADER, '"u,i",1,2', "missing fields: 3 of 4"),
    ("csv", CSV_HEADER, "u,i,noon,2", "non-numeric timestamp 'noon'"),
    ("csv", CSV_HEADER, "u,i,,2", "empty timestamp"),
    ("csv", CSV_HEADER, "u,i,-5,2", "negative timestamp '-5'"),
    ("csv", CSV_HEADER, ",i,1,2", "empty user id"),
    ("csv", CSV_HEADER, "  ,i,1,2", "empty user id"),
    ("csv", CSV_HEADER, "u,,1,2", "empty item id"),
    ("csv", CSV_HEADER, 'u,"",1,2', "empty item id"),
    ("csv", CSV_HEADER, "u,i,1,good", "unparsable rating 'good'"),
    ("csv", CSV_HEADER, "u,i,1,", "unparsable rating ''"),
    ("csv", CSV_HEADER, "u,i,1,nan", "unparsable rating"),
    ("csv", CSV_HEADER, "u,i,1,NaN", "unparsable rating"),
    ("csv", CSV_HEADER, "u,i,1,inf", "unparsable rating"),
    ("csv", CSV_HEADER, "u,i,1,-Infinity", "unparsable rating"),
    ("csv", CSV_HEADER, "u,i,1,1e999", "unparsable rating"),
    ("tsv", CSV_HEADER.replace(",", "\t"), "u\ti\t1", "missing fields: 3 of 4"),
    ("udata", None, "1\t2\t3", "missing fields: 3 of 4"),
    ("udata", None, "1 2 3 4", "missing fields: 1 of 4"),
    ("udata", None, "1\t2\t3\t4\t5", "extra fields: 5 instead of 4"),
    ("udata", None, "1\t2\tfive\t4", "unparsable rating 'five'"),
    ("udata", None, "1\t2\t5\t-4", "negative timestamp"),
    ("ratings-dat", None, "1::2::3", "missing fields: 3 of 4"),
    ("ratings-dat", None, "1::2::3::4::5", "extra fields: 5 instead of 4"),
    ("ratings-dat", None, "1:2:3:4", "missing fields: 1 of 4"),
    ("ratings-dat", None, "::2::3::4", "empty user id"),
])
def test_bad_row_reasons_text(name, header, line, reason):
    columns = Columns(rating="rating") if header else Columns()
    assert reason in _reason(_parser(name, header, columns), line)


@pytest.mark.parametrize("line, reason", [
    ('{"user": "u", "item": "i", "ts": 1', "invalid JSON"),
    ("user,item,ts", "invalid JSON"),
    ("{'user': 'u', 'item': 'i', 'ts': 1}", "invalid JSON"),
    ('[{"user": "u", "item": "i", "ts": 1}]', "JSON line is not an object"),
    ('"u,i,1"', "JSON line is not an object"),
    ("17", "JSON line is not an object"),
    ("null", "JSON line is not an object"),
    ('{"user": "u", "item": "i"}', "missing fields: ts"),
    ('{"user": "u", "ts": 1}', "missing fields: item"),
    ('{}', "missing fields: user, item, ts"),
    ('{"user": "u", "item": "i", "ts": 1, "rating": "x"}', "unparsable rating 'x'"),
    ('{"user": "u", "item": "i", "ts": 1, "rating": NaN}', "unparsable rating"),
    ('{"user": "u", "item": "i", "ts": 1, "rating": Infinity}', "unparsable rating"),
    ('{"user": "u", "item": "i", "ts": 1, "rating": null}', "unparsable rating"),
    ('{"user": "u", "item": "i", "ts": 1, "rating": true}', "unparsable rating"),
    ('{"user": "u", "item": "i", "ts": "soon", "rating": 1}', "non-numeric timestamp"),
    ('{"user": "u", "item": "i", "ts": true, "rating": 1}', "non-numeric timestamp"),
    ('{"user": "u", "item": "i", "ts": -1, "rating": 1}', "negative timestamp"),
    ('{"user": "u", "item": "i", "ts": NaN, "rating": 1}', "non-finite timestamp"),
    ('{"user": "", "item": "i", "ts": 1, "rating": 1}', "empty user id"),
    ('{"user": "u", "item": " ", "ts": 1, "rating": 1}', "empty item id"),
    ('{"user": null, "item": "i", "ts": 1, "rating": 1}', "bad user id"),
    ('{"user": ["u"], "item": "i", "ts": 1, "rating": 1}', "bad user id"),
    ('{"user": "u", "item": {"id": 1}, "ts": 1, "rating": 1}', "bad item id"),
])
def test_bad_row_reasons_json(line, reason):
    assert reason in _reason(_parser("jsonl", columns=Columns(rating="rating")), line)


def test_rejections_blank_lines_and_line_numbers(tmp_path):
    text = ("user,item,ts\n"        # 1
            "a,x,10\n"              # 2
            "\n"                    # 3 blank: skipped, not a row
            "a,y\n"                 # 4 bad
            "   \t \n"              # 5 blank
            "b,z,-3\n"              # 6 bad
            "b,w,20\n"              # 7
            "\n")                   # 8 blank
    good, bad, rows_in = _read(tmp_path, "x.csv", text, file_index=1)
    assert rows_in == 4
    assert [(row.user, row.item, readers.split_seq(row.seq)) for row in good] == [
        ("a", "x", (1, 2)), ("b", "w", (1, 7))]
    path = str(tmp_path / "x.csv")
    assert bad == [
        {"file": path, "line": 4, "reason": "missing fields: 2 of 3", "text": "a,y"},
        {"file": path, "line": 6, "reason": "negative timestamp '-3'", "text": "b,z,-3"},
    ]


def test_headerless_line_numbers_start_at_one(tmp_path):
    good, bad, rows_in = _read(tmp_path, "u.data", "\n1\t2\t3\n1\t2\t3\t4\n")
    assert rows_in == 2
    assert [row.seq for row in good] == [3]
    assert [(b["line"], b["text"]) for b in bad] == [(2, "1\t2\t3")]


@pytest.mark.parametrize("name, text", [
    ("x.csv", "user,item,ts,rating\nu,i,1577836800,4\n\nu,j,bad,5\n"),
    ("x.tsv", "user\titem\tts\trating\nu\ti\t1577836800\t4\n\nu\tj\tbad\t5\n"),
    ("u.data", "u\ti\t4\t1577836800\n\nu\tj\t5\tbad\n\n"),
    ("ratings.dat", "u::i::4::1577836800\n\nu::j::5::bad\n"),
])
def test_crlf_files_parse_like_lf_files(tmp_path, name, text):
    row_format = RowFormat(readers.detect_format(name), Columns(rating="rating"))
    lf = _read(tmp_path, name, text, row_format)
    crlf = _read(tmp_path, name, text, row_format, newline="\r\n")
    assert crlf[0] == lf[0] == [Interaction("u", "i", NEW_YEAR_2020, 4.0, (), lf[0][0].seq)]
    assert [(b["line"], b["text"], b["reason"]) for b in crlf[1]] == [
        (b["line"], b["text"], b["reason"]) for b in lf[1]]
    assert [b["line"] for b in lf[1]] == [4 if "user" in text else 3]
    assert "\r" not in crlf[1][0]["text"] and crlf[2] == lf[2] == 2


def test_crlf_jsonl(tmp_path):
    text = '{"user": "u", "item": "i", "ts": 5}\n\n{"user": "u"}\n'
    good, bad, rows_in = _read(tmp_path, "x.jsonl", text, newline="\r\n")
    assert good == [Interaction("u", "i", 5, None, (), 1)] and rows_in == 2
    assert [(b["line"], b["reason"]) for b in bad] == [(3, "missing fields: item, ts")]


@pytest.mark.parametrize("suffix, opener", [(".gz", gzip.open), (".bz2", bz2.open)])
def test_compressed_csv(tmp_path, suffix, opener):
    path = str(tmp_path / f"x.csv{suffix}")
    with opener(path, "wt", encoding="utf-8", newline="") as f:
        f.write("user,item,ts\r\n\"a, b\",ü,2020-01-01\r\nc,d,x\r\n")
    assert readers.detect_format(path) == "csv"
    good, bad, rows_in = readers.read_file(path, RowFormat("csv"))
    assert good == [Interaction("a, b", "ü", NEW_YEAR_2020, None, (), 2)]
    assert [(b["line"], b["text"]) for b in bad] == [(3, "c,d,x")] and rows_in == 2


def test_iter_lines_yields_parser_then_numbered_lines(tmp_path):
    path = _write(tmp_path / "x.csv", "user,item,ts\n\na,b,1\n")
    lines = readers.iter_lines(path, RowFormat("csv"))
    assert isinstance(next(lines), LineParser)
    assert list(lines) == [(3, "a,b,1\n")]


def test_seq_packs_file_index_above_line_number():
    seqs = [readers.make_seq(f, n) for f, n in [(0, 1), (0, 2**40 - 1), (1, 1), (2, 0)]]
    assert seqs == sorted(seqs)
    assert [readers.split_seq(s) for s in seqs] == [(0, 1), (0, 2**40 - 1), (1, 1), (2, 0)]


# ------------------------------------------------------------ hostile rows

def test_overlong_csv_field_is_a_bad_row_not_a_crash(tmp_path):
    line = "u,i," + "1" * 131073
    text = f"user,item,ts\na,b,1\n{line}\n"
    good, bad, rows_in = _read(tmp_path, "x.csv", text)
    assert rows_in == 2 and len(good) == 1 and [b["line"] for b in bad] == [3]


def test_jsonl_integer_beyond_int_digit_limit_is_a_bad_row():
    assert "invalid JSON" in _reason(_parser("jsonl"), "1" * 4301)


@pytest.mark.parametrize("line", [
    '{"user": "u", "item": "i", "ts": 1%s, "rating": 1}' % ("0" * 309),
    '{"user": "u", "item": "i", "ts": 1, "rating": 1%s}' % ("0" * 309),
])
def test_jsonl_integer_beyond_float_range_is_a_bad_row(line):
    _reason(_parser("jsonl", columns=Columns(rating="rating")), line)


def test_jsonl_deeply_nested_line_is_a_bad_row():
    _reason(_parser("jsonl"), "[" * 100_000)


# ------------------------------------------------------------ property-based tests

HEADERS = {
    "csv": "user,item,ts,rating,cats",
    "tsv": "user\titem\tts\trating\tcats",
    "inter": "user_id:token\titem_id:token\ttimestamp:float\trating:float\tgenre:token_seq",
    "udata": None,
    "ratings-dat": None,
    "jsonl": None,
}
FORMAT_COLUMNS = {name: Columns(rating="rating", categories="cats")
                  for name in ("csv", "tsv", "jsonl")}

SPECIAL_TOKENS = [
    "", " ", "  ", "\t", ",", "::", ":", '"', '""', "'", "|", "\x00", "\x0b", "\x0c", "\x85",
    "\u2028", "\ufeff", "\xa0", "é", "用户", "🙂", "-", "+", ".", "e", "0", "1", "-1", "-0",
    "0.5", "1e400", "-1e400", "1e-400", "nan", "NaN", "inf", "-inf", "Infinity", "1_000",
    "9" * 400, "9" * 5000, str(2**62), str(2**62 - 1), str(2**53 + 1), "1577836800",
    "2020-01-01", "2020-01-01T00:00:00Z", "2020-01-01T00:00:00+05:30", "0001-01-01T00:00:00+01:00",
    "9999-12-31T23:59:59-23:59", "2020-02-30", "T", "Z", "null", "true", "{", "}", "[", "]",
    '{"user": "u", "item": "i", "ts": 1}',
]
NO_NEWLINES = st.characters(blacklist_characters="\r\n", blacklist_categories=("Cs",))
tokens = st.one_of(
    st.sampled_from(SPECIAL_TOKENS),
    st.text(NO_NEWLINES, max_size=8),
    st.integers().map(str),
    st.floats().map(repr),
    st.text(alphabet=string.digits + ".-+eE", max_size=30),
)
FIELD_SEPARATORS = st.sampled_from([",", "\t", "::", "|", " ", ", ", '","'])


@st.composite
def text_lines(draw):
    """Arbitrary one-line strings, biased towards almost-valid delimited rows."""
    if draw(st.booleans()):
        return "".join(draw(st.lists(tokens, max_size=10)))
    separator = draw(FIELD_SEPARATORS)
    fields = draw(st.lists(tokens, min_size=3, max_size=6))
    return separator.join(fields)


json_scalars = st.one_of(
    st.none(), st.booleans(), st.floats(), st.text(max_size=10), st.sampled_from(SPECIAL_TOKENS),
    st.integers(min_value=-10**4200, max_value=10**4200))  # json.dumps' digit limit
json_values = st.recursive(json_scalars, lambda inner: st.lists(inner, max_size=3)
                           | st.dictionaries(st.text(max_size=5), inner, max_size=3),
                           max_leaves=6)
json_keys = st.sampled_from(["user", "item", "ts", "rating", "cats", "other"])


@st.composite
def json_lines(draw):
    choice = draw(st.integers(0, 2))
    if choice == 0:
        return draw(text_lines())
    value = (draw(st.dictionaries(json_keys, json_values, max_size=6)) if choice == 1
             else draw(json_values))
    return json.dumps(value, ensure_ascii=draw(st.booleans()))


# Field order of each format's rows (HEADERS above for those with a header).
ROLE_ORDER = {
    "csv": ("user", "item", "ts", "rating", "cats"),
    "tsv": ("user", "item", "ts", "rating", "cats"),
    "inter": ("user", "item", "ts", "rating", "cats"),
    "udata": ("user", "item", "rating", "ts"),
    "ratings-dat": ("user", "item", "rating", "ts"),
}
SEPARATORS = {"csv": ",", "tsv": "\t", "inter": "\t", "udata": "\t", "ratings-dat": "::"}
VALID_FIELDS = {
    "ts": st.one_of(st.integers(0, 2**62 - 1).map(str), st.sampled_from(
        ["0", "1.5", " 1577836800 ", "2020-01-01", "2020-01-01T00:00:00Z",
         "2020-01-01T00:00:00-05:00", "2020-01-01 12:00:00"])),
    "rating": st.one_of(st.floats(allow_nan=False, allow_infinity=False).map(repr),
                        st.sampled_from(["1", " 4 ", "-2", "0.5e1"])),
}


@st.composite
def near_valid_rows(draw, name):
    """Rows with the right shape, each field valid or arbitrary: these reach _build."""
    if name == "jsonl":
        record = {"user": draw(json_values | tokens), "item": draw(json_values | tokens),
                  "ts": draw(VALID_FIELDS["ts"] | json_values),
                  "rating": draw(VALID_FIELDS["rating"].map(float) | json_values),
                  "cats": draw(json_values)}
        return json.dumps(record)
    separator = SEPARATORS[name]
    plain = st.text(st.characters(blacklist_characters="\r\n\t,:",
                                  blacklist_categories=("Cs",)), max_size=8)
    padded = st.tuples(st.sampled_from(["", " ", "\xa0", "\t"]), plain,
                       st.sampled_from(["", " ", "\u3000"])).map("".join)
    fields = [draw(VALID_FIELDS[role] | tokens) if role in VALID_FIELDS
              else draw(st.one_of(tokens, plain, padded)) for role in ROLE_ORDER[name]]
    if name == "csv" and draw(st.booleans()):
        buffer = io.StringIO()
        csv.writer(buffer, lineterminator="").writerow(fields)
        return buffer.getvalue()
    return separator.join(fields)


def lines_for(name):
    rows = near_valid_rows(name)
    if name == "jsonl":
        return st.one_of(json_lines(), rows, rows)
    return st.one_of(text_lines(), rows, rows)


def _check_interaction(row, seq):
    assert isinstance(row, Interaction)
    for ident in (row.user, row.item):
        assert type(ident) is str and ident and ident == ident.strip()
    assert type(row.ts) is int and 0 <= row.ts < 2**62
    assert row.rating is None or (type(row.rating) is float and math.isfinite(row.rating))
    assert isinstance(row.categories, tuple)
    assert all(type(c) is str and c and c == c.strip() for c in row.categories)
    assert row.seq == seq


@pytest.mark.parametrize("name", list(HEADERS))
@settings(max_examples=200, deadline=None)
@given(data=st.data())
def test_parse_returns_interaction_or_raises_bad_row(name, data):
    parser = _parser(name, HEADERS[name], FORMAT_COLUMNS.get(name, Columns()))
    line = data.draw(lines_for(name), label="line")
    line += data.draw(st.sampled_from(["", "\n", "\r\n"]), label="ending")
    try:
        row = parser.parse(line, 12345)
    except BadRow as e:
        assert str(e)  # a reason, always
        return
    _check_interaction(row, 12345)


@pytest.fixture(scope="module")
def scratch(tmp_path_factory):
    return tmp_path_factory.mktemp("files")


BLANK = st.sampled_from(["", " ", "\t", "  \t ", "\xa0", "\x0c"])
FILE_NAMES = {"csv": "f.csv", "tsv": "f.tsv", "inter": "f.inter", "udata": "u.data",
              "ratings-dat": "ratings.dat", "jsonl": "f.jsonl"}


@pytest.mark.parametrize("name", list(HEADERS))
@settings(max_examples=200, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_read_file_accounts_for_every_non_blank_line(scratch, name, data):
    lines = data.draw(st.lists(lines_for(name) | BLANK, max_size=8), label="lines")
    newline = data.draw(st.sampled_from(["\n", "\r\n"]), label="newline")
    last = data.draw(st.sampled_from(["", newline]), label="final newline")
    header = HEADERS[name]
    physical = ([header] if header else []) + lines
    path = scratch / FILE_NAMES[name]
    with open(path, "w", encoding="utf-8", newline="") as f:
        f.write(newline.join(physical) + (last if physical else ""))
    row_format = RowFormat(name, FORMAT_COLUMNS.get(name, Columns()))

    good, bad, rows_in = readers.read_file(str(path), row_format, file_index=5)

    first = 2 if header else 1
    if not header and lines:  # a byte-order mark opening the file is not data
        lines = [lines[0].removeprefix("\ufeff")] + lines[1:]
    expected = {number: line for number, line in enumerate(lines, start=first)
                if line.strip()}
    assert rows_in == len(expected) == len(good) + len(bad)
    seen = [readers.split_seq(row.seq) for row in good]
    assert all(index == 5 for index, _ in seen)
    good_lines = [number for _, number in seen]
    bad_lines = [b["line"] for b in bad]
    assert sorted(good_lines + bad_lines) == sorted(expected)
    assert good_lines == sorted(good_lines) and bad_lines == sorted(bad_lines)
    for b in bad:
        assert b["text"] == expected[b["line"]] and b["reason"] and b["file"] == str(path)
    parser = _parser(name, header, FORMAT_COLUMNS.get(name, Columns()))
    for row, number in zip(good, good_lines):
        _check_interaction(row, readers.make_seq(5, number))
        assert parser.parse(expected[number], row.seq) == row


def _id_text(forbidden: str = ""):
    alphabet = st.characters(blacklist_characters="\r\n" + forbidden,
                             blacklist_categories=("Cs",))
    return st.text(alphabet, min_size=1, max_size=12).filter(lambda s: s == s.strip() and s)


@st.composite
def valid_rows(draw, forbidden=""):
    category = _id_text(forbidden + "|")
    return (draw(_id_text(forbidden)), draw(_id_text(forbidden)),
            draw(st.integers(0, 253402300799)),   # 1970 .. 9999-12-31T23:59:59Z
            draw(st.floats(allow_nan=False, allow_infinity=False)),
            tuple(draw(st.lists(category, max_size=3, unique=True))))


def _expected(rows, first_line):
    return [Interaction(*row, seq=number)
            for number, row in enumerate(rows, start=first_line)]


@settings(max_examples=200, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=st.lists(valid_rows(), max_size=6))
def test_valid_csv_rows_round_trip(scratch, rows):
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["ts", "cats", "item", "user", "rating"])
    for user, item, ts, rating, cats in rows:
        writer.writerow([ts, "|".join(cats), item, user, repr(rating)])
    path = _write(scratch / "round.csv", buffer.getvalue())
    good, bad, rows_in = readers.read_file(
        path, RowFormat("csv", Columns(rating="rating", categories="cats")))
    assert bad == [] and rows_in == len(rows)
    assert good == _expected(rows, 2)


@settings(max_examples=200, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=st.lists(valid_rows(forbidden="\t"), max_size=6))
def test_valid_tsv_rows_round_trip(scratch, rows):
    text = "user\titem\tts\trating\tcats\n" + "".join(
        f"{u}\t{i}\t{ts}\t{r!r}\t{'|'.join(c)}\n" for u, i, ts, r, c in rows)
    path = _write(scratch / "round.tsv", text)
    good, bad, _ = readers.read_file(
        path, RowFormat("tsv", Columns(rating="rating", categories="cats")))
    assert bad == [] and good == _expected(rows, 2)


@settings(max_examples=200, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=st.lists(valid_rows(), max_size=6), ascii_only=st.booleans())
def test_valid_jsonl_rows_round_trip(scratch, rows, ascii_only):
    text = "".join(json.dumps({"u": u, "i": i, "t": ts, "r": r, "c": list(c)},
                              ensure_ascii=ascii_only) + "\n" for u, i, ts, r, c in rows)
    path = _write(scratch / "round.jsonl", text)
    good, bad, _ = readers.read_file(
        path, RowFormat("jsonl", Columns("u", "i", "t", "r", "c")))
    assert bad == [] and good == _expected(rows, 1)


def test_byte_order_mark_is_not_part_of_the_header(tmp_path):
    good, bad, _ = _read(tmp_path, "x.csv", "\ufeffuser,item,ts\na,b,1\n")
    assert good == [Interaction("a", "b", 1, None, (), 2)] and not bad


if __name__ == "__main__":  # Bazel's py_test runs the file as a script
    raise SystemExit(pytest.main([__file__]))
