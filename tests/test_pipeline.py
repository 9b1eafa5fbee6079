"""The Beam period pipeline: equal to the plain pandas reference, true to PROTOCOLS.md,
and safe with bad input and interrupted runs."""
import collections
import csv
import datetime
import json
import os
import random
import signal
import subprocess
import sys
import time

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from conftest import decoded_records, same_records
from pipelines import manifest as manifest_lib
from pipelines.options import BuildOptions
from pipelines.output import OutputExists
from pipelines.periods import build_periods
from pipelines.reference import build_reference
from tfmeta.data.periods import PeriodDataset

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
VOLATILE = {"builder", "seconds", "created", "options", "rejected_files", "candidates",
            "input"}


def write_log(path, rows=1500, users=40, items=60, seed=1, bad_every=None,
              iso=False, start=datetime.datetime(2020, 1, 1, tzinfo=datetime.timezone.utc)):
    """A small implicit-feedback CSV with categories, repeats, tied timestamps and,
    optionally, one malformed row every `bad_every` rows."""
    rng = random.Random(seed)
    t0 = int(start.timestamp())
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["user", "item", "ts", "categories"])
        for i in range(rows):
            if bad_every and i % bad_every == bad_every - 1:
                writer.writerow([f"u{i}", "", "not-a-time", ""])
                continue
            ts = t0 + rng.randrange(0, 180 * 86400) // 3600 * 3600  # hourly: many ties
            item = rng.randrange(items)
            when = (datetime.datetime.fromtimestamp(ts, datetime.timezone.utc).isoformat()
                    if iso else ts)
            writer.writerow([f"u{rng.randrange(users)}", f"i{item}", when,
                             f"c{item % 5}|c{item % 3 + 5}"])
    return str(path)


def assert_same_output(beam_dir, reference_dir):
    beam, ref = PeriodDataset(beam_dir), PeriodDataset(reference_dir)
    for key in set(beam.manifest) | set(ref.manifest):
        if key == "periods":
            strip = lambda ps: [{k: v for k, v in p.items() if k != "files"} for p in ps]  # noqa
            assert strip(beam.periods) == strip(ref.periods)
        elif key not in VOLATILE:
            assert beam.manifest[key] == ref.manifest[key], key
    for period in beam.periods:
        same_records(beam.files([period["index"]]), ref.files([period["index"]]))
    for kind in beam.manifest["vocab"]:
        if kind != "sizes":
            assert beam.vocabulary(kind) == ref.vocabulary(kind), kind
    if beam.protocol == "a":
        for window in ("val", "test"):
            b, r = beam.manifest["candidates"][window], ref.manifest["candidates"][window]
            same_records((os.path.join(beam_dir, f) for f in b["tfrecord"]),
                         (os.path.join(reference_dir, f) for f in r["tfrecord"]))
            lines = [open(os.path.join(d, c["csv"])).read().splitlines()
                     for d, c in ((beam_dir, b), (reference_dir, r))]
            assert lines[0][0] == lines[1][0]
            assert sorted(lines[0][1:]) == sorted(lines[1][1:])


@pytest.mark.parametrize("protocol,feedback", [("a", "auto"), ("b", "auto"), ("b", "implicit")])
def test_beam_equals_reference_on_movielens_100k(build_once, movielens_100k, protocol,
                                                  feedback):
    options = dict(input="movielens-100k", protocol=protocol, feedback=feedback)
    beam_dir = build_once("beam", **options)
    assert_same_output(beam_dir, build_once("reference", **options))
    m = PeriodDataset(beam_dir).manifest
    assert m["rows_in"] == 100_000
    assert m["rows_in"] == m["rows_out"] + m["rows_rejected"] + m["rows_deduplicated"]


@pytest.mark.parametrize("options", [
    dict(protocol="a", granularity="week", cut="2020-05-01", val_months=1),
    dict(protocol="a", granularity="count", periods=7, cut="2020-05-15", val_months=1),
    dict(protocol="b", periods=31),
], ids=["a-week", "a-count", "b-implicit-categories"])
def test_beam_equals_reference_on_small_logs(tmp_path, options):
    log = write_log(tmp_path / "log.csv", iso=options.get("granularity") == "week")
    common = dict(input=log, columns="user=user,item=item,ts=ts,categories=categories",
                  seed=7, negatives=20, **options)
    build_periods(BuildOptions(out=str(tmp_path / "beam"), **common))
    build_reference(BuildOptions(out=str(tmp_path / "ref"), **common))
    assert_same_output(str(tmp_path / "beam"), str(tmp_path / "ref"))
    m = PeriodDataset(tmp_path / "beam").manifest
    assert m["has_categories"] and m["vocab"]["sizes"]["items"] == 60
    assert m["rows_deduplicated"] > 0


def _raw_ml100k(path):
    rows = []
    with open(path) as f:
        next(f)
        for line in f:
            user, item, rating, ts = line.rstrip("\n").split("\t")
            rows.append((user, item, int(float(ts)), float(rating)))
    return rows


def test_protocol_b_periods_histories_and_negatives(build_once, movielens_100k):
    """PROTOCOLS.md B on real data, checked from the raw file: equal-count periods,
    30 most recent positives strictly before t, negatives never seen by the user."""
    data = PeriodDataset(build_once("beam", input="movielens-100k", protocol="b",
                                    feedback="implicit"))
    raw = _raw_ml100k(movielens_100k)
    kept = len({(u, i) for u, i, _, _ in raw})  # implicit: one row per pair
    sizes = [p["positives"] for p in data.periods]
    assert len(sizes) == 31 and sum(sizes) == kept and max(sizes) - min(sizes) <= 1
    first_seen = {}
    timeline = collections.defaultdict(list)
    for seq, (u, i, ts, _) in enumerate(raw):
        first_seen[i] = min(first_seen.get(i, ts), ts)
        timeline[u].append((ts, seq, i))
    for u in timeline:
        timeline[u].sort()
    checked = 0
    for period in data.periods[::10]:
        for record in decoded_records(data.files([period["index"]]))[::7]:
            ex = json.loads(record)
            user, ts = ex["user"][0], ex["ts"][0]
            events = timeline[user]
            before = [i for t, _, i in events if t < ts]
            distinct_before = list(dict.fromkeys(before))  # earliest of each pair kept
            assert ex.get("history", []) == distinct_before[-30:]
            if ex["sampled"][0]:
                item = ex["item"][0]
                assert item not in {i for t, _, i in events if t <= ts}
                assert first_seen[item] <= ts
                assert ex["label"] == [0]
            checked += 1
    assert checked > 100


def test_protocol_a_candidates(build_once, movielens_100k):
    data = PeriodDataset(build_once("beam", input="movielens-100k", protocol="a"))
    m = data.manifest
    raw = _raw_ml100k(movielens_100k)
    user_items = collections.defaultdict(set)
    first_seen, user_first = {}, {}
    for u, i, ts, _ in raw:
        user_items[u].add(i)
        first_seen[i] = min(first_seen.get(i, ts), ts)
        user_first[u] = min(user_first.get(u, ts), ts)
    start = m["window_bounds"]["test_start"]
    test_rows = [r for r in raw if r[2] >= start]
    warm = [r for r in test_rows if user_first[r[0]] < start and first_seen[r[1]] < start]
    assert m["instances"]["test"] == len(warm) > 1000
    assert (m["excluded"]["test"]["cold_user"] + m["excluded"]["test"]["cold_item"]
            == len(test_rows) - len(warm))
    batch = next(iter(data.candidates("test", batch_size=512)))
    for user, pos, negs in zip(batch["user"].numpy(), batch["positive"].numpy(),
                               batch["negatives"].numpy()):
        user, negs = user.decode(), {n.decode() for n in negs}
        assert len(negs) == 99 and pos.decode() not in negs
        assert not negs & user_items[user]
        assert all(first_seen[n] < start for n in negs)
    steps = [p["label"] for p in data.periods]
    assert steps == sorted(steps) and steps[0] == "1997-09" and steps[-1] == "1998-04"
    assert sum(p["rows"] for p in data.periods) == m["rows_out"]


def test_too_many_bad_rows_fails_and_keeps_the_dead_letters(tmp_path):
    log = write_log(tmp_path / "log.csv", rows=400, bad_every=20)  # 5% malformed
    out = tmp_path / "out"
    options = dict(input=log, out=str(out), protocol="b",
                   columns="user=user,item=item,ts=ts,categories=categories")
    with pytest.raises(manifest_lib.TooManyBadRows) as error:
        build_periods(BuildOptions(**options))
    message = str(error.value)
    assert "20 of 400 rows" in message and "log.csv:21:" in message
    assert f"{out}.failed/rejected" in message
    assert not out.exists()
    rejected = [json.loads(line) for path in (tmp_path / "out.failed" / "rejected").iterdir()
                for line in path.read_text().splitlines()]
    assert len(rejected) == 20 and all(r["reason"] for r in rejected)

    m = build_periods(BuildOptions(max_bad_fraction=0.1, **options))
    assert m["rows_rejected"] == 20
    assert m["rows_in"] == 400 == m["rows_out"] + 20 + m["rows_deduplicated"]
    assert (out / "manifest.json").exists()


def test_existing_output_is_kept_without_overwrite(tmp_path):
    log = write_log(tmp_path / "log.csv", rows=300)
    options = dict(input=log, out=str(tmp_path / "out"), protocol="b", periods=5,
                   columns="user=user,item=item,ts=ts")
    first = build_periods(BuildOptions(**options))
    with pytest.raises(OutputExists, match="--overwrite"):
        build_periods(BuildOptions(seed=3, **options))
    assert PeriodDataset(tmp_path / "out").manifest["created"] == first["created"]
    second = build_periods(BuildOptions(seed=3, overwrite=True, **options))
    assert PeriodDataset(tmp_path / "out").manifest["options"]["seed"] == 3
    assert second["rows_out"] == first["rows_out"]
    assert sorted(os.listdir(tmp_path)) == ["log.csv", "out"]  # no staging left behind


def test_a_failing_build_leaves_nothing(tmp_path, monkeypatch):
    from pipelines import periods
    log = write_log(tmp_path / "log.csv", rows=300)

    def explode(self, element, ctx):
        raise RuntimeError("worker lost")
        yield  # pragma: no cover

    monkeypatch.setattr(periods.LabelledExamples, "process", explode)
    with pytest.raises(Exception, match="worker lost"):
        build_periods(BuildOptions(input=log, out=str(tmp_path / "out"), protocol="b",
                                   columns="user=user,item=item,ts=ts"))
    assert sorted(os.listdir(tmp_path)) == ["log.csv"]


def test_a_killed_build_leaves_nothing_that_looks_complete(tmp_path, movielens_100k):
    out = tmp_path / "out"
    command = [sys.executable, "-m", "tfmeta.cli", "periods", "build", "--input",
               "movielens-100k", "--protocol", "a", "--out", str(out)]
    process = subprocess.Popen(command, cwd=REPO, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + 60
    while time.time() < deadline and not list(tmp_path.glob("out.partial-*")):
        time.sleep(0.1)
    time.sleep(2)  # well into the pipeline
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    assert not out.exists()
    assert not list(tmp_path.glob("*/manifest.json"))
    # The next build is not confused by the debris.
    subprocess.run(command, cwd=REPO, check=True, capture_output=True)
    assert (out / "manifest.json").exists()


def test_multi_process_runner_gives_the_same_output(tmp_path):
    log = write_log(tmp_path / "log.csv", rows=800)
    common = dict(input=log, protocol="b", periods=6, columns="user=user,item=item,ts=ts")
    build_periods(BuildOptions(out=str(tmp_path / "one"), **common))
    build_periods(BuildOptions(out=str(tmp_path / "many"), **common), runner="multi-process")
    assert_same_output(str(tmp_path / "one"), str(tmp_path / "many"))


_VALID = st.builds(
    lambda u, i, t: f"u{u},i{i},{t}",
    st.integers(0, 5), st.integers(0, 8), st.integers(0, 2_000_000_000))
_JUNK = st.one_of(
    st.text(alphabet=st.characters(blacklist_categories=["Cs"], blacklist_characters="\r\n"),
            max_size=30),
    st.sampled_from([",,", "u1,i1", "u1,i1,5,extra", "u1,,5", "u1,i1,-3", "u1,i1,1e400",
                     '"u,1",i1,7', "u1,i1,2020-02-30", "u1,i1,2020-02-03T04:05:06+02:00",
                     "\x00,\x00,\x00", "u1,i1,nan"]))


@settings(max_examples=6, deadline=None, suppress_health_check=list(HealthCheck))
@given(lines=st.lists(st.one_of(_VALID, _VALID, _JUNK), min_size=1, max_size=60),
       protocol=st.sampled_from(["a", "b"]))
def test_adversarial_files_beam_equals_reference(tmp_path_factory, lines, protocol):
    """Malformed and adversarial rows never crash a build, are all accounted for, and
    Beam agrees with the reference on every one of them."""
    tmp = tmp_path_factory.mktemp("adversarial")
    (tmp / "log.csv").write_text("user,item,ts\n" + "\n".join(lines) + "\n")
    common = dict(input=str(tmp / "log.csv"), protocol=protocol, periods=3,
                  cut="2000-01-01", val_months=2, negatives=3, max_bad_fraction=1.0)
    try:
        ref = build_reference(BuildOptions(out=str(tmp / "ref"), **common))
    except manifest_lib.TooManyBadRows:  # every row was bad
        with pytest.raises(manifest_lib.TooManyBadRows):
            build_periods(BuildOptions(out=str(tmp / "beam"), **common))
        return
    beam = build_periods(BuildOptions(out=str(tmp / "beam"), **common))
    assert beam["rows_in"] == beam["rows_out"] + beam["rows_rejected"] + beam["rows_deduplicated"]
    assert beam["rows_in"] == sum(1 for line in lines if line.strip())
    assert_same_output(str(tmp / "beam"), str(tmp / "ref"))
    rejected = [json.loads(line) for f in (tmp / "beam" / "rejected").iterdir()
                for line in f.read_text().splitlines()]
    assert len(rejected) == beam["rows_rejected"]
    assert ref["rows_rejected"] == beam["rows_rejected"]


def test_words_no_option_takes_are_stray_and_refused_before_any_work(tmp_path):
    from pipelines.periods import pipeline_options, stray_words
    dataflow = ["--project=p", "--region", "us-central1", "--save_main_session",
                "--temp_location", "gs://b/tmp"]
    assert stray_words(dataflow) == []
    assert stray_words(["logs/b.csv", *dataflow, "logs/c.csv"]) == ["logs/b.csv",
                                                                     "logs/c.csv"]
    with pytest.raises(ValueError, match="quote it"):
        pipeline_options("in-process", ["logs/b.csv"])
    with pytest.raises(ValueError, match="logs/b.csv"):
        build_periods(BuildOptions(input="movielens-100k", protocol="b",
                                   out=str(tmp_path / "x")), pipeline_args=["logs/b.csv"])
    assert not (tmp_path / "x").exists()


if __name__ == "__main__":  # Bazel's py_test runs the file as a script
    raise SystemExit(pytest.main([__file__]))
