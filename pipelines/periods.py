"""The Beam pipeline that turns raw interaction logs into period TFRecords.

    raw files -> parse (bad rows to a dead-letter output) -> clean (earliest row of each
    (user, item) pair) -> global orderings -> per-user examples -> period TFRecords

Global orderings are computed without gathering rows on one worker: equal-count period
boundaries come from a per-timestamp histogram (a lifted combine) plus the few rows that
share a boundary timestamp; first appearances of ids are min-combines; everything that
depends on a user's own past (histories, negatives) runs per user after a GroupByKey.

Runs in process by default (FnApiRunner), with DirectRunner in multi_processing mode on
request, and on Dataflow or any other runner through standard Beam pipeline options.
"""
from __future__ import annotations

import bisect
import collections
import json
import time
from typing import Optional, Sequence

import apache_beam as beam
from apache_beam.io import fileio, tfrecordio
from apache_beam.options.pipeline_options import PipelineOptions

from pipelines import manifest, output
from pipelines.options import BuildOptions, ResolvedBuild, resolve
from tfmeta.data import negatives, readers, schema, timesteps

RUNNERS = ("in-process", "multi-process")
# Rows cross stage boundaries as plain tuples in Interaction's field order: Beam's coder
# encodes tuples about 4x faster than namedtuples, which it pickles.
USER, ITEM, TS, RATING, CATEGORIES, SEQ = range(len(readers.Interaction._fields))
# Local runs may keep a file open per step; on remote workers each open writer holds an
# upload buffer, so Beam's default limit (extra steps spill through a shuffle) is kept.
LOCAL_WRITERS_PER_BUNDLE = 1024


# ---------------------------------------------------------------- steps and periods

class StepNamer:
    """Names the time step (protocol A) or period (protocol B) a row belongs to.

    Names sort in time order and are the file prefixes under periods/.
    """

    def __init__(self, build: ResolvedBuild):
        self.protocol = build.options.protocol
        self.granularity = build.granularity
        self.windows = build.windows

    def name(self, ts: int, seq: int, boundaries: Optional[Sequence[tuple]]) -> str:
        if self.protocol == "b":
            return f"period-{timesteps.count_step((ts, seq), boundaries):03d}"
        window = self.windows.of(ts)
        if self.granularity == "count":
            return f"{window}-p{timesteps.count_step((ts, seq), boundaries):04d}"
        return f"{window}-{timesteps.step_label(ts, self.granularity)}"


def sort_key(row: readers.Interaction) -> tuple:
    return row.ts, row.seq


# ---------------------------------------------------------------- reading

class ReadAndParse(beam.DoFn):
    """(file index, path) -> interactions; bad rows go to 'rejected' with their reason."""

    def __init__(self, row_format: readers.RowFormat):
        self.row_format = row_format

    def process(self, indexed_path):
        index, path = indexed_path
        lines = readers.iter_lines(path, self.row_format)
        parser = next(lines)
        rows_in = 0
        for number, text in lines:
            rows_in += 1
            try:
                yield tuple(parser.parse(text, readers.make_seq(index, number)))
            except readers.BadRow as bad:
                yield beam.pvalue.TaggedOutput(
                    "rejected", readers.rejection(path, number, str(bad), text))
        yield beam.pvalue.TaggedOutput("stats", {"rows_in": rows_in})


def _earliest(rows):
    return min(rows, key=lambda t: (t[TS], t[SEQ]))


def _interactions(rows) -> list:
    """A user's rows, back as Interactions, in (ts, seq) order."""
    return sorted(map(readers.Interaction._make, rows), key=sort_key)


# ---------------------------------------------------------------- statistics

class MergeStats(beam.CombineFn):
    """Merges dicts of counters: 'start_ts/...' keys take the min, 'end_ts/...' the max,
    everything else adds up."""

    def create_accumulator(self):
        return {}

    def add_input(self, acc, stats):
        for key, value in stats.items():
            if key not in acc:
                acc[key] = value
            elif key.startswith("start_ts/"):
                acc[key] = min(acc[key], value)
            elif key.startswith("end_ts/"):
                acc[key] = max(acc[key], value)
            else:
                acc[key] += value
        return acc

    def merge_accumulators(self, accs):
        merged = {}
        for acc in accs:
            self.add_input(merged, acc)
        return merged

    def extract_output(self, acc):
        return acc


def count_row(stats: dict, step: str, ts: int, rows: int = 1) -> None:
    manifest.bump(stats, f"rows/{step}", rows)
    stats[f"start_ts/{step}"] = min(stats.get(f"start_ts/{step}", ts), ts)
    stats[f"end_ts/{step}"] = max(stats.get(f"end_ts/{step}", ts), ts)


def _count_as(name):
    return lambda n: {name: n}


# ---------------------------------------------------------------- global orderings

def boundary_positions(histogram, parts: int):
    """Per-timestamp row counts -> [(ts, j)]: boundary row = j-th row (0-based, by seq)
    among the rows with timestamp ts."""
    histogram = sorted(histogram)
    total = sum(count for _, count in histogram)
    wanted = timesteps.boundary_ranks(total, parts)
    positions, before, w = [], 0, 0
    for ts, count in histogram:
        while w < len(wanted) and wanted[w] < before + count:
            positions.append((ts, wanted[w] - before))
            w += 1
        before += count
    return positions


def boundary_keys(grouped, positions):
    """(ts, seqs at ts) -> the (ts, seq) keys of the boundary rows at that timestamp."""
    ts, seqs = grouped
    seqs = sorted(seqs)
    return [(ts, seqs[j]) for t, j in positions if t == ts]


class Context:
    """What every per-user step needs to know about all rows (a side input)."""

    def __init__(self, item_first, boundaries, has_categories, windows):
        ordered = sorted(item_first, key=lambda kv: kv[1][:2])
        self.items = [item for item, _ in ordered]
        self.item_first_ts = [first[0] for _, first in ordered]
        self.item_rank = {item: rank for rank, item in enumerate(self.items)}
        self.has_categories = has_categories
        self.item_categories = (
            {item: first[2] for item, first in ordered if first[2]} if has_categories else {})
        self.boundaries = boundaries
        # Warm items of a window: those first seen before it starts, a prefix of items.
        self.n_warm = {}
        if windows is not None:
            for window in ("val", "test"):
                self.n_warm[window] = bisect.bisect_left(
                    self.item_first_ts, windows.start(window))


# ---------------------------------------------------------------- per-user examples

class PerUserExamples(beam.DoFn):
    """Base of the per-user steps: (user, rows) in, (step, example) out, plus 'stats'."""

    def __init__(self, build: ResolvedBuild):
        self.build = build
        self.options = build.options
        self.namer = StepNamer(build)


class RankingExamples(PerUserExamples):
    """Protocol A, one user: interactions per time step, and the user's val / test
    ranking instances with their history and seeded negatives."""

    def process(self, element, ctx: Context):
        user, rows = element
        rows = _interactions(rows)
        stats = {}
        for r in rows:
            step = self.namer.name(r.ts, r.seq, ctx.boundaries)
            count_row(stats, step, r.ts)
            yield step, schema.interaction_example(r.user, r.item, r.ts, r.seq, r.rating,
                                                   r.categories or None)
        stamps = [r.ts for r in rows]
        user_items = {r.item for r in rows}
        for window in ("val", "test"):
            start, n_warm = self.build.windows.start(window), ctx.n_warm[window]
            rng = negatives.user_rng(self.options.seed, f"a/{window}", user)
            for position, r in enumerate(rows):
                if self.build.windows.of(r.ts) != window:
                    continue
                if stamps[0] >= start:
                    manifest.bump(stats, f"excluded_cold_user/{window}")
                    continue
                if ctx.item_rank[r.item] >= n_warm:
                    manifest.bump(stats, f"excluded_cold_item/{window}")
                    continue
                before = bisect.bisect_left(stamps, r.ts, 0, position)
                history = [h.item for h in rows[max(0, before - self.options.max_len):before]]
                negs = negatives.sample_many(rng, ctx.items, n_warm, self.options.negatives,
                                             user_items)
                manifest.bump(stats, f"instances/{window}")
                if len(negs) < self.options.negatives:
                    manifest.bump(stats, f"short_lists/{window}")
                yield beam.pvalue.TaggedOutput("candidates", (window, schema.candidate_example(
                    r.user, r.ts, r.seq, r.item, negs, history)))
                yield beam.pvalue.TaggedOutput(
                    "candidates_csv", (window, schema.csv_line([r.user, r.ts, r.item, *negs])))
        yield beam.pvalue.TaggedOutput("stats", stats)


class LabelledExamples(PerUserExamples):
    """Protocol B, one user: labelled examples with the user's 30 most recent positives
    strictly before each example, and one sampled negative per positive for implicit
    data, drawn from the items already seen at that time that the user has not
    interacted with up to and including it."""

    def process(self, element, ctx: Context):
        user, rows = element
        rows = _interactions(rows)
        rng = negatives.user_rng(self.options.seed, "b", user)
        positives = collections.deque(maxlen=self.options.history_len)
        seen = set()
        stats = {}
        start = 0
        while start < len(rows):
            ts = rows[start].ts
            end = start
            while end < len(rows) and rows[end].ts == ts:
                end += 1
            group = rows[start:end]
            history = list(positives)
            seen.update(r.item for r in group)
            pool_size = bisect.bisect_right(ctx.item_first_ts, ts)
            for r in group:
                label = self._label(r)
                step = self.namer.name(r.ts, r.seq, ctx.boundaries)
                yield step, schema.labelled_example(r.user, r.item, r.ts, r.seq, label, 0,
                                                    history, r.rating, r.categories or None)
                count_row(stats, step, ts)
                manifest.bump(stats, f"positives/{step}", label)
                if self.build.explicit:
                    continue
                negative = negatives.sample_one(rng, ctx.items, pool_size, seen)
                if negative is None:
                    manifest.bump(stats, "negatives_unavailable")
                    continue
                count_row(stats, step, ts)
                yield step, schema.labelled_example(
                    r.user, negative, r.ts, r.seq, 0, 1, history,
                    categories=ctx.item_categories.get(negative))
            positives.extend(r.item for r in group if self._label(r))
            start = end
        yield beam.pvalue.TaggedOutput("stats", stats)

    def _label(self, row) -> int:
        if not self.build.explicit:
            return 1
        if row.rating is None:
            raise ValueError(f"explicit feedback needs a rating; row {readers.split_seq(row.seq)} "
                             "has none (pass --feedback implicit)")
        return int(row.rating >= self.options.positive_rating)


# ---------------------------------------------------------------- writing

class TFRecordSink(fileio.FileSink):
    """Writes (step, serialized example) elements as TFRecords (for WriteToFiles)."""

    def open(self, fh):
        self._fh = fh

    def write(self, element):
        tfrecordio._TFRecordUtil.write_record(self._fh, element[1])

    def flush(self):
        self._fh.flush()


def _step_of(element):
    return element[0]


def _make_sink(_destination):
    return TFRecordSink()


def write_vocabularies(_, ctx: Context, user_first, staging: str, namer: StepNamer):
    """Writes vocab/{users,items,categories}.txt in first-appearance order; returns the
    vocabulary sizes and how many new users each step brings (growing vocabularies)."""
    users = sorted(user_first, key=lambda kv: kv[1])
    output.write_lines(output.join(staging, "vocab", "users.txt"), (u for u, _ in users))
    output.write_lines(output.join(staging, "vocab", "items.txt"), ctx.items)
    if ctx.has_categories:
        categories = dict.fromkeys(c for item in ctx.items
                                   for c in ctx.item_categories.get(item, ()))
        output.write_lines(output.join(staging, "vocab", "categories.txt"), categories)
    stats = {"vocab/users": len(users), "vocab/items": len(ctx.items)}
    stats.update(_new_per_step("users", (first for _, first in users), namer, ctx.boundaries))
    return stats


def expand(pipeline: beam.Pipeline, build: ResolvedBuild, staging: str,
           writers_per_bundle: int = fileio.WriteToFiles.MAX_NUM_WRITERS_PER_BUNDLE) -> None:
    """Adds the period build to a pipeline; everything it writes lands in `staging`."""
    o = build.options
    namer = StepNamer(build)
    has_categories = build.row_format.columns.categories is not None

    parsed = (pipeline
              | "ListFiles" >> beam.Create(list(enumerate(build.paths)))
              | "ReadAndParse" >> beam.ParDo(ReadAndParse(build.row_format)).with_outputs(
                  "rejected", "stats", main="rows"))
    (parsed.rejected
     | "RejectedToJson" >> beam.Map(json.dumps)
     | "WriteRejected" >> beam.io.WriteToText(output.join(staging, "rejected", "rejected"),
                                              file_name_suffix=".jsonl"))
    rows = parsed.rows
    if build.dedupe:
        clean = (rows
                 | "KeyByPair" >> beam.Map(lambda t: ((t[USER], t[ITEM]), t))
                 | "KeepEarliest" >> beam.CombinePerKey(_earliest)
                 | "DropPairKey" >> beam.Values())
    else:
        clean = rows

    item_first = (clean
                  | "ItemFirstSeen" >> beam.Map(
                      lambda t: (t[ITEM], (t[TS], t[SEQ], t[CATEGORIES])))
                  | "MinPerItem" >> beam.CombinePerKey(min)
                  | "ItemsToList" >> beam.combiners.ToList())
    user_first = (clean
                  | "UserFirstSeen" >> beam.Map(lambda t: (t[USER], (t[TS], t[SEQ])))
                  | "MinPerUser" >> beam.CombinePerKey(min)
                  | "UsersToList" >> beam.combiners.ToList())

    if build.granularity == "count":
        positions = (clean
                     | "CountPerTs" >> beam.Map(lambda t: (t[TS], 1))
                     | "SumPerTs" >> beam.CombinePerKey(sum)
                     | "HistogramToList" >> beam.combiners.ToList()
                     | "BoundaryPositions" >> beam.Map(boundary_positions, o.periods))
        boundary_ts = positions | "BoundaryTimestamps" >> beam.Map(
            lambda pos: frozenset(ts for ts, _ in pos))
        boundaries = (clean
                      | "RowsAtBoundaryTs" >> beam.FlatMap(
                          lambda t, wanted: [(t[TS], t[SEQ])] if t[TS] in wanted else [],
                          beam.pvalue.AsSingleton(boundary_ts))
                      | "GroupBoundaryTs" >> beam.GroupByKey()
                      | "BoundaryKeys" >> beam.FlatMap(boundary_keys,
                                                       beam.pvalue.AsSingleton(positions))
                      | "BoundariesToList" >> beam.combiners.ToList()
                      | "SortBoundaries" >> beam.Map(sorted))
        boundaries_side = beam.pvalue.AsSingleton(boundaries)
    else:
        boundaries = pipeline | "NoBoundaries" >> beam.Create([None])
        boundaries_side = beam.pvalue.AsSingleton(boundaries)

    context = (item_first
               | "Context" >> beam.Map(
                   lambda items, bounds: Context(items, bounds, has_categories, build.windows),
                   boundaries_side))
    ctx_side = beam.pvalue.AsSingleton(context)

    per_user = (clean
                | "KeyByUser" >> beam.Map(lambda t: (t[USER], t))
                | "GroupByUser" >> beam.GroupByKey())
    if o.protocol == "a":
        examples = per_user | "RankingExamples" >> beam.ParDo(
            RankingExamples(build), ctx_side).with_outputs(
                "candidates", "candidates_csv", "stats", main="examples")
        for window in ("val", "test"):
            (examples.candidates
             | f"Select{window}" >> beam.Filter(lambda kv, w=window: kv[0] == w)
             | f"{window}Records" >> beam.Values()
             | f"Write{window}Candidates" >> beam.io.WriteToTFRecord(
                 output.join(staging, "candidates", window, "part"),
                 file_name_suffix=".tfrecord"))
            (examples.candidates_csv
             | f"Select{window}Csv" >> beam.Filter(lambda kv, w=window: kv[0] == w)
             | f"{window}Lines" >> beam.Values()
             | f"Write{window}Csv" >> beam.io.WriteToText(
                 output.join(staging, "candidates", window), file_name_suffix=".csv",
                 num_shards=1, shard_name_template="",
                 header=schema.candidate_csv_header(o.negatives)))
    else:
        examples = per_user | "LabelledExamples" >> beam.ParDo(
            LabelledExamples(build), ctx_side).with_outputs("stats", main="examples")

    (examples.examples
     | "WritePeriods" >> fileio.WriteToFiles(
         path=output.join(staging, "periods"), destination=_step_of, sink=_make_sink,
         file_naming=fileio.destination_prefix_naming(".tfrecord"),
         max_writers_per_bundle=writers_per_bundle))

    vocab_stats = (pipeline
                   | "VocabTrigger" >> beam.Create([None])
                   | "WriteVocabularies" >> beam.Map(
                       write_vocabularies, ctx_side, beam.pvalue.AsSingleton(user_first),
                       staging, namer))
    item_stats = (item_first
                  | "NewItemsPerStep" >> beam.Map(
                      lambda items, bounds: _new_per_step(
                          "items", (first[:2] for _, first in items), namer, bounds),
                      boundaries_side))
    counts = [
        parsed.stats,
        parsed.rejected | "CountRejected" >> beam.combiners.Count.Globally()
        | "RejectedStat" >> beam.Map(_count_as("rows_rejected")),
        rows | "CountParsed" >> beam.combiners.Count.Globally()
        | "ParsedStat" >> beam.Map(_count_as("rows_parsed")),
        clean | "CountClean" >> beam.combiners.Count.Globally()
        | "CleanStat" >> beam.Map(_count_as("rows_out")),
        examples.stats, vocab_stats, item_stats,
    ]
    (counts
     | "AllStats" >> beam.Flatten()
     | "MergeStats" >> beam.CombineGlobally(MergeStats())
     | "WriteStats" >> beam.Map(
         lambda stats: output.write_json(output.join(staging, manifest.STATS), stats)))


def _new_per_step(kind, first_keys, namer: StepNamer, boundaries) -> dict:
    stats = {}
    for ts, seq in first_keys:
        key = f"new_{kind}/{namer.name(ts, seq, boundaries)}"
        manifest.bump(stats, key)
    return stats


def stray_words(pipeline_args: Sequence[str]) -> list:
    """The words of `pipeline_args` that are neither an option nor an option's value:
    what the shell leaves of an unquoted glob (--input logs/*.csv gives --input
    logs/a.csv logs/b.csv), which Beam would drop without a word."""
    stray, value_may_follow = [], False
    for word in pipeline_args:
        if word.startswith("-"):
            value_may_follow = "=" not in word
        elif value_may_follow:
            value_may_follow = False
        else:
            stray.append(word)
    return stray


def pipeline_options(runner: str, pipeline_args: Optional[Sequence[str]] = None,
                     workers: int = 2):
    """(runner object or name, PipelineOptions) for a runner choice."""
    args = list(pipeline_args or [])
    stray = stray_words(args)
    if stray:
        raise ValueError(f"unexpected argument(s) {' '.join(stray)}: neither an option nor "
                         "an option's value. If they are input files, the shell expanded a "
                         "glob: quote it (--input 'logs/*.csv') or give their folder")
    if runner == "in-process":
        from apache_beam.runners.portability.fn_api_runner import FnApiRunner
        return FnApiRunner(), PipelineOptions(args)
    if runner == "multi-process":
        return "DirectRunner", PipelineOptions(
            args + ["--direct_running_mode=multi_processing",
                    f"--direct_num_workers={workers}"])
    return runner, PipelineOptions(args)


def build_periods(options: BuildOptions, runner: str = "in-process",
                  pipeline_args: Optional[Sequence[str]] = None, workers: int = 2) -> dict:
    """Builds a period dataset with Beam; returns its manifest.

    `runner` is 'in-process' (default), 'multi-process' (DirectRunner with `workers`
    processes), or a Beam runner name such as 'DataflowRunner' whose options come in
    `pipeline_args` (e.g. ['--project=...', '--region=...', '--temp_location=gs://...',
    '--setup_file=./setup.py']).
    """
    # First: a bad argument fails before any work.
    beam_runner, beam_options = pipeline_options(runner, pipeline_args, workers)
    build = resolve(options)
    output.check_destination(options.out, options.overwrite)
    manifest.check_headers(build)
    staging = output.new_staging_dir(options.out)
    started = time.time()
    try:
        with beam.Pipeline(runner=beam_runner, options=beam_options) as pipeline:
            expand(pipeline, build, staging, LOCAL_WRITERS_PER_BUNDLE if runner in RUNNERS
                   else fileio.WriteToFiles.MAX_NUM_WRITERS_PER_BUNDLE)
    except BaseException:
        output.discard(staging)
        raise
    return manifest.finish(build, staging, builder=f"beam/{runner}",
                           seconds=time.time() - started)
