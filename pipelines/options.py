"""Options of a period build, resolved once so every implementation reads the same ones."""
from __future__ import annotations

import dataclasses
from typing import Optional

from tfmeta.data import readers, timesteps

PROTOCOLS = ("a", "b")
FEEDBACK = ("auto", "explicit", "implicit")


@dataclasses.dataclass
class BuildOptions:
    """What `tfmeta periods build` takes; see PROTOCOLS.md for the meaning of each."""
    input: str
    out: str
    protocol: str = "a"
    cut: Optional[str] = None           # protocol A; default from the dataset registry
    val_months: Optional[int] = None    # protocol A; default from the dataset registry
    granularity: Optional[str] = None   # A: month by default; B: always count
    periods: int = 31                   # B, or A with granularity=count
    seed: int = 0
    format: Optional[str] = None        # input format; guessed from the file name
    columns: Optional[str] = None       # e.g. "user=uid,item=iid,ts=time,rating=stars"
    feedback: str = "auto"              # explicit (ratings) or implicit; auto: by data
    max_len: int = 50                   # A: history length of a ranking instance
    history_len: int = 30               # B: positives in an example's history
    negatives: int = 99                 # A: sampled negatives per instance
    positive_rating: float = 4.0        # B, explicit data: label 1 iff rating >= this
    max_bad_fraction: float = 0.01
    overwrite: bool = False
    data_dir: Optional[str] = None
    cache_dir: Optional[str] = None

    def to_json(self) -> dict:
        return dataclasses.asdict(self)


@dataclasses.dataclass(frozen=True)
class ResolvedBuild:
    """BuildOptions with the dataset looked up and every default filled in."""
    options: BuildOptions
    dataset: Optional[str]
    paths: tuple
    row_format: readers.RowFormat
    granularity: str
    windows: Optional[timesteps.Windows]
    explicit: bool          # protocol B labels come from ratings (else sampled negatives)
    dedupe: bool            # keep only the earliest row of each (user, item) pair


def resolve(options: BuildOptions) -> ResolvedBuild:
    from tfmeta.data import registry
    o = options
    if o.protocol not in PROTOCOLS:
        raise ValueError(f"--protocol must be one of {PROTOCOLS}, not {o.protocol!r}")
    if o.feedback not in FEEDBACK:
        raise ValueError(f"--feedback must be one of {FEEDBACK}, not {o.feedback!r}")
    if not 0 <= o.max_bad_fraction <= 1:
        raise ValueError("--max-bad-fraction must be within [0, 1]")
    if o.periods < 1:
        raise ValueError("--periods must be >= 1")
    paths, info = registry.resolve_input(o.input, data_dir=o.data_dir, cache_dir=o.cache_dir)

    name = o.format or (info.format if info else readers.detect_format(paths[0]))
    if o.columns:
        columns = readers.Columns.parse(o.columns)
    elif info:
        columns = info.columns
    else:
        columns = readers.Columns()
    row_format = readers.RowFormat(name, columns)

    if o.feedback == "auto":
        explicit = (info.feedback == "explicit" if info
                    else "rating" in readers.input_roles(paths, row_format))
    else:
        explicit = o.feedback == "explicit"
    if explicit and name in ("csv", "tsv", "jsonl") and columns.rating is None:
        raise ValueError("explicit feedback needs ratings: name the rating column with "
                         "--columns ...,rating=NAME, or pass --feedback implicit")

    if o.protocol == "b":
        granularity, windows = "count", None
        if o.granularity not in (None, "count"):
            raise ValueError("protocol B splits into equal-count periods; drop --granularity")
    else:
        granularity = o.granularity or "month"
        if granularity not in timesteps.GRANULARITIES:
            raise ValueError(f"--granularity must be one of {timesteps.GRANULARITIES}")
        cut = o.cut or (info.cut if info else None)
        val_months = o.val_months if o.val_months is not None else (
            info.val_months if info else None)
        if cut is None or val_months is None:
            raise ValueError("protocol A needs --cut DATE and --val-months N for data that "
                             "is not in the dataset registry")
        windows = timesteps.Windows(cut, val_months)
    # Protocol A never keeps repeats; protocol B keeps them only for explicit ratings.
    dedupe = o.protocol == "a" or not explicit
    return ResolvedBuild(o, info.name if info else None, tuple(paths), row_format,
                         granularity, windows, explicit, dedupe)
