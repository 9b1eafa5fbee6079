"""SavedModel exports: signatures, raw-id lookups, equality with the in-memory models
(in process, in a fresh process that never imports tfmeta, through saved_model_cli and
TF Serving's REST bodies), fuzzed requests, atomic versions."""
import tfmeta  # noqa: F401

import base64
import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import tensorflow as tf

from conftest import rebuilt
from tfmeta import cli
from tfmeta.export import export_run, export_server, publish, versions
from tfmeta.export.ctr import CtrServer
from tfmeta.export.ranking import RankingServer
from tfmeta.export.rest import predict
from tfmeta.export.run import ABOUT_FILE, save_server
from tfmeta.export.warmup import WARMUP_FILE, read_warmup, replay_warmup
from tfmeta.meta.leaprec import Scorer
from tfmeta.models import make_model
from tfmeta.models.embedding_mlp import EmbeddingMLP

U, I, MAX_LEN = 6, 9, 4
USERS = [f"u{n}" for n in range(U)]
ITEMS = [f"i{n}" for n in range(I)]
EDGES = ([1, 1, 2, 3, 4, 5, 6, 6], [1, 2, 3, 4, 5, 6, 7, 9])
RANKING = ("mf", "gcn", "ngcf", "lightgcn", "sasrec", "gru4rec", "gnn-sa", "leaprec")
# Unknown users and items, '' anywhere, a history longer than MAX_LEN, an empty one.
REQUEST = {
    "user_id": ["u0", "u5", "nobody", "u2"],
    "history": [["i1", "", "i3", "", "", "", ""],
                ["i8", "i7", "i6", "i5", "i4", "i3", "i2"],
                ["zz", "i0", "", "", "", "", ""],
                ["", "", "", "", "", "", ""]],
    "item_ids": [["i0", "i4", "nope"], ["i8", "i1", ""], ["i2", "i2", "i3"],
                 ["i5", "i6", "i7"]],
}


def rows(vocabulary, ids):
    index = {v: r + 1 for r, v in enumerate(vocabulary)}
    return tf.constant(np.vectorize(lambda s: index.get(s, 0), otypes=[np.int64])(
        np.array(ids, object)),
                       tf.int64)


def ranking_models(name):
    if name == "leaprec":  # GTL + OTL: two models whose scores add up
        models = [make_model("gnn-sa", U, I, embedding_dim=8, max_len=MAX_LEN, seed=1),
                  make_model("gnn-sa", U, I, embedding_dim=4, max_len=MAX_LEN, seed=2)]
    else:
        models = [make_model(name, U, I, embedding_dim=8, max_len=MAX_LEN, seed=1)]
    scorer = Scorer(models)
    scorer.set_graph(*EDGES)
    for m in models:  # away from the initial values, so that every variable matters
        for v in m.trainable_variables:
            v.assign(v + tf.random.stateless_normal(v.shape, [3, len(v.name)], stddev=0.1))
    return scorer


def exported(server, path):
    save_server(server, str(path))
    return tf.saved_model.load(str(path))


def expected_ranking(scorer, request):
    return scorer.frozen()(rows(USERS, request["user_id"]), rows(ITEMS, request["history"]),
                           rows(ITEMS, request["item_ids"])).numpy()


@pytest.mark.parametrize("name", RANKING)
def test_ranking_export_scores_like_the_model(name, tmp_path):
    scorer = ranking_models(name)
    loaded = exported(RankingServer(scorer.models, USERS, ITEMS, str(tmp_path / "assets"),
                                    top_k=5), tmp_path / "model")
    assert set(loaded.signatures) == {"serving_default", "top_k", "predict_examples"}
    request = {k: tf.constant(v) for k, v in REQUEST.items()}
    got = loaded.signatures["serving_default"](**request)["scores"].numpy()
    np.testing.assert_allclose(got, expected_ranking(scorer, REQUEST), atol=1e-5)

    top = loaded.signatures["top_k"](user_id=request["user_id"], history=request["history"])
    everything = scorer.frozen().all_items(rows(USERS, REQUEST["user_id"]),
                                           rows(ITEMS, REQUEST["history"])).numpy()[:, 1:]
    assert top["item_ids"].shape == (4, 5) and top["scores"].shape == (4, 5)
    np.testing.assert_allclose(top["scores"].numpy(), -np.sort(-everything)[:, :5], atol=1e-5)
    ids = top["item_ids"].numpy().astype(str)
    picked = np.take_along_axis(everything, rows(ITEMS, ids).numpy() - 1, axis=1)
    np.testing.assert_allclose(picked, top["scores"].numpy(), atol=1e-5)
    # Saved: each part's node table once and the weights its user encoder reads (no
    # GCN weights: their output is the node table; no embedding table; no dropout draw
    # counters: inference draws no masks).
    saved = tf.train.list_variables(str(tmp_path / "model" / "variables" / "variables"))
    size = sum(int(np.prod(shape)) for key, shape in saved if "VARIABLE_VALUE" in key)
    encoders = [getattr(m, "encoder", None) for m in scorer.models]
    want = sum(int(np.prod(m.node_representations().shape)) for m in scorer.models) + sum(
        int(np.prod(v.shape)) for e in encoders if e is not None
        for v in e.trainable_variables)
    if name == "sasrec":
        want += sum(int(np.prod(m.position_embeddings.shape)) for m in scorer.models)
    assert size == want


def ranking_example(user, history, items, user_key="user_id"):
    def strings(values):
        return tf.train.Feature(bytes_list=tf.train.BytesList(value=[v.encode()
                                                                     for v in values]))
    return tf.train.Example(features=tf.train.Features(feature={
        user_key: strings([user]), "history": strings(history),
        "item_ids": strings(items)})).SerializeToString()


def test_predict_examples_and_rest_bodies_give_the_same_scores(tmp_path):
    scorer = ranking_models("gnn-sa")
    loaded = exported(RankingServer(scorer.models, USERS, ITEMS, str(tmp_path / "a"), 3),
                      tmp_path / "model")
    want = expected_ranking(scorer, REQUEST)
    # tf.Example lists may differ in length (parsing pads them); keys: signature names
    # or the period schema's (user).
    examples = [ranking_example(u, [x for x in h if x], c, "user" if n % 2 else "user_id")
                for n, (u, h, c) in enumerate(zip(*REQUEST.values()))]
    got = loaded.signatures["predict_examples"](examples=tf.constant(examples))["scores"]
    np.testing.assert_allclose(got.numpy(), want, atol=1e-5)

    rows_body = {"instances": [dict(zip(REQUEST, values)) for values in zip(*REQUEST.values())]}
    assert np.allclose(predict(loaded, rows_body)["predictions"], want, atol=1e-5)
    assert np.allclose(predict(loaded, {"inputs": REQUEST})["outputs"], want, atol=1e-5)
    b64 = [{"b64": base64.b64encode(e).decode()} for e in examples]
    body = {"signature_name": "predict_examples", "instances": b64}
    assert np.allclose(predict(loaded, body)["predictions"], want, atol=1e-5)
    top = predict(loaded, {"signature_name": "top_k", "instances": [
        {"user_id": "u1", "history": ["i1", "i2"]}]})["predictions"][0]
    assert set(top) == {"item_ids", "scores"} and all(i in ITEMS for i in top["item_ids"])
    with pytest.raises(ValueError, match="pad lists"):  # ragged rows, as TF Serving
        predict(loaded, {"inputs": dict(REQUEST, history=[["i1"], [], ["i2"], ["i3"]])})
    with pytest.raises(ValueError, match="unknown signature_name"):
        predict(loaded, {"signature_name": "nope", "inputs": REQUEST})


def test_fuzzed_requests_never_crash(tmp_path):
    scorer = ranking_models("leaprec")
    loaded = exported(RankingServer(scorer.models, USERS, ITEMS, str(tmp_path / "a"), 4),
                      tmp_path / "model")
    serve, top_k = loaded.signatures["serving_default"], loaded.signatures["top_k"]
    rng = np.random.default_rng(0)
    pool = ITEMS + USERS + ["", "??", "i", "i10", "\u00e9t\u00e9", " i1"]
    for _ in range(40):
        b, length, c = rng.integers(1, 4), rng.choice([0, 1, 3, 300]), rng.integers(0, 5)
        request = {"user_id": rng.choice(pool, b), "history": rng.choice(pool, (b, length)),
                   "item_ids": rng.choice(pool, (b, c))}
        scores = serve(**{k: tf.constant(v) for k, v in request.items()})["scores"]
        assert scores.shape == (b, c) and np.isfinite(scores.numpy()).all()
        np.testing.assert_allclose(scores.numpy(), expected_ranking(scorer, request), atol=1e-5)
        top = top_k(user_id=tf.constant(request["user_id"]),
                    history=tf.constant(request["history"]))
        assert top["item_ids"].shape == (b, 4) and np.isfinite(top["scores"].numpy()).all()
    # Inconsistent batch sizes are refused with an error, not a crash.
    with pytest.raises(tf.errors.InvalidArgumentError):
        serve(user_id=tf.constant(["u1", "u2"]), history=tf.constant([["i1"]] * 3),
              item_ids=tf.constant([["i1"]] * 2))


FRESH = textwrap.dedent("""
    import json, sys
    import numpy as np
    import tensorflow as tf
    path, request, out = sys.argv[1:]
    loaded = tf.saved_model.load(path)
    request = {k: tf.constant(v) for k, v in json.loads(request).items()}
    np.save(out, loaded.signatures["serving_default"](**request)["scores"].numpy())
    leaked = [m for m in sys.modules if m.split(".")[0] in ("tfmeta", "tensorflow_gnn",
                                                            "tensorflow_recommenders")]
    assert not leaked, leaked
""")


def test_a_fresh_process_without_tfmeta_loads_the_export(tmp_path):
    scorer = ranking_models("leaprec")
    save_server(RankingServer(scorer.models, USERS, ITEMS, str(tmp_path / "a")),
                str(tmp_path / "model"))
    env = {k: v for k, v in os.environ.items() if k != "TF_USE_LEGACY_KERAS"}
    subprocess.run([sys.executable, "-c", FRESH, str(tmp_path / "model"), json.dumps(REQUEST),
                    str(tmp_path / "scores.npy")], check=True, env=env, cwd=tmp_path,
                   timeout=300)
    np.testing.assert_allclose(np.load(tmp_path / "scores.npy"),
                               expected_ranking(scorer, REQUEST), atol=1e-5)


def saved_model_cli(*args) -> str:
    return subprocess.run([sys.executable, "-m", "tensorflow.python.tools.saved_model_cli",
                           *args], check=True, capture_output=True, text=True,
                          timeout=300).stdout


def test_saved_model_cli_shows_and_runs_the_signatures(tmp_path):
    scorer = ranking_models("sasrec")
    path = str(tmp_path / "model")
    save_server(RankingServer(scorer.models, USERS, ITEMS, str(tmp_path / "a"), top_k=3),
                path)
    shown = saved_model_cli("show", "--dir", path, "--all")
    for signature, inputs, outputs in (
            ("serving_default", {"user_id": "(-1)", "history": "(-1, -1)",
                                 "item_ids": "(-1, -1)"}, {"scores": ("DT_FLOAT", "(-1, -1)")}),
            ("top_k", {"user_id": "(-1)", "history": "(-1, -1)"},
             {"item_ids": ("DT_STRING", "(-1, 3)"), "scores": ("DT_FLOAT", "(-1, 3)")}),
            ("predict_examples", {"examples": "(-1)"}, {"scores": ("DT_FLOAT", "(-1, -1)")})):
        block = shown.split(f"signature_def['{signature}']:")[1].split("signature_def[")[0]
        for name, shape in inputs.items():
            assert (f"inputs['{name}'] tensor_info:\n        dtype: DT_STRING\n"
                    f"        shape: {shape}") in block
        for name, (dtype, shape) in outputs.items():
            assert (f"outputs['{name}'] tensor_info:\n        dtype: {dtype}\n"
                    f"        shape: {shape}") in block
    ran = saved_model_cli(
        "run", "--dir", path, "--tag_set", "serve", "--signature_def", "serving_default",
        "--input_exprs", "user_id=[b'u1'];history=[[b'i1', b'']];item_ids=[[b'i2', b'i3']]")
    want = expected_ranking(scorer, {"user_id": ["u1"], "history": [["i1", ""]],
                                     "item_ids": [["i2", "i3"]]})
    assert "Result for output key scores:" in ran
    numbers = [float(x) for x in ran.split("[[")[-1].split("]]")[0].split()]
    np.testing.assert_allclose(numbers, want[0], rtol=1e-4, atol=1e-5)


def ctr_model():
    model = EmbeddingMLP(USERS, ITEMS, categories=["c0", "c1"],
                         item_categories={"i1": ["c0"], "i2": ["c0", "c1"]}, seed=4)
    for v in model.trainable_variables:
        v.assign(v + tf.random.stateless_normal(v.shape, [5, len(v.name)], stddev=0.3))
    model.set_known(4, 6)  # u4, u5, i6.. are not known yet: out-of-vocabulary rows
    return model


def test_ctr_export_scores_like_the_model(tmp_path):
    model = ctr_model()
    loaded = exported(CtrServer(model, str(tmp_path / "a")), tmp_path / "model")
    assert set(loaded.signatures) == {"serving_default", "score_items", "predict_examples"}
    request = {"user_id": ["u0", "u5", "nobody", "u3"], "item_id": ["i2", "i7", "i1", ""],
               "history": [["i1", "", "i2"], ["i8", "zz", "i0"], ["", "", ""],
                           ["i6", "i1", "i2"]]}
    want = model.predict_proba({"user": request["user_id"], "item": request["item_id"],
                                "history": request["history"]}).numpy()
    got = loaded.signatures["serving_default"](**{k: tf.constant(v)
                                                  for k, v in request.items()})
    np.testing.assert_allclose(got["probability"].numpy(), want, atol=1e-6)
    assert len(set(np.round(want, 6))) > 1
    # score_items: C candidates per user, the same probabilities as row by row.
    candidates = [["i2", "i7", "i1"], ["", "i3", "zz"], ["i1", "i1", "i8"], ["i0", "i5", "i6"]]
    many = loaded.signatures["score_items"](
        user_id=tf.constant(request["user_id"]), history=tf.constant(request["history"]),
        item_ids=tf.constant(candidates))["probability"].numpy()
    assert many.shape == (4, 3)
    for c in range(3):
        column = loaded.signatures["serving_default"](
            user_id=tf.constant(request["user_id"]), history=tf.constant(request["history"]),
            item_id=tf.constant([row[c] for row in candidates]))["probability"]
        np.testing.assert_allclose(many[:, c], column.numpy(), atol=1e-6)
    # A protocol B period's examples (user, item, history, label, ...) score as they are.
    examples = [tf.train.Example(features=tf.train.Features(feature={
        "user": tf.train.Feature(bytes_list=tf.train.BytesList(value=[u.encode()])),
        "item": tf.train.Feature(bytes_list=tf.train.BytesList(value=[i.encode()])),
        "label": tf.train.Feature(int64_list=tf.train.Int64List(value=[1])),
        "history": tf.train.Feature(bytes_list=tf.train.BytesList(
            value=[x.encode() for x in h if x]))})).SerializeToString()
        for u, i, h in zip(*request.values())]
    got = loaded.signatures["predict_examples"](examples=tf.constant(examples))
    np.testing.assert_allclose(got["probability"].numpy(), want, atol=1e-6)
    assert (tmp_path / "model" / "assets" / "users.txt").read_text().split() == USERS[:4]


@pytest.mark.parametrize("kind", ["ranking", "ctr"])
def test_every_export_ships_warmup_requests_its_signatures_answer(kind, tmp_path):
    path = str(tmp_path / "model")
    if kind == "ranking":
        server = RankingServer(ranking_models("leaprec").models, USERS, ITEMS,
                               str(tmp_path / "a"), top_k=3)
    else:
        server = CtrServer(ctr_model(), str(tmp_path / "a"))
    loaded = exported(server, path)
    assert os.path.exists(os.path.join(path, WARMUP_FILE))
    requests = dict(read_warmup(path))  # what TF Serving reads at load time
    assert set(requests) == set(loaded.signatures)
    default = requests["serving_default"]
    assert default["user_id"][0].decode() in USERS and default["user_id"][1] == b""
    outputs = dict(zip(requests, replay_warmup(loaded, path)))
    for out in outputs.values():
        assert all(v.shape[0] == 2 and np.isfinite(v).all()
                   for v in out.values() if v.dtype != object)
    # predict_examples got the serving_default rows as tf.Examples: the same scores.
    (name, want), = outputs["serving_default"].items()
    np.testing.assert_allclose(outputs["predict_examples"][name], want, rtol=1e-6)


def test_versions_are_atomic_numbered_and_pruned(tmp_path):
    root = str(tmp_path / "saved_models" / "ctr")
    model = ctr_model()
    made = [export_server(lambda assets: CtrServer(model, assets), root, keep=2)
            for _ in range(3)]
    assert [os.path.basename(p) for p in made] == ["1", "2", "3"]
    assert versions(root) == [2, 3]  # the oldest pruned
    config = open(os.path.join(root, "models.config")).read()
    assert 'name: "ctr"' in config and f'base_path: "{os.path.abspath(root)}"' in config
    assert "model_platform" in config and "latest" in config

    def crashes(tmp):
        os.makedirs(os.path.join(tmp, "variables"))
        open(os.path.join(tmp, "saved_model.pb"), "w").write("half")
        raise KeyboardInterrupt("killed mid-export")
    with pytest.raises(KeyboardInterrupt):
        publish(root, crashes)
    assert versions(root) == [2, 3]  # nothing a server would load
    assert not [n for n in os.listdir(root) if n.startswith(".tmp-")]
    os.makedirs(os.path.join(root, ".tmp-9-left-by-a-killed-process"))
    assert publish(root, lambda tmp: save_server(CtrServer(model, str(tmp_path / "a")), tmp),
                   keep=None, name="served", server_base_path="/models/ctr") == 4
    assert sorted(os.listdir(root)) == ["2", "3", "4", "models.config"]
    config = open(os.path.join(root, "models.config")).read()
    assert 'name: "served"' in config and 'base_path: "/models/ctr"' in config
    with pytest.raises(ValueError, match="keep"):
        publish(root, lambda tmp: None, keep=0)


@pytest.fixture(scope="module")
def periods_a(build_once, movielens_100k):
    return build_once("beam", input="movielens-100k", protocol="a")


def test_export_a_trained_ranking_run_from_the_command_line(periods_a, tmp_path, capsys):
    from tfmeta.data.periods import PeriodDataset
    from tfmeta.training.ranking import load_trained
    run = str(tmp_path / "run")
    assert cli.main(["train", "--periods", periods_a, "--method", "leaprec+lightgcn",
                     "--out", run, "--iterations", "1", "--inner-steps", "1",
                     "--gtl-dim", "8", "--otl-dim", "4", "--export-to",
                     str(tmp_path / "first")]) == 0
    assert versions(str(tmp_path / "first")) == [1]
    root = str(tmp_path / "saved_models" / "leap")
    assert cli.main(["export", "--run", run, "--out", root, "--top-k", "7"]) == 0
    assert "models.config" in capsys.readouterr().out
    about = json.loads(open(os.path.join(root, "1", ABOUT_FILE)).read())
    trained = json.loads(open(os.path.join(run, "metrics.json")).read())
    assert about["run_dir"] == os.path.abspath(run) and about["protocol"] == "a"
    for key in ("method", "seed", "periods_digest", "options", "code", "test"):
        assert about[key] == trained[key]
    loaded = tf.saved_model.load(os.path.join(root, "1"))
    data = PeriodDataset(periods_a)
    users, items = data.vocabulary("users"), data.vocabulary("items")
    request = {"user_id": users[:3], "history": [items[:5], items[5:7] + [""] * 3, [""] * 5],
               "item_ids": [items[10:13], items[:3], ["unknown"] + items[20:22]]}
    scorer, _, _ = load_trained(run)
    index = {v: r + 1 for r, v in enumerate(items)}
    want = scorer.frozen()(
        tf.constant([users.index(u) + 1 for u in request["user_id"]], tf.int64),
        tf.constant([[index.get(x, 0) for x in h] for h in request["history"]], tf.int64),
        tf.constant([[index.get(x, 0) for x in c] for c in request["item_ids"]], tf.int64))
    got = loaded.signatures["serving_default"](**{k: tf.constant(v)
                                                  for k, v in request.items()})["scores"]
    np.testing.assert_allclose(got.numpy(), want.numpy(), atol=1e-5)
    top = loaded.signatures["top_k"](user_id=tf.constant(users[:1]),
                                     history=tf.constant([items[:2]]))
    assert top["item_ids"].shape == (1, 7)
    assert cli.main(["export", "--run", str(tmp_path / "nothing"), "--out", root]) == 2
    # periods rebuilt since it trained: another build's ids would serve the wrong items
    assert cli.main(["export", "--run", run, "--out", root,
                     "--periods", rebuilt(periods_a, tmp_path)]) == 2
    assert "serve the wrong items" in capsys.readouterr().err
    assert versions(root) == [1]


def test_the_incremental_driver_exports_each_served_model(small_periods, tmp_path):
    from tfmeta.training.incremental import (IncrementalOptions, load_served,
                                             train_incremental)
    root = str(tmp_path / "saved_models" / "asmg")
    train_incremental(small_periods, str(tmp_path / "run"),
                      IncrementalOptions(method="asmg-linear", batch_size=64),
                      export_to=root, keep=3)
    assert versions(root) == [18, 19, 20]  # one per update period 11..30, 3 kept
    about = json.loads(open(os.path.join(root, "20", ABOUT_FILE)).read())
    assert about["period"] == 30 and about["method"] == "asmg-linear"
    assert about["code"] == json.loads((tmp_path / "run" / "metrics.json").read_text())["code"]
    loaded = tf.saved_model.load(os.path.join(root, "20"))
    served = load_served(str(tmp_path / "run"))
    assert int(served.known_users) > 0
    request = {"user_id": served.users[:3], "item_id": served.items[:3],
               "history": [served.items[3:5], ["", ""], ["x", served.items[0]]]}
    want = served.predict_proba({"user": request["user_id"], "item": request["item_id"],
                                 "history": request["history"]}).numpy()
    got = loaded.signatures["serving_default"](**{k: tf.constant(v)
                                                  for k, v in request.items()})
    np.testing.assert_allclose(got["probability"].numpy(), want, atol=1e-6)
    earlier = load_served(str(tmp_path / "run"), period=11)
    assert not np.allclose(earlier.dense_variables[0].numpy(),
                           served.dense_variables[0].numpy())
    with pytest.raises(ValueError, match="no served model after period 5"):
        load_served(str(tmp_path / "run"), period=5)
    version = export_run(str(tmp_path / "run"), str(tmp_path / "again"), period=11)
    assert json.loads(open(os.path.join(version, ABOUT_FILE)).read())["period"] == 11
    # A run still training has only progress.json, which says which run it is too.
    finished = json.loads((tmp_path / "run" / "metrics.json").read_text())
    os.remove(tmp_path / "run" / "metrics.json")
    version = export_run(str(tmp_path / "run"), str(tmp_path / "unfinished"))
    about = json.loads(open(os.path.join(version, ABOUT_FILE)).read())
    for key in ("protocol", "dataset", "periods_digest", "method", "seed", "options", "code"):
        assert about[key] == finished[key], key
    assert about["period"] == 30 and "test" not in about


if __name__ == "__main__":
    raise SystemExit(pytest.main([__file__]))
