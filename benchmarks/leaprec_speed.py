"""Training speed, side by side in one run: LeapRec's Leap bookkeeping against plain
gradient steps, and tfmeta's SASRec against RecBole's.

    python -m benchmarks.leaprec_speed --recbole-python .venv-recbole/bin/python  # ~10 min
    python -m benchmarks.leaprec_speed                       # part 1 only (RecBole: not run)
    python -m benchmarks.leaprec_speed --quick               # smoke run (tiny settings)

RecBole lives in a virtualenv of its own (its pins must not touch the TensorFlow stack);
from the repository root, on Python 3.11:

    python -m venv .venv-recbole
    .venv-recbole/bin/pip install torch==2.13.0 recbole==1.2.1 numpy==1.26.4 \
        "pandas<2.3" "scipy<1.16" "scikit-learn<1.8"

(torch's CPU build. RecBole 1.2.1 uses `np.float_`, gone in NumPy 2, hence numpy 1.26.4,
and pandas, SciPy and scikit-learn releases that still support it; tested with pandas
2.2.3, SciPy 1.15.3, scikit-learn 1.7.2.) Only RecBole's part runs there: this file,
started by that interpreter with --recbole-worker, imports neither TensorFlow nor
tfmeta. Without --recbole-python, part 2 is marked not run.

Part 1, Leap's overhead (goal: LeapRec costs at most BOUND x plain steps). On the train
window of MovieLens-100K's protocol A periods (built once, as benchmarks/leaprec.py
does, or --periods), with the driver's defaults (`RankingOptions`: GTL + OTL gnn-sa of
64 dims each, K = 10 inner steps per monthly time step, batches of 1024, Adam 1e-3):

- A, LeapRec: the driver's learner (`tfmeta.training.ranking.Phase`, val phase) walks
  the time steps once: begin_iteration, `time_step` per step (K Adam steps, Leap's
  theta copies and trajectory terms, K + 1 forward / backward passes) and
  end_iteration (the meta update).
- B, plain: a twin of the same models (same class, sizes and seeds) takes K Adam steps
  per time step on the same batches with the same BPR loss and negatives
  (`leaprec.bpr_example_losses`, `Negatives.attach`) in a `tf.function`: no theta
  copies, no trajectory terms, no meta update.

Only the training calls are timed (wall: perf_counter; CPU: the process's, TensorFlow's
threads included); drawing the walk's batches and setting each step's graph (the same
for A and B) are not. Both are traced and warmed by an untimed time step, then run
interleaved A, B, A, B, ... on a fresh walk per repetition. Per inner step: median wall
and CPU ms of each, their ratio LeapRec / plain and the verdict against BOUND (on CPU
time, the steadier figure on a shared machine; the wall verdict is shown too).
leaprec+mf and leaprec+lightgcn are extra rows.

Part 2, SASRec throughput against RecBole 1.2.1's SASRec (PyTorch). Both train on the
same interactions (the train window above; RecBole reads them as an atomic .inter file
and builds its own examples: every prefix of a user's sequence, its last two items held
out by its leave-one-out split) with tfmeta's `sasrec` defaults, RecBole configured to
match (SASREC_MISMATCHES lists what it cannot). Batches are built before timing on both
sides (tfmeta: the driver's batches with negatives attached; RecBole: its train
dataloader's batches, negatives sampled), so the clock covers the training steps alone:
tfmeta's driver step (`Phase._train_step`), RecBole's `Trainer._train_epoch` over the
batches. One untimed warm-up repetition each (tracing, allocator), then repetitions of
--sasrec-batches batches interleaved tfmeta, RecBole, tfmeta, ...; RecBole runs in a
worker process that waits idle while tfmeta is timed. Throughput: training examples
(sequences) per second, median over repetitions, and the ratio tfmeta / RecBole.

Results: benchmarks/results/leaprec_speed.{md,json} (leaprec_speed-quick.* with --quick:
tiny models, a few steps; a smoke test, not evidence).
"""
import json
import os
import sys
import time

import numpy as np  # both interpreters have NumPy and tqdm
from tqdm.auto import tqdm

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from benchmarks.reports import RESULTS_DIR, ROOT  # noqa: E402
RUNS_DIR = os.path.join("runs", "leaprec")   # where benchmarks/leaprec.py builds its periods
DATASET = "movielens-100k"
SEED = 0
BOUND = 1.30                                 # LeapRec / plain, per inner step
WINDOWS = ("train",)                         # the val phase's training window
LEAP_METHODS = ("leaprec", "leaprec+mf", "leaprec+lightgcn")
# A gnn-sa walk (5 time steps x K = 10 at the defaults) takes about a minute on this
# 2-core machine under load, an mf walk under a second: repetitions per method fit
# the run into about 10 minutes.
FULL = {"methods": LEAP_METHODS, "repeats": {"leaprec": 3, "leaprec+mf": 5},
        "extra_repeats": 2, "leap_options": {}, "sasrec_options": {},
        "sasrec_batches": 10, "sasrec_repeats": 5}
QUICK = {"methods": ("leaprec",), "repeats": {"leaprec": 2}, "extra_repeats": 2,
         "leap_options": {"gtl_dim": 8, "otl_dim": 8, "inner_steps": 2, "batch_size": 128},
         "sasrec_options": {"embedding_dim": 16, "batch_size": 128}, "sasrec_batches": 3,
         "sasrec_repeats": 2}
RECBOLE_WORKER = "--recbole-worker"
# PyTorch's OpenMP threads spin while they wait for each other; on a busy machine a
# spinning thread holds the core its partner needs, and RecBole's steps took 40x longer
# (2.2 s instead of 55 ms for a backward pass). Passive waiting removes that artefact
# (an OMP_WAIT_POLICY already set in the environment wins).
OMP_WAIT_POLICY = "PASSIVE"
RECBOLE_DATASET = "ml-100k-train"
# What RecBole's SASRec cannot be made to do as tfmeta's does (the report lists them).
SASREC_MISMATCHES = (
    "Block layout: tfmeta's blocks are pre-LayerNorm (x + Dropout(f(LN(x))), SASRec's "
    "paper and code) with a final LayerNorm and a dropout inside the feed-forward net; "
    "RecBole's are post-LayerNorm (LN(x + Dropout(f(x))), BERT's) with a LayerNorm on the "
    "input embeddings, none at the end and no inner dropout.",
    "Work per example: tfmeta computes its last block for the last position only (the "
    "only output BPR reads, `last_only`); RecBole computes every block for all "
    "max_len positions, then gathers the last item's output.",
    "Input scaling and padding: tfmeta multiplies item embeddings by sqrt(d) and "
    "left-pads histories; RecBole does not scale and right-pads.",
    "Initialisation: tfmeta Glorot-uniform dense kernels and N(0, 0.1) item and "
    "position embeddings; RecBole N(0, 0.02) for every linear and embedding weight "
    "(speed does not depend on it).",
    "Adam epsilon: Keras 1e-7, PyTorch 1e-8.",
    "Negatives: tfmeta draws uniformly among the items seen in training; RecBole's "
    "uniform sampler redraws items the user has interacted with. Both draw one per "
    "example before the timed steps.",
    "Examples: tfmeta trains on every train-window interaction (an empty history for a "
    "user's first); RecBole on every prefix of length >= 1 minus each user's last two "
    "items (its leave-one-out split needs a valid / test part). Throughput is per "
    "example, so the counts need not agree.",
    "Framework defaults: TensorFlow runs with op determinism on (as `tfmeta train` "
    "does); PyTorch with its defaults (RecBole's reproducibility flag only touches "
    "cuDNN), except that its OpenMP threads wait passively (OMP_WAIT_POLICY=PASSIVE: "
    "spinning, the default, made RecBole's steps 40x slower on this busy 2-core machine).",
)


# ------------------------------------------------------------------ timing

class Stopwatch:
    """Accumulates wall and process CPU seconds over the `with` blocks it times."""

    def __init__(self):
        self.wall = self.cpu = 0.0

    def __enter__(self):
        self._wall, self._cpu = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc):
        self.wall += time.perf_counter() - self._wall
        self.cpu += time.process_time() - self._cpu
        return False

    def figures(self) -> dict:
        return {"wall_seconds": self.wall, "cpu_seconds": self.cpu}


def _median(values) -> float:
    return float(np.median(values))


# ------------------------------------------------------------------ the RecBole worker
# Runs under --recbole-python: standard library, torch, RecBole and numpy only.

def _recbole_setup(state: dict, data_path: str, config: dict) -> dict:
    import recbole
    import torch
    from recbole.config import Config
    from recbole.data import create_dataset, data_preparation
    from recbole.model.sequential_recommender.sasrec import SASRec
    from recbole.trainer import Trainer
    from recbole.utils import init_seed
    config = Config(model="SASRec", dataset=RECBOLE_DATASET,
                    config_dict={**config, "data_path": data_path,
                                 "checkpoint_dir": os.path.join(data_path, "saved")})
    init_seed(config["seed"], config["reproducibility"])
    dataset = create_dataset(config)
    train_data, _, _ = data_preparation(config, dataset)
    model = SASRec(config, train_data.dataset).to(config["device"])
    state["trainer"] = Trainer(config, model)
    # Built here, untimed: RecBole's data loading and negative sampling stay out.
    state["batches"] = list(train_data)
    state["next"] = 0
    return {"examples": int(sum(len(b) for b in state["batches"])),
            "batches": len(state["batches"]),
            "parameters": int(sum(p.numel() for p in model.parameters())),
            # str: the device is a torch.device (and a Config never ends iterating)
            "config": {k: _plain(config[k]) for k in RECBOLE_REPORTED},
            "versions": {"recbole": recbole.__version__, "torch": torch.__version__,
                         "python": sys.version.split()[0]},
            "torch_threads": torch.get_num_threads(),
            "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY")}


RECBOLE_REPORTED = (
    "n_layers", "n_heads", "hidden_size", "inner_size", "hidden_dropout_prob",
    "attn_dropout_prob", "hidden_act", "layer_norm_eps", "loss_type", "learning_rate",
    "learner", "weight_decay", "train_batch_size", "MAX_ITEM_LIST_LENGTH",
    "train_neg_sample_args", "eval_args", "device", "seed")


def _plain(value):
    """A RecBole config value as JSON can hold it."""
    return value if isinstance(value, (int, float, str, bool, list, dict, type(None))) \
        else str(value)


def _recbole_run(state: dict, batches: int) -> dict:
    """RecBole's own training loop (Trainer._train_epoch) over the next `batches`."""
    pool, start = state["batches"], state["next"]
    chosen = [pool[(start + i) % len(pool)] for i in range(batches)]
    state["next"] = (start + batches) % len(pool)
    watch = Stopwatch()
    with watch:
        loss = state["trainer"]._train_epoch(chosen, epoch_idx=0)
    return {**watch.figures(), "examples": int(sum(len(b) for b in chosen)),
            "loss": float(loss) / batches}


def recbole_worker() -> int:
    """Answers one JSON request per stdin line ({"command", "args"}) on the original
    stdout; everything else RecBole prints goes to stderr."""
    replies = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)
    commands = {"setup": _recbole_setup, "run": _recbole_run}
    state: dict = {}
    for line in sys.stdin:
        request = json.loads(line)
        if request["command"] == "quit":
            break
        try:
            reply = {"ok": True, **commands[request["command"]](state, **request["args"])}
        except Exception as error:  # reported to the parent, which stops
            import traceback
            traceback.print_exc()
            reply = {"ok": False, "error": f"{type(error).__name__}: {error}"}
        replies.write(json.dumps(reply) + "\n")
    return 0


class RecBoleProcess:
    """The worker, started with another interpreter; `request` sends one command."""

    def __init__(self, python: str, workdir: str):
        import subprocess
        self.log_path = os.path.join(workdir, "recbole-worker.log")
        self.log = open(self.log_path, "w", encoding="utf-8")
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        env.setdefault("OMP_WAIT_POLICY", OMP_WAIT_POLICY)
        # cwd: RecBole writes its log and TensorBoard folders there.
        # A path is made absolute (the worker starts in workdir); a bare name is looked
        # up on PATH. abspath, not realpath: a venv's python is a symlink.
        python = os.path.abspath(python) if os.sep in python else python
        self.process = subprocess.Popen(
            [python, os.path.abspath(__file__), RECBOLE_WORKER], cwd=workdir,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.log, text=True,
            env=env)

    def request(self, command: str, **args) -> dict:
        self.process.stdin.write(json.dumps({"command": command, "args": args}) + "\n")
        self.process.stdin.flush()
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError(f"the RecBole worker ended ({self._tail()})")
        reply = json.loads(line)
        if not reply.pop("ok"):
            raise RuntimeError(f"RecBole: {reply['error']} ({self._tail()})")
        return reply

    def _tail(self) -> str:
        self.log.flush()
        with open(self.log_path, encoding="utf-8", errors="replace") as f:
            return "log: " + " | ".join(f.read().strip().splitlines()[-5:])

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.stdin.write(json.dumps({"command": "quit"}) + "\n")
            self.process.stdin.close()
            self.process.wait(timeout=60)
        self.log.close()


# ------------------------------------------------------------------ data

def periods_dir(args) -> str:
    """The protocol A periods of MovieLens-100K: --periods, or built once under
    RUNS_DIR/periods (benchmarks.periods.build_once, which benchmarks.leaprec uses)."""
    from benchmarks.periods import given_or_built
    return given_or_built(DATASET, "a", args.periods, os.path.join(ROOT, args.runs_dir))


class Data:
    """The period build, every interaction (for the phases' timelines) read once."""

    def __init__(self, periods: str):
        from tfmeta.data import interactions as inter
        from tfmeta.data.periods import PeriodDataset
        self.periods = periods
        self.data = PeriodDataset(periods)
        if self.data.protocol != "a":
            raise SystemExit(f"{periods} holds protocol {self.data.protocol} periods, not A")
        self.everything = inter.read_interactions(self.data, ("train", "val", "test"))
        self.timelines = inter.UserTimelines(self.everything["user"], self.everything["item"],
                                             self.everything["ts"])

    def phase(self, options, out: str):
        """The driver's val phase (training on the train window) for `options`."""
        from tfmeta.training.ranking import PHASES, Phase
        name, windows = PHASES[0]
        assert windows == WINDOWS
        return Phase(self.data, name, windows, options, out, self.timelines, self.everything)


# ------------------------------------------------------------------ part 1: Leap's overhead

def plain_step_function(scorer, optimizer):
    """The driver's plain step (`ranking.plain_step`: Adam on the BPR loss of a batch,
    negatives attached), traced: LeapRec's inner step without its bookkeeping."""
    import tensorflow as tf

    from tfmeta.training.ranking import plain_step
    return tf.function(lambda batch: plain_step(scorer, optimizer, batch),
                       reduce_retracing=True)


class PlainTwin:
    """Models built like the phase's LeapRec models, trained by plain steps."""

    def __init__(self, phase):
        import tensorflow as tf

        from tfmeta.meta import leaprec
        from tfmeta.training.ranking import build_models
        options = phase.options
        seed = options.seed * 1000  # the val phase's seed
        self.scorer = leaprec.Scorer(list(build_models(options, phase.data, seed).values()))
        self.negatives = leaprec.Negatives(phase.part.warm_items(), seed)
        self.optimizer = tf.keras.optimizers.Adam(options.learning_rate)
        self.optimizer.build(self.scorer.trainable_variables)
        self.step = plain_step_function(self.scorer, self.optimizer)
        self.inner_steps = options.inner_steps


def draw_walk(phase, rng) -> list:
    """A walk's (graph mask, batches) per time step, drawn as Phase._iteration draws
    them: K + 1 batches of the step's interactions."""
    from tfmeta.training.ranking import time_step_batches
    part, k, size = phase.part, phase.options.inner_steps, phase.options.batch_size
    return [(part.step <= step, time_step_batches(part, step, k + 1, size, rng))
            for step in range(part.num_steps)]


def leap_walk(phase, walk) -> dict:
    """LeapRec's iteration over the walk; times begin/end_iteration and time_step."""
    learner, part, watch = phase.learner, phase.part, Stopwatch()
    with watch:
        learner.begin_iteration()
    for upto, batches in walk:
        phase.scorer.set_graph(part.users[upto], part.items[upto])
        with watch:
            learner.time_step(batches)
    with watch:
        learner.end_iteration()
    return watch.figures()


def plain_walk(twin: PlainTwin, part, walk) -> dict:
    """The same number of plain steps on the same batches (K per time step)."""
    import tensorflow as tf

    from tfmeta import distribute
    strategy, watch = tf.distribute.get_strategy(), Stopwatch()
    for upto, batches in walk:
        twin.scorer.set_graph(part.users[upto], part.items[upto])
        with watch:
            for batch in batches[:twin.inner_steps]:
                # As the driver: negatives drawn per batch, the loss read back per step.
                float(twin.step(distribute.distribute_batch(strategy,
                                                            twin.negatives.attach(batch))))
    return watch.figures()


def leap_overhead(data: Data, method: str, overrides: dict, repeats: int, workdir: str) -> dict:
    """Part 1 for one method: interleaved walks, per-inner-step medians and the ratio."""
    from tfmeta.training.ranking import RankingOptions
    options = RankingOptions(method=method, seed=SEED, **overrides)
    phase = data.phase(options, os.path.join(workdir, method))
    twin = PlainTwin(phase)
    steps = phase.part.num_steps * options.inner_steps
    rng = np.random.default_rng([SEED, 1])
    warm = draw_walk(phase, rng)[:1]  # one time step traces every function
    warmup = {"leaprec": leap_walk(phase, warm), "plain": plain_walk(twin, phase.part, warm)}
    runs = {"leaprec": [], "plain": []}
    for _ in tqdm(range(repeats), desc=f"{method} vs plain", unit="pair", disable=None):
        walk = draw_walk(phase, rng)
        runs["leaprec"].append(leap_walk(phase, walk))
        runs["plain"].append(plain_walk(twin, phase.part, walk))
    return summarize_overhead(method, options, phase.part, steps, warmup, runs)


def summarize_overhead(method, options, part, steps, warmup, runs) -> dict:
    import dataclasses
    per_step = {side: {clock: [r[f"{clock}_seconds"] * 1000 / steps for r in rs]
                       for clock in ("wall", "cpu")} for side, rs in runs.items()}
    medians = {side: {clock: _median(v) for clock, v in clocks.items()}
               for side, clocks in per_step.items()}
    ratio = {clock: medians["leaprec"][clock] / medians["plain"][clock]
             for clock in ("wall", "cpu")}
    return {"method": method, "options": dataclasses.asdict(options),
            "time_steps": part.num_steps, "train_interactions": len(part),
            "inner_steps_per_walk": steps, "repeats": len(runs["plain"]),
            "warmup_seconds": {s: w["wall_seconds"] for s, w in warmup.items()},
            "per_step_ms": per_step, "median_ms": medians, "ratio": ratio,
            "bound": BOUND, "verdict": _verdict(ratio["cpu"]),
            "wall_verdict": _verdict(ratio["wall"])}


def _verdict(ratio: float) -> str:
    return "met" if ratio <= BOUND else "missed"


# ------------------------------------------------------------------ part 2: SASRec

def sasrec_hyperparameters(options) -> dict:
    """tfmeta's sasrec as the driver builds it: RankingOptions plus SASRec's defaults."""
    import inspect

    from tfmeta.models.baselines import SASRec
    defaults = {name: p.default for name, p in inspect.signature(SASRec).parameters.items()
                if name in ("num_blocks", "num_heads", "dropout")}
    return {"embedding_dim": options.embedding_dim, "max_len": options.max_len,
            "batch_size": options.batch_size, "learning_rate": options.learning_rate,
            "optimizer": options.optimizer, "loss": "BPR, one uniform negative",
            **defaults, **options.model_options}


def recbole_config(h: dict) -> dict:
    """RecBole's SASRec configured as close to `h` as it allows."""
    return {
        "hidden_size": h["embedding_dim"], "n_layers": h["num_blocks"],
        "n_heads": h["num_heads"], "inner_size": h["embedding_dim"],  # d -> d -> d FFN
        "hidden_dropout_prob": h["dropout"], "attn_dropout_prob": h["dropout"],
        "hidden_act": "relu", "layer_norm_eps": 1e-6,  # tfmeta's LAYER_NORM_EPSILON
        "loss_type": "BPR", "learner": "adam", "learning_rate": h["learning_rate"],
        "weight_decay": 0.0, "train_batch_size": h["batch_size"],
        "MAX_ITEM_LIST_LENGTH": h["max_len"],
        "train_neg_sample_args": {"distribution": "uniform", "sample_num": 1,
                                  "alpha": 1.0, "dynamic": False, "candidate_num": 0},
        "USER_ID_FIELD": "user_id", "ITEM_ID_FIELD": "item_id", "TIME_FIELD": "timestamp",
        "load_col": {"inter": ["user_id", "item_id", "timestamp"]},
        "eval_args": {"split": {"LS": "valid_and_test"}, "order": "TO", "group_by": "user",
                      "mode": "full"},
        "device": "cpu", "use_gpu": False, "seed": SEED, "reproducibility": True,
        "show_progress": False, "shuffle": True, "save_dataset": False,
        "save_dataloaders": False}


def write_recbole_inter(part, data_path: str) -> str:
    """The training interactions as RecBole's atomic file (tokens: tfmeta's rows)."""
    folder = os.path.join(data_path, RECBOLE_DATASET)
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, f"{RECBOLE_DATASET}.inter")
    with open(path, "w", encoding="utf-8") as f:
        f.write("user_id:token\titem_id:token\ttimestamp:float\n")
        for user, item, ts in zip(part.users, part.items, part.ts):
            f.write(f"{user}\t{item}\t{ts}\n")
    return path


class TfmetaSasrec:
    """tfmeta's sasrec in the driver's val phase; its batches built before timing."""

    def __init__(self, data: Data, options, workdir: str):
        from tfmeta.training.ranking import _batches
        self.options = options
        self.phase = data.phase(options, os.path.join(workdir, "sasrec"))
        part, size = self.phase.part, options.batch_size
        self.phase.scorer.set_graph(part.users, part.items)  # as the driver (a no-op here)
        order = np.random.default_rng([SEED, 2]).permutation(len(part))
        self.batches = [self.phase.negatives.attach(_batches(part, order[s:s + size]))
                        for s in range(0, len(order) - size + 1, size)]  # full batches
        self.next = 0

    def run(self, batches: int) -> dict:
        """The driver's plain step (Phase._train_step) over the next `batches`."""
        from tfmeta import distribute
        chosen = [self.batches[(self.next + i) % len(self.batches)] for i in range(batches)]
        self.next = (self.next + batches) % len(self.batches)
        watch, losses = Stopwatch(), []
        with watch:
            for batch in chosen:
                losses.append(float(self.phase._train_step(
                    distribute.distribute_batch(self.phase.distribution, batch))))
        return {**watch.figures(), "examples": int(sum(int(b["item"].shape[0]) for b in chosen)),
                "loss": float(np.mean(losses))}


def sasrec_options(settings: dict):
    from tfmeta.training.ranking import RankingOptions
    return RankingOptions(method="sasrec", seed=SEED, **settings["sasrec_options"])


def sasrec_not_run(settings: dict, reason: str) -> dict:
    return {"hyperparameters": sasrec_hyperparameters(sasrec_options(settings)),
            "mismatches": list(SASREC_MISMATCHES),
            "recbole": {"status": "not run", "reason": reason}}


def sasrec_throughput(data: Data, settings: dict, recbole_python: str, workdir: str) -> dict:
    """Part 2: interleaved repetitions of tfmeta's and RecBole's SASRec steps."""
    ours = TfmetaSasrec(data, sasrec_options(settings), workdir)
    hyper = sasrec_hyperparameters(ours.options)
    out = {"hyperparameters": hyper, "mismatches": list(SASREC_MISMATCHES),
           "batches_per_repeat": settings["sasrec_batches"],
           "tfmeta": {"examples": len(ours.phase.part), "batches": len(ours.batches)}}
    data_path = os.path.join(workdir, "recbole")
    write_recbole_inter(ours.phase.part, data_path)
    worker = RecBoleProcess(recbole_python, workdir)
    try:
        config = recbole_config(hyper)
        print("RecBole: building its dataset and batches ...", file=sys.stderr, flush=True)
        out["recbole"] = {"status": "run", "config_sent": config,
                          **worker.request("setup", data_path=data_path, config=config)}
        n = settings["sasrec_batches"]
        warmup = {"tfmeta": ours.run(n), "recbole": worker.request("run", batches=n)}
        runs = {"tfmeta": [], "recbole": []}
        for _ in tqdm(range(settings["sasrec_repeats"]), desc="sasrec: tfmeta vs RecBole",
                      unit="pair", disable=None):
            runs["tfmeta"].append(ours.run(n))
            runs["recbole"].append(worker.request("run", batches=n))
    finally:
        worker.close()
    out.update(summarize_throughput(warmup, runs))
    return out


def summarize_throughput(warmup: dict, runs: dict) -> dict:
    rates = {side: {clock: [r["examples"] / r[f"{clock}_seconds"] for r in rs]
                    for clock in ("wall", "cpu")} for side, rs in runs.items()}
    medians = {side: {clock: _median(v) for clock, v in clocks.items()}
               for side, clocks in rates.items()}
    return {"warmup": warmup, "runs": runs, "examples_per_second": rates,
            "median_examples_per_second": medians,
            "ratio": {clock: medians["tfmeta"][clock] / medians["recbole"][clock]
                      for clock in ("wall", "cpu")}}


# ------------------------------------------------------------------ report

def _ms(x: float) -> str:
    return f"{x:.2f}"


def render_overhead(rows: list) -> list:
    lines = ["## 1. Leap's bookkeeping against plain steps",
             "",
             f"Goal: LeapRec's training costs at most {BOUND:.2f}x the same number of plain "
             "Adam steps on the same models and batches (per inner step; verdict on CPU "
             "time, wall shown too).",
             "",
             "| method | time steps x K | repeats | LeapRec wall ms | plain wall ms | "
             "wall ratio | LeapRec CPU ms | plain CPU ms | CPU ratio | verdict (CPU) | "
             "verdict (wall) |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|---|---|"]
    for r in rows:
        m = r["median_ms"]
        lines.append(
            f"| {r['method']} | {r['time_steps']} x {r['options']['inner_steps']} | "
            f"{r['repeats']} | {_ms(m['leaprec']['wall'])} | {_ms(m['plain']['wall'])} | "
            f"{r['ratio']['wall']:.2f}x | {_ms(m['leaprec']['cpu'])} | "
            f"{_ms(m['plain']['cpu'])} | **{r['ratio']['cpu']:.2f}x** | "
            f"**{r['verdict']}** | {r['wall_verdict']} |")
    lines += ["", "Per inner step, medians over the repetitions; every repetition's "
              "figures are in the .json (`per_step_ms`). What LeapRec pays for beyond the "
              "plain steps: copying theta before each step and theta <- phi per time step, "
              "dense copies of every gradient (the plain step hands Keras' Adam the "
              "embeddings' IndexedSlices; Adam rewrites every row either way), Leap's "
              "trajectory terms, one more forward / backward pass per time step "
              "(L(theta(K))) and the meta update per walk. Options per method (the "
              "driver's defaults unless listed):", ""]
    for r in rows:
        o = r["options"]
        lines.append(f"- {r['method']}: gtl_dim {o['gtl_dim']}, otl_dim {o['otl_dim']}, "
                     f"K {o['inner_steps']}, batch {o['batch_size']}, learning rates "
                     f"{o['learning_rate']} / {o['meta_learning_rate']}; "
                     f"{r['train_interactions']:,} train interactions; untimed warm-up "
                     f"(one time step) {r['warmup_seconds']['leaprec']:.1f} s (LeapRec), "
                     f"{r['warmup_seconds']['plain']:.1f} s (plain)")
    return lines


def render_sasrec(s: dict) -> list:
    lines = ["", "## 2. SASRec: tfmeta against RecBole 1.2.1", ""]
    h = s["hyperparameters"]
    lines.append("Shared settings (tfmeta's `sasrec` defaults): " + ", ".join(
        f"{k} {v}" for k, v in h.items()) + ".")
    lines.append("")
    recbole = s["recbole"]
    if recbole.get("status") != "run":
        lines += [f"RecBole: **not run** ({recbole.get('reason')}).", ""]
        return lines
    m, ratio = s["median_examples_per_second"], s["ratio"]
    lines += [f"RecBole {recbole['versions']['recbole']}, PyTorch {recbole['versions']['torch']}"
              f" (Python {recbole['versions']['python']}, {recbole['torch_threads']} torch "
              f"threads, OMP_WAIT_POLICY {recbole.get('omp_wait_policy')}), in a worker "
              f"process; {recbole['examples']:,} training sequences "
              f"in {recbole['batches']} batches, {recbole['parameters']:,} parameters. "
              f"tfmeta: {s['tfmeta']['examples']:,} training examples in "
              f"{s['tfmeta']['batches']} full batches.",
              "",
              "| | examples/s (wall) | examples/s (CPU) | repeats x batches |",
              "|---|---:|---:|---|"]
    for side in ("tfmeta", "recbole"):
        lines.append(f"| {side} | {m[side]['wall']:,.0f} | {m[side]['cpu']:,.0f} | "
                     f"{len(s['runs'][side])} x {s['batches_per_repeat']} |")
    lines += [f"| **tfmeta / RecBole** | **{ratio['wall']:.2f}x** | **{ratio['cpu']:.2f}x** | |",
              "",
              "Medians over the repetitions (examples per wall second, and per CPU second "
              "of the process that trained them). RecBole's configuration as it resolved "
              "it:", "",
              "```", json.dumps(recbole["config"], sort_keys=True), "```", "",
              "What could not be matched:", ""]
    lines += [f"- {text}" for text in s["mismatches"]]
    return lines


def render_markdown(report: dict) -> str:
    from benchmarks import machine as machine_info
    lines = [*machine_info.timing_header(report, "LeapRec and SASRec training speed",
                                         "A, B, A, B, ..."),
             f"- Data: {DATASET} protocol A periods (`{report['periods']}`), the train "
             f"window ({', '.join(report['time_steps'])}).",
             f"- TensorFlow threads: intra-op {report['tf_threads']['intra_op']}, inter-op "
             f"{report['tf_threads']['inter_op']} (0 = one per core); op determinism on, as "
             "`tfmeta train`.",
             ""]
    lines += render_overhead(report["leap_overhead"])
    lines += render_sasrec(report["sasrec"])
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------ main

def parse_args(argv):
    import argparse
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.leaprec_speed",
        description="LeapRec's overhead over plain steps, and SASRec against RecBole's.")
    parser.add_argument("--quick", action="store_true",
                        help="smoke run: tiny models and few repetitions; results get a "
                             "leaprec_speed-quick prefix")
    parser.add_argument("--recbole-python", default=None, metavar="PATH",
                        help="Python of a virtualenv with recbole==1.2.1 and torch (see the "
                             "module docstring); without it RecBole is not run")
    parser.add_argument("--methods", nargs="+", choices=LEAP_METHODS, default=None,
                        help=f"part 1 methods (default {' '.join(LEAP_METHODS)}; --quick "
                             f"{' '.join(QUICK['methods'])})")
    parser.add_argument("--repeats", type=int, default=None,
                        help="timed repetitions per comparison (default: 3 for leaprec, 5 "
                             "for leaprec+mf, 2 for leaprec+lightgcn and 5 for SASRec; "
                             "--quick 2)")
    parser.add_argument("--sasrec-batches", type=int, default=None,
                        help=f"batches per SASRec repetition (default {FULL['sasrec_batches']})")
    parser.add_argument("--periods", default=None,
                        help=f"an existing protocol A build of {DATASET} (default: built "
                             "once under RUNS_DIR/periods)")
    parser.add_argument("--runs-dir", default=RUNS_DIR,
                        help=f"where the periods are built (default {RUNS_DIR}, the LeapRec "
                             "benchmark's)")
    parser.add_argument("--results-dir", default=RESULTS_DIR,
                        help="where the .md and .json go (default benchmarks/results)")
    return parser.parse_args(argv)


def settings_of(args) -> dict:
    settings = dict(QUICK if args.quick else FULL)
    if args.methods:
        settings["methods"] = tuple(args.methods)
    if args.sasrec_batches:
        settings["sasrec_batches"] = args.sasrec_batches
    if args.repeats:
        settings["repeats"] = {m: args.repeats for m in settings["methods"]}
        settings["extra_repeats"] = settings["sasrec_repeats"] = args.repeats
    return settings


def main(argv=None) -> int:
    import tfmeta  # noqa: F401  (first: selects Keras 2 before anything loads TensorFlow)
    import tempfile

    import tensorflow as tf

    from benchmarks import machine as machine_info
    args = parse_args(argv)
    settings = settings_of(args)
    argv = sys.argv[1:] if argv is None else list(argv)
    tf.config.experimental.enable_op_determinism()  # as train_ranking
    started = time.perf_counter()
    report = machine_info.timing_report(
        "leaprec_speed", argv, ["tensorflow", "tf-keras", "tensorflow-gnn", "numpy"],
        quick=args.quick, settings=settings, bound=BOUND,
        tf_threads={"intra_op": tf.config.threading.get_intra_op_parallelism_threads(),
                    "inter_op": tf.config.threading.get_inter_op_parallelism_threads()})
    periods = periods_dir(args)
    report["periods"] = os.path.relpath(os.path.abspath(periods), ROOT)
    data = Data(periods)
    with tempfile.TemporaryDirectory(prefix="leaprec-speed-") as workdir:
        rows = []
        for method in settings["methods"]:
            repeats = settings["repeats"].get(method, settings["extra_repeats"])
            print(f"part 1: {method} against plain steps, {repeats} pairs ...",
                  file=sys.stderr, flush=True)
            rows.append(leap_overhead(data, method, settings["leap_options"], repeats, workdir))
            print(f"    CPU ratio {rows[-1]['ratio']['cpu']:.2f}x, wall ratio "
                  f"{rows[-1]['ratio']['wall']:.2f}x ({rows[-1]['verdict']})",
                  file=sys.stderr, flush=True)
        report["leap_overhead"] = rows
        report["time_steps"] = _train_steps(data)
        if not args.recbole_python:
            report["sasrec"] = sasrec_not_run(settings, "no --recbole-python given")
        else:
            print("part 2: SASRec, tfmeta against RecBole ...", file=sys.stderr, flush=True)
            report["sasrec"] = sasrec_throughput(data, settings, args.recbole_python, workdir)
    machine_info.finish(args.results_dir,
                        "leaprec_speed-quick" if args.quick else "leaprec_speed", report,
                        render_markdown, started)
    return 0


def _train_steps(data: Data) -> list:
    return [p["name"] for p in data.data.periods if p["window"] in WINDOWS]


if __name__ == "__main__":
    raise SystemExit(recbole_worker() if RECBOLE_WORKER in sys.argv[1:] else main())
