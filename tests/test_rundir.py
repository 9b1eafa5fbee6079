"""A run directory's record of the code that trained it (metrics.json `code`) and of the
build of the periods it read (`periods_digest`)."""
import hashlib
import json
import sys
import types

import pytest

from tfmeta.training import rundir


@pytest.fixture
def probe_module(tmp_path, monkeypatch):
    """A tfmeta module this process has imported, whose file the test can edit."""
    path = tmp_path / "probe.py"
    path.write_text("ANSWER = 1\n")
    module = types.ModuleType("tfmeta._probe")
    module.__file__ = str(path)
    monkeypatch.setitem(sys.modules, "tfmeta._probe", module)
    return path


def test_the_code_digest_follows_the_imported_modules_files(probe_module, monkeypatch):
    first = rundir.code_version()
    assert first == rundir.code_version()
    assert first["modules"] >= 2 and len(first["digest"]) == 12
    probe_module.write_text("ANSWER = 2\n")
    edited = rundir.code_version()
    assert edited["digest"] != first["digest"]
    # A module outside tfmeta does not count: the digest is of the library's code.
    other = types.ModuleType("not_tfmeta")
    other.__file__ = str(probe_module)
    monkeypatch.setitem(sys.modules, "not_tfmeta", other)
    assert rundir.code_version() == edited
    monkeypatch.delitem(sys.modules, "tfmeta._probe")
    assert rundir.code_version()["modules"] == first["modules"] - 1


def test_a_resumed_run_lists_each_version_that_trained_it(probe_module):
    state = {"seconds": 0.0}
    rundir.record_code(state)
    rundir.record_code(state)  # resumed under the same code: nothing new
    assert [c["digest"] for c in state["code"]] == [rundir.code_version()["digest"]]
    probe_module.write_text("ANSWER = 2\n")
    rundir.record_code(state)
    assert len(state["code"]) == 2
    assert state["code"][-1] == rundir.code_version()


def test_a_run_killed_before_code_was_recorded_says_so_when_resumed():
    state = {"seconds": 120.0, "phases": {}}  # progress.json of such a run
    rundir.record_code(state)
    assert state["code"] == [{"digest": "unrecorded"}, rundir.code_version()]


MANIFEST = {"protocol": "a", "created": "2026-12-05T01:00:00+00:00", "seconds": 21.9,
            "builder": "beam/in-process",
            "input": {"paths": ["/data/yelp-a/interactions.csv"],
                      "sha256": {"/data/yelp-a/interactions.csv": "51fe6a"}},
            "options": {"input": "yelp-a", "out": "/work/runs/periods", "seed": 0},
            "periods": [{"name": "train-2019-01", "rows": 28186}]}


def test_a_rebuild_of_the_same_input_with_the_same_options_is_the_same_build():
    # again, elsewhere, later, slower, on Dataflow: what it holds is the same
    again = dict(MANIFEST, created="2026-12-06T03:06:47+00:00", seconds=43.6,
                 builder="beam/dataflow",
                 input={"paths": ["/mnt/shared/yelp-a/interactions.csv"],
                        "sha256": {"/mnt/shared/yelp-a/interactions.csv": "51fe6a"}},
                 options=dict(MANIFEST["options"], out="/tmp/periods"))
    assert rundir.periods_digest(again) == rundir.periods_digest(MANIFEST)
    for other in (dict(MANIFEST, options=dict(MANIFEST["options"], seed=1)),
                  dict(MANIFEST, input=dict(MANIFEST["input"], sha256={"f": "9ab1c2"})),
                  dict(MANIFEST, periods=[{"name": "train-2019-01", "rows": 28185}])):
        assert rundir.periods_digest(other) != rundir.periods_digest(MANIFEST)


def test_a_run_recorded_with_the_whole_manifests_digest_still_matches_its_build():
    whole = hashlib.sha256(json.dumps(MANIFEST, sort_keys=True).encode()).hexdigest()[:12]
    assert whole != rundir.periods_digest(MANIFEST)
    assert rundir.is_digest_of(whole, MANIFEST)
    assert not rundir.is_digest_of(whole, dict(MANIFEST, created="2026-12-06"))
    build = types.SimpleNamespace(manifest=MANIFEST)
    rundir.check_same_periods({"periods_digest": whole}, build, "run")


def test_a_run_resumes_only_on_the_build_of_the_periods_it_started_on():
    build = types.SimpleNamespace(manifest=MANIFEST)
    state = rundir.run_identity("a", build, types.SimpleNamespace(method="mf", seed=0))
    rundir.check_same_periods(state, build, "run")               # the same build
    rundir.check_same_periods({}, build, "run")                  # from before the digest
    again = types.SimpleNamespace(manifest=dict(MANIFEST, options={"seed": 1}))
    with pytest.raises(ValueError, match="another build of its periods.*another --out"):
        rundir.check_same_periods(state, again, "run")
    with pytest.raises(ValueError, match="serve the wrong items"):
        rundir.check_same_periods(state, again, "run", rundir.EXPORT_ADVICE)


if __name__ == "__main__":  # Bazel's py_test runs the file as a script
    raise SystemExit(pytest.main([__file__]))
