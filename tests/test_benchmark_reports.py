"""benchmarks.reports: invocations updating one report at once lose nothing; reports say
which code their runs ran."""
import json
import multiprocessing
import time

import pytest

from benchmarks.reports import code_lines, run_code, update_report


def _render(report):
    return "\n".join(f"{d}: {len(s['updates'])}" for d, s in sorted(report["datasets"].items()))


def _append_updates(json_path, md_path, dataset, count):
    def update(report):
        section = report["datasets"].setdefault(dataset, {"updates": []})
        time.sleep(0.02)  # a slow tabulation: another process may read meanwhile
        section["updates"].append(len(section["updates"]))

    for _ in range(count):
        update_report(json_path, md_path, "test", update, _render)


def test_an_update_keeps_the_sections_already_on_disk(tmp_path):
    json_path, md_path = str(tmp_path / "r.json"), str(tmp_path / "r.md")
    _append_updates(json_path, md_path, "yelp-a", 1)
    _append_updates(json_path, md_path, "movielens-100k", 2)
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["benchmark"] == "test"
    assert report["datasets"] == {"yelp-a": {"updates": [0]},
                                  "movielens-100k": {"updates": [0, 1]}}
    assert (tmp_path / "r.md").read_text() == "movielens-100k: 2\nyelp-a: 1\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.json", "r.json.lock", "r.md"]


def test_concurrent_invocations_of_different_datasets_lose_no_update(tmp_path):
    json_path, md_path = str(tmp_path / "r.json"), str(tmp_path / "r.md")
    context = multiprocessing.get_context("spawn")
    workers = [context.Process(target=_append_updates, args=(json_path, md_path, d, 8))
               for d in ("yelp-a", "movielens-100k")]
    for w in workers:
        w.start()
    for w in workers:
        w.join(60)
        assert w.exitcode == 0
    report = json.loads((tmp_path / "r.json").read_text())
    assert {d: s["updates"] for d, s in report["datasets"].items()} == {
        "yelp-a": list(range(8)), "movielens-100k": list(range(8))}


def _run(source, *code):
    """A run record: the benchmark's digest of its source list, and the run's own code."""
    return {"process": {"source": source},
            "metrics": {"code": [{"digest": d} for d in code]} if code else {}}


def test_runs_compare_by_the_code_they_recorded():
    runs = {"mf": _run("list1", "aaa"), "gcn": _run("list2", "aaa")}
    # Only a file outside the benchmark's list changed: the recorded code tells.
    assert code_lines(runs, "listed sources") == [
        "- All runs ran the same tfmeta modules they imported (metrics.json `code`) "
        "(digest aaa)."]
    runs["gcn"] = _run("list1", "aaa", "bbb")  # resumed after an edit
    assert run_code(runs["gcn"]) == "aaa then bbb"
    lines = code_lines(runs, "listed sources", ["checked: a docstring"])
    assert lines[0].startswith("- **Warning**: the runs ran 2 different versions")
    assert lines[1:] == ["  - `aaa`: 1 runs (mf)", "  - `aaa then bbb`: 1 runs (gcn)",
                         "  - checked: a docstring"]


def test_runs_from_before_code_was_recorded_compare_by_the_benchmarks_digest():
    runs = {"mf": _run("list1"), "gcn": _run("list1", "aaa")}
    assert code_lines(runs, "listed sources") == [
        "- All runs ran the same listed sources (digest list1)."]
    assert run_code(runs["mf"]) == "list1" and run_code(runs["gcn"]) == "aaa"


if __name__ == "__main__":
    raise SystemExit(pytest.main([__file__]))
