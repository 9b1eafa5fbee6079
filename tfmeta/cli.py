"""The `tfmeta` command.

    tfmeta datasets list                      registered datasets and where they are
    tfmeta datasets fetch NAME                download / locate a dataset
    tfmeta periods build --input X --protocol {a,b} --out DIR [...] [BEAM OPTIONS]
    tfmeta periods show DIR                   summary of a built period dataset
    tfmeta quickstart                         the main job on MovieLens-100K

Options `periods build` does not know are handed to Beam's PipelineOptions, so
`--runner DataflowRunner --project P --region R --temp_location gs://...` works.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from typing import Optional, Sequence

from tfmeta import choices  # TensorFlow-free: --help stays fast


def _add_data_location(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data-dir", help="folder holding yelp-a/ and amazon-beauty/ "
                        "(default: $TFMETA_DATA_DIR, else ../shared/data)")
    parser.add_argument("--cache-dir", help="download cache (default: $TFMETA_CACHE_DIR, "
                        "else ~/.cache/tfmeta)")


def _datasets_list(args) -> int:
    from tfmeta.data import registry
    rows = [registry.describe(info, args.data_dir, args.cache_dir)
            for info in registry.list_datasets()]
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    print(f"{'name':<16} {'feedback':<9} {'available':<9} source")
    for row in rows:
        print(f"{row['name']:<16} {row['feedback']:<9} {'yes' if row['available'] else 'no':<9} "
              f"{row['source']}")
        print(f"{'':<16} terms: {row['terms']}")
    return 0


def _datasets_fetch(args) -> int:
    from tfmeta.data import registry
    print(registry.fetch(args.name, cache_dir=args.cache_dir, data_dir=args.data_dir))
    return 0


def _build_options(args):
    from pipelines.options import BuildOptions
    return BuildOptions(
        input=args.input, out=args.out, protocol=args.protocol, cut=args.cut,
        val_months=args.val_months, granularity=args.granularity, periods=args.periods,
        seed=args.seed, format=args.format, columns=args.columns, feedback=args.feedback,
        max_len=args.max_len, history_len=args.history_len, negatives=args.negatives,
        max_bad_fraction=args.max_bad_fraction, overwrite=args.overwrite,
        data_dir=args.data_dir, cache_dir=args.cache_dir)


def build(options, runner: str = "in-process", pipeline_args: Sequence[str] = (),
          workers: int = 2, reference: bool = False) -> dict:
    """Builds periods with Beam (or the plain pandas reference)."""
    if reference:
        from pipelines.reference import build_reference
        return build_reference(options)
    from pipelines.periods import build_periods
    return build_periods(options, runner=runner, pipeline_args=pipeline_args,
                         workers=workers)


def _periods_build(args, beam_args) -> int:
    from tfmeta.data.periods import summarize
    manifest = build(_build_options(args), args.runner, beam_args, args.workers,
                     args.reference)
    print(summarize(manifest))
    print(f"\nwritten to {args.out}")
    return 0


def _periods_show(args) -> int:
    from tfmeta.data.periods import PeriodDataset
    data = PeriodDataset(args.directory)
    print(json.dumps(data.manifest, indent=2) if args.json else data.summary())
    return 0


def _given(args, names) -> dict:
    """The options the user passed (None = the protocol's own default)."""
    return {n: getattr(args, n) for n in names if getattr(args, n, None) is not None}


def _train(args) -> int:
    from tfmeta import distribute, threads
    # First: the thread pools and a multi-worker strategy must be set up before
    # TensorFlow runs anything.
    threads.limit(args.threads)
    distribution = distribute.from_name(args.distribute)
    from tfmeta.data.periods import PeriodDataset
    common = ("seed", "epochs", "batch_size", "learning_rate", "embedding_dim",
              "meta_learning_rate", "optimizer")
    if PeriodDataset(args.periods).protocol == "a":
        from tfmeta.training.ranking import RankingOptions, train_ranking
        options = RankingOptions(method=args.method, **_given(args, common + (
            "iterations", "inner_steps", "gtl_dim", "otl_dim", "max_len", "granularity",
            "choose_budget", "model_options")))
        metrics = train_ranking(args.periods, args.out, options, resume=args.resume,
                                distribution=distribution)
        if args.export_to and distribute.is_chief(distribution):
            from tfmeta.export import export_run
            print(f"exported {export_run(args.out, args.export_to, keep=args.keep)}")
        for window in ("val", "test"):
            figures = metrics[window]
            sampled, full = figures["sampled"], figures["full"]
            print(f"{window}: HR@10 {sampled['HR@10']:.4f} NDCG@10 {sampled['NDCG@10']:.4f} "
                  f"MRR {sampled['MRR']:.4f} · full HR@10 {full['HR@10']:.4f} "
                  f"({figures['instances']} instances)")
        if "budget" in metrics:
            budget = metrics["budget"]
            print(f"test model trained for {budget['chosen']} {budget['unit']}(s), the best "
                  f"{budget['metric']} of {len(budget['curve'])}")
    else:
        from tfmeta.training.incremental import IncrementalOptions, train_incremental
        options = IncrementalOptions(method=args.method, **_given(args, common + (
            "pretrain_epochs", "incctr_lambda", "k", "hidden_size", "spmf_capacity")))
        metrics = train_incremental(args.periods, args.out, options, resume=args.resume,
                                    export_to=args.export_to, keep=args.keep,
                                    distribution=distribution)
        print(f"validation AUC {metrics['val']['auc']:.4f} LogLoss "
              f"{metrics['val']['logloss']:.4f} · test AUC {metrics['test']['auc']:.4f} "
              f"LogLoss {metrics['test']['logloss']:.4f}")
    print(f"{metrics['method']} on {metrics['dataset']} (seed {metrics['seed']}), "
          f"{metrics['seconds']:.0f} s: written to {args.out}/metrics.json")
    return 0


def _export(args) -> int:
    from tfmeta.export import export_run
    path = export_run(args.run_dir, args.out, periods_dir=args.periods, top_k=args.top_k,
                      keep=args.keep or None, period=args.period, name=args.name,
                      server_base_path=args.server_base_path)
    print(f"exported {args.run_dir} to {path} (TF Serving config: "
          f"{os.path.join(args.out, 'models.config')})")
    return 0


def _tune(args) -> int:
    import json as json_module
    from tfmeta import threads
    threads.limit(args.threads)  # before TensorFlow runs anything
    from tfmeta.tuning import load_space, tune
    fixed = json_module.loads(args.fixed) if args.fixed else None
    result = tune(args.periods, args.method, args.out, tuner=args.tuner,
                  max_trials=args.max_trials, space=load_space(args.space), seed=args.seed,
                  max_budget=args.max_budget, fixed=fixed, distribution=args.distribute)
    best, final = result["best"], result["final"]
    name = result["objective"]["name"]
    print(f"{len(result['trials'])} trials; best {name} {best['objective']:.4f} with "
          f"{best['values']}")
    test = final["test"]
    figure = (f"test HR@10 {test['sampled']['HR@10']:.4f}" if result["protocol"] == "a"
              else f"test AUC {test['auc']:.4f}")
    print(f"best configuration retrained: {figure} ({final['run']}); "
          f"{os.path.join(args.out, 'tuning.json')}")
    return 0


def _report(args) -> int:
    from tfmeta.report import write_report
    print(f"wrote {write_report(args.paths, args.out, args.reference)}")
    return 0


def _quickstart(args) -> int:
    """The main job: MovieLens-100K fetched, both protocols' periods built, and the
    protocol B methods trained, scored and compared."""
    from pipelines.options import BuildOptions
    from tfmeta.data import registry
    from tfmeta.data.periods import summarize
    print(f"fetching {args.dataset} ...", flush=True)
    print(registry.fetch(args.dataset, cache_dir=args.cache_dir, data_dir=args.data_dir))
    for protocol in ("a", "b"):
        out = os.path.join(args.out, f"periods-{protocol}")
        print(f"\nbuilding protocol {protocol.upper()} periods into {out} ...", flush=True)
        manifest = build(BuildOptions(input=args.dataset, out=out, protocol=protocol,
                                      seed=args.seed, overwrite=True,
                                      data_dir=args.data_dir, cache_dir=args.cache_dir))
        print(summarize(manifest))
    from tfmeta.training.incremental import IncrementalOptions, train_incremental
    rows = []
    for method in args.methods:
        print(f"\ntraining {method} over the protocol B periods ...", flush=True)
        rows.append(train_incremental(
            os.path.join(args.out, "periods-b"), os.path.join(args.out, f"run-{method}"),
            IncrementalOptions(method=method, seed=args.seed), resume=True))
    print(results_table(rows))
    return 0


def results_table(runs: Sequence[dict]) -> str:
    """Protocol B runs side by side: validation and test AUC / LogLoss, time."""
    lines = [f"\n{'method':<18} {'val AUC':>8} {'val LL':>8} {'test AUC':>9} {'test LL':>8} "
             f"{'seconds':>8}"]
    for m in runs:
        lines.append(f"{m['method']:<18} {m['val']['auc']:>8.4f} {m['val']['logloss']:>8.4f} "
                     f"{m['test']['auc']:>9.4f} {m['test']['logloss']:>8.4f} "
                     f"{m['seconds']:>8.0f}")
    return "\n".join(lines)


def _add_threads(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--threads", type=int, metavar="N",
                        help="TensorFlow threads per pool (intra-op and inter-op) for this "
                             "process; default: one per core. For runs sharing a machine, "
                             "e.g. 1 each for 2 runs on 2 cores")


def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tfmeta", description="Recommender systems that keep up with time.")
    parser.add_argument("-v", "--verbose", action="store_true", help="log Beam progress")
    commands = parser.add_subparsers(dest="command", required=True)

    datasets = commands.add_parser("datasets", help="registered datasets")
    datasets_commands = datasets.add_subparsers(dest="action", required=True)
    listing = datasets_commands.add_parser("list", help="list datasets and their terms")
    listing.add_argument("--json", action="store_true")
    _add_data_location(listing)
    listing.set_defaults(run=_datasets_list)
    fetch = datasets_commands.add_parser("fetch", help="download or locate a dataset")
    fetch.add_argument("name")
    _add_data_location(fetch)
    fetch.set_defaults(run=_datasets_fetch)

    periods = commands.add_parser("periods", help="period datasets (Beam pipeline)")
    periods_commands = periods.add_subparsers(dest="action", required=True)
    b = periods_commands.add_parser(
        "build", help="build period TFRecords from raw interactions",
        description="Unknown options are Beam pipeline options (e.g. --runner "
                    "DataflowRunner --project P --region R --temp_location gs://B/tmp "
                    "--setup_file ./setup.py).")
    b.add_argument("--input", required=True,
                   help="a registered dataset name, or a file / folder / glob of raw logs")
    b.add_argument("--protocol", choices=["a", "b"], required=True,
                   help="a: temporal ranking (LeapRec); b: incremental CTR (ASMG)")
    b.add_argument("--out", required=True, help="output folder (local or gs://)")
    b.add_argument("--cut", help="protocol A: first day of validation (ISO date)")
    b.add_argument("--val-months", type=int, help="protocol A: validation months")
    b.add_argument("--granularity", choices=["day", "week", "month", "quarter", "count"],
                   help="protocol A time steps (default month); count = --periods "
                        "equal-count steps")
    b.add_argument("--periods", type=int, default=31,
                   help="equal-count periods (protocol B, or A with --granularity count)")
    b.add_argument("--seed", type=int, default=0, help="seed of all negative sampling")
    b.add_argument("--format", choices=["csv", "tsv", "inter", "udata", "ratings-dat",
                                        "jsonl"],
                   help="input format (default: from the dataset or the file name)")
    b.add_argument("--columns", help="column names by role, e.g. "
                   "user=uid,item=iid,ts=time,rating=stars,categories=genres")
    b.add_argument("--feedback", choices=["auto", "explicit", "implicit"], default="auto")
    b.add_argument("--max-len", type=int, default=50, help="protocol A history length")
    b.add_argument("--history-len", type=int, default=30, help="protocol B history length")
    b.add_argument("--negatives", type=int, default=99,
                   help="protocol A sampled negatives per instance")
    b.add_argument("--max-bad-fraction", type=float, default=0.01,
                   help="fail when more than this fraction of rows is malformed")
    b.add_argument("--overwrite", action="store_true",
                   help="replace an existing output once the new one is complete")
    b.add_argument("--runner", default="in-process",
                   help="in-process (default), multi-process (DirectRunner processes), or "
                        "a Beam runner name such as DataflowRunner")
    b.add_argument("--workers", type=int, default=2, help="processes for multi-process")
    b.add_argument("--reference", action="store_true",
                   help="use the plain pandas reference instead of Beam (small data)")
    _add_data_location(b)
    b.set_defaults(run=_periods_build, takes_beam_args=True)
    show = periods_commands.add_parser("show", help="summarise a built period dataset")
    show.add_argument("directory")
    show.add_argument("--json", action="store_true", help="print the whole manifest")
    show.set_defaults(run=_periods_show)

    train = commands.add_parser("train", help="train and score a method over periods")
    train.add_argument("--periods", required=True, help="a built period dataset")
    train.add_argument("--method", required=True,
                       help="protocol B: iu, bu-3, bu-5, bu-7, incctr, spmf, sml, "
                            "asmg-linear, asmg-gru-{single,multi,unif,full,zero}; "
                            "protocol A: mf, gcn, ngcf, lightgcn, sasrec, gru4rec, gnn-sa, "
                            "leaprec, leaprec+MODEL, fomaml+MODEL")
    train.add_argument("--out", required=True, help="run directory")
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--resume", action="store_true",
                       help="continue a killed run from its last completed period / "
                            "epoch / iteration")
    both = train.add_argument_group("both protocols (defaults differ: see the README)")
    both.add_argument("--epochs", type=int,
                      help="passes over each period (B, default 1) or over the training "
                           "interactions (A, plain models, default 20)")
    both.add_argument("--batch-size", type=int, help="default 256 (B), 1024 (A)")
    both.add_argument("--learning-rate", type=float, help="Adam, default 1e-3")
    both.add_argument("--embedding-dim", type=int, help="default 8 (B), 64 (A)")
    both.add_argument("--optimizer", choices=choices.OPTIMIZERS,
                      help="the base / plain model's optimizer (default adam); lazy-adam "
                           "updates only the embedding rows a batch reads: a step then "
                           "does not grow with the number of ids")
    both.add_argument("--meta-learning-rate", type=float,
                      help="ASMG's generator / SML's transfer / LeapRec's meta Adam, "
                           "default 1e-3")
    b = train.add_argument_group("protocol B")
    b.add_argument("--pretrain-epochs", type=int,
                   help="passes over the pre-training periods 1-10 (default 1)")
    b.add_argument("--incctr-lambda", type=float,
                   help="IncCTR: weight of the distillation loss (default 0.5)")
    b.add_argument("--k", type=int, help="ASMG: base models in the window (default 3)")
    b.add_argument("--hidden-size", type=int, help="ASMG-GRU hidden units (default 4)")
    b.add_argument("--spmf-capacity", type=int,
                   help="SPMF: examples in the reservoir (default 10,000)")
    a = train.add_argument_group("protocol A")
    a.add_argument("--iterations", type=int,
                   help="LeapRec/FOMAML: walks over the time steps (default 10)")
    a.add_argument("--inner-steps", type=int, help="LeapRec/FOMAML: K (default 10)")
    a.add_argument("--gtl-dim", type=int, help="LeapRec: GTL size, 0 = off (default 64)")
    a.add_argument("--otl-dim", type=int, help="LeapRec: OTL size, 0 = off (default 64)")
    a.add_argument("--max-len", type=int, help="history items read (default 50)")
    a.add_argument("--granularity", choices=["day", "week", "month", "quarter"],
                   help="LeapRec/FOMAML time steps (default: the dataset's)")
    a.add_argument("--model-options", type=json.loads, metavar="JSON",
                   help="the model's own arguments, e.g. '{\"num_layers\": 3, \"dropout\": 0.5}'")
    a.add_argument("--choose-budget", action="store_true", default=None,
                   help="score validation after every epoch / iteration of the train-window "
                        "model and train the test model for the count that scored best "
                        "(sampled HR@10); --epochs / --iterations are then the maximum")
    train.add_argument("--export-to", metavar="EXPORT_ROOT",
                       help="also export SavedModel versions here: protocol B one per "
                            "update period (the served model), protocol A the final model")
    train.add_argument("--keep", type=int, default=5,
                       help="with --export-to: versions to keep (default 5)")
    train.add_argument("--distribute", default="default",
                       choices=choices.STRATEGIES,
                       help="tf.distribute strategy: mirrored (this machine's GPUs) or "
                            "multi-worker (the cluster in TF_CONFIG; start one process per "
                            "worker); default: none")
    _add_threads(train)
    train.set_defaults(run=_train)

    tuning = commands.add_parser(
        "tune", help="search a method's hyperparameters on validation (KerasTuner)")
    tuning.add_argument("--periods", required=True, help="built period dataset (A or B)")
    tuning.add_argument("--method", required=True, help="any METHOD of tfmeta train")
    tuning.add_argument("--out", required=True,
                        help="search folder: search/ (KerasTuner state, one run per trial), "
                             "best/ (the best configuration retrained), tuning.json")
    tuning.add_argument("--tuner", choices=choices.TUNERS, default="random",
                        help="random, bayesian (Gaussian process), hyperband, or grid "
                             "(every combination of the space, in order)")
    tuning.add_argument("--max-trials", type=int, default=10,
                        help="random, bayesian and grid: trials (default 10)")
    tuning.add_argument("--max-budget", type=int,
                        help="hyperband: most epochs / iterations of a trial (default: "
                             "the driver's)")
    tuning.add_argument("--space", help="a JSON search space {option: [values] or "
                                        "{\"min\": a, \"max\": b}} (default: the papers' grid)")
    tuning.add_argument("--fixed", help="JSON options every trial uses, e.g. "
                                        "'{\"epochs\": 5}'")
    tuning.add_argument("--seed", type=int, default=0)
    tuning.add_argument("--distribute", default="default",
                        choices=choices.SINGLE_PROCESS_STRATEGIES,
                        help="tf.distribute strategy of every trial: mirrored (this "
                             "machine's GPUs); default: none")
    _add_threads(tuning)
    tuning.set_defaults(run=_tune)

    report = commands.add_parser(
        "report", help="one self-contained HTML page from runs, searches and benchmark results")
    report.add_argument("paths", nargs="+", metavar="PATH",
                        help="run directories, tfmeta tune folders or benchmark results "
                             "folders (searched recursively)")
    report.add_argument("--out", required=True, help="the .html file to write")
    report.add_argument("--reference", help="method the relative changes are against "
                                            "(default: iu for protocol B, else the first)")
    report.set_defaults(run=_report)

    export = commands.add_parser(
        "export", help="export a trained run as a TF Serving SavedModel version")
    export.add_argument("--run", required=True, dest="run_dir",
                        help="the run directory (tfmeta train --out)")
    export.add_argument("--out", required=True, metavar="EXPORT_ROOT",
                        help="export root, e.g. saved_models/NAME: gets NAME/VERSION/ and "
                             "models.config")
    export.add_argument("--periods", help="where the run's periods are now (default: "
                                          "where they were when it trained)")
    export.add_argument("--top-k", type=int, default=100,
                        help="ranking models: K of the top_k signature (default 100)")
    export.add_argument("--period", type=int,
                        help="protocol B: the model served after this update period "
                             "(default: the last)")
    export.add_argument("--keep", type=int, default=5,
                        help="versions to keep, oldest pruned (default 5; 0 keeps all)")
    export.add_argument("--name", help="model name in models.config (default: the export "
                                       "root's folder name)")
    export.add_argument("--server-base-path",
                        help="the export root as TF Serving sees it, for models.config "
                             "(default: its absolute path; e.g. /models/NAME in docker)")
    export.set_defaults(run=_export)

    quick = commands.add_parser("quickstart", help="the main job on MovieLens-100K")
    quick.add_argument("--dataset", default="movielens-100k")
    quick.add_argument("--out", default="runs/quickstart")
    quick.add_argument("--seed", type=int, default=0)
    quick.add_argument("--methods", nargs="+", default=["iu", "asmg-gru-multi"],
                       help="protocol B methods to train and compare")
    _add_data_location(quick)
    quick.set_defaults(run=_quickstart)
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = make_parser()
    args, unknown = parser.parse_known_args(argv)
    if unknown and not getattr(args, "takes_beam_args", False):
        parser.error(f"unrecognized arguments: {' '.join(unknown)}")
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING)
    if not args.verbose:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tfmeta  # noqa: F401  (selects Keras 2 before anything imports TensorFlow)
    from pipelines.manifest import TooManyBadRows
    from pipelines.output import OutputExists
    from tfmeta.data.readers import BadInput
    from tfmeta.data.registry import DatasetError
    try:
        if getattr(args, "takes_beam_args", False):
            return args.run(args, unknown)
        return args.run(args)
    except (BadInput, DatasetError, OutputExists, TooManyBadRows, ValueError, KeyError,
            FileNotFoundError, FileExistsError) as e:
        if args.verbose:
            raise
        print(f"tfmeta: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
