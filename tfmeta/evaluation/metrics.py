"""Scoring for both protocols of PROTOCOLS.md, shared by every model of the library.

One implementation of each metric, so that every model (the two methods and every
baseline) is scored by the same code and their figures can be compared:

- A.7 / A.8, ranking: `ranks_from_scores` and `full_ranking_ranks` turn scores into
  ranks with TF ops (inside tf.function, on any device, batch by batch); the ranks then
  leave the graph and `ranking_metrics` / `RankingAccumulator` average HR@k, NDCG@k, MRR.
- B.5, CTR: `auc` (exact, ties averaged), `logloss` (clipped), `ctr_metrics` and the
  streaming `CtrAccumulator`, in numpy.
- `relative_change`: the "relative change against IU" of the papers' tables.
"""
from __future__ import annotations

import warnings
from typing import Dict, Sequence

import numpy as np
import tensorflow as tf

# PROTOCOLS.md B.5: probabilities are clipped before the log so that a confident wrong
# prediction costs a large but finite loss.
LOGLOSS_EPSILON = 1e-7


class UndefinedMetricWarning(UserWarning):
    """A metric is undefined on the given data (e.g. AUC with one class) and is nan."""


# ------------------------------------------------------------------ ranking (A.7, A.8)


def _matching_float_dtypes(a: tf.Tensor, b: tf.Tensor):
    """Compare in one dtype, widening rather than narrowing (narrowing could create ties)."""
    if a.dtype != b.dtype:
        a, b = tf.cast(a, tf.float64), tf.cast(b, tf.float64)
    return a, b


def ranks_from_scores(positive_scores, negative_scores, mask=None) -> tf.Tensor:
    """Rank of each positive among its candidates (PROTOCOLS.md A.7), as TF ops.

    rank = 1 + #(valid negatives whose score is >= the positive's). Ties count against
    the model, so a constant scorer ranks last (N + 1) instead of being rewarded; a NaN
    score (positive or negative) also counts against it, never for it.

    Args:
      positive_scores: float [B].
      negative_scores: float [B, N].
      mask: optional bool [B, N], True for the negatives to count (e.g. padding of
        users with fewer than N candidates is False).
    Returns:
      int32 [B], in 1..N+1.
    """
    negatives = tf.convert_to_tensor(negative_scores)
    positives = tf.convert_to_tensor(positive_scores, dtype_hint=negatives.dtype)
    positives.shape.assert_has_rank(1)
    negatives.shape.assert_has_rank(2)
    positives.shape.assert_is_compatible_with(negatives.shape[:1])
    checks = [tf.debugging.assert_equal(
        tf.shape(positives)[0], tf.shape(negatives)[0],
        message="ranks_from_scores: positive_scores [B] and negative_scores [B, N] "
                "disagree on B")]
    positives, negatives = _matching_float_dtypes(positives, negatives)
    # not (neg < pos) is neg >= pos for numbers, and is True when either is NaN.
    counted = tf.logical_not(tf.less(negatives, positives[:, tf.newaxis]))
    if mask is not None:
        mask = tf.convert_to_tensor(mask, dtype=tf.bool)
        mask.shape.assert_is_compatible_with(negatives.shape)
        checks.append(tf.debugging.assert_equal(
            tf.shape(mask), tf.shape(negatives),
            message="ranks_from_scores: mask must have the shape of negative_scores"))
        counted = tf.logical_and(counted, mask)
    with tf.control_dependencies(checks):
        return 1 + tf.reduce_sum(tf.cast(counted, tf.int32), axis=1)


def full_ranking_ranks(positive_scores, all_item_scores, positive_index,
                       exclude_mask) -> tf.Tensor:
    """Rank of each positive among all items but the excluded ones (PROTOCOLS.md A.8).

    Sampled metrics can reorder models; this is the check. Same tie rule as
    `ranks_from_scores`. The positive's own column is never counted against it, even
    if `exclude_mask` leaves it in.

    Args:
      positive_scores: float [B], or None to read them from `all_item_scores`.
      all_item_scores: float [B, I], the model's score of every item.
      positive_index: int [B], the positive's column in `all_item_scores`.
      exclude_mask: bool [B, I], True for the items not to rank against: the user's
        items before t and the non-warm items.
    Returns:
      int32 [B], in 1..I.
    """
    scores = tf.convert_to_tensor(all_item_scores)
    scores.shape.assert_has_rank(2)
    index = tf.convert_to_tensor(positive_index)
    index.shape.assert_has_rank(1)
    index = tf.cast(index, tf.int32)
    num_items = tf.shape(scores)[1]
    # tf.gather does not check bounds on GPU: an out-of-range index must fail, not score 0.
    with tf.control_dependencies([
            tf.debugging.assert_non_negative(index, message="positive_index < 0"),
            tf.debugging.assert_less(index, num_items,
                                     message="positive_index >= number of items")]):
        index = tf.identity(index)
    if positive_scores is None:
        positive_scores = tf.gather(scores, index, axis=1, batch_dims=1)
    is_positive = tf.equal(tf.range(num_items)[tf.newaxis, :], index[:, tf.newaxis])
    exclude = tf.convert_to_tensor(exclude_mask, dtype=tf.bool)
    valid = tf.logical_not(tf.logical_or(exclude, is_positive))
    return ranks_from_scores(positive_scores, scores, valid)


def _as_ranks(ranks) -> np.ndarray:
    """Ranks as a flat int64 array, refusing anything that cannot be a rank."""
    array = np.asarray(ranks).reshape(-1)
    if array.dtype.kind not in "iu":
        if array.dtype.kind != "f" or not np.all(np.isfinite(array)) or np.any(
                array != np.floor(array)):
            raise ValueError(f"ranks must be integers, got {array.dtype} {array[:5]!r}...")
    array = array.astype(np.int64)
    if array.size and array.min() < 1:
        raise ValueError(f"ranks start at 1, got {array.min()}")
    return array


class RankingAccumulator:
    """Streaming HR@k, NDCG@k, MRR: add ranks batch by batch, so that evaluating over a
    tf.data pipeline never holds all the scores (only a few running sums)."""

    def __init__(self, ks: Sequence[int] = (1, 5, 10), ndcg_ks: Sequence[int] = (5, 10)):
        self.ks = tuple(int(k) for k in ks)
        self.ndcg_ks = tuple(int(k) for k in ndcg_ks)
        if any(k < 1 for k in self.ks + self.ndcg_ks):
            raise ValueError(f"cut-offs must be >= 1, got ks={ks}, ndcg_ks={ndcg_ks}")
        self.reset()

    def reset(self) -> None:
        self.count = 0
        self._hits = {k: 0 for k in self.ks}  # integers: HR is exact
        self._ndcg = {k: 0.0 for k in self.ndcg_ks}
        self._reciprocal = 0.0

    def update(self, ranks) -> "RankingAccumulator":
        """Add a batch of ranks (int array or tensor, from ranks_from_scores)."""
        ranks = _as_ranks(ranks)
        if ranks.size == 0:
            return self
        gains = 1.0 / np.log2(ranks + 1.0)
        for k in self.ks:
            self._hits[k] += int(np.count_nonzero(ranks <= k))
        for k in self.ndcg_ks:
            self._ndcg[k] += float(np.sum(gains[ranks <= k]))
        self._reciprocal += float(np.sum(1.0 / ranks))
        self.count += int(ranks.size)
        return self

    def result(self) -> Dict[str, float]:
        """{"HR@k": ..., "NDCG@k": ..., "MRR": ...}, means over the instances seen."""
        if self.count == 0:
            raise ValueError("no ranks to average: update() was never given any")
        n = self.count
        out = {f"HR@{k}": self._hits[k] / n for k in self.ks}
        out.update({f"NDCG@{k}": self._ndcg[k] / n for k in self.ndcg_ks})
        out["MRR"] = self._reciprocal / n
        return out


def ranking_metrics(ranks, ks: Sequence[int] = (1, 5, 10),
                    ndcg_ks: Sequence[int] = (5, 10)) -> Dict[str, float]:
    """HR@k = mean(rank <= k), NDCG@k = mean(1/log2(rank+1) if rank <= k else 0),
    MRR = mean(1/rank), as Python floats (PROTOCOLS.md A.7). One batch of the
    streaming form, so that both give the same numbers by construction."""
    return RankingAccumulator(ks, ndcg_ks).update(ranks).result()


# ------------------------------------------------------------------------- CTR (B.5)


def _as_labels_and_probabilities(labels, probabilities, *, scores_only: bool = False):
    """Flat labels in {0, 1} (int8) and flat probabilities, checked: silent garbage here
    (logits instead of probabilities, misaligned arrays) would go unnoticed in a table."""
    y = np.asarray(labels).reshape(-1)
    p = np.asarray(probabilities).reshape(-1)
    if y.size != p.size:
        raise ValueError(f"{y.size} labels but {p.size} probabilities")
    if y.dtype != np.bool_:
        if y.dtype.kind not in "iuf" or not np.all((y == 0) | (y == 1)):
            raise ValueError("labels must be 0 or 1")
    if p.dtype.kind not in "iuf":
        raise ValueError(f"probabilities must be numbers, got {p.dtype}")
    if not np.all(np.isfinite(p)):
        raise ValueError("probabilities contain NaN or infinity")
    if not scores_only and p.size and (p.min() < 0 or p.max() > 1):
        raise ValueError(f"probabilities must lie in [0, 1] (logits given?), got "
                         f"[{p.min()}, {p.max()}]")
    return y.astype(np.int8), p


def auc(labels, probabilities) -> float:
    """Exact ROC AUC, ties counted 1/2 (Mann-Whitney U with midranks, PROTOCOLS.md B.5).

    Exact rather than bucketed (tf.keras.metrics.AUC interpolates over thresholds), so
    that it matches other libraries. One sort, O(n log n). Only the order of the scores
    matters, so any real scores may be given. nan, with an UndefinedMetricWarning, when
    only one class is present.
    """
    y, p = _as_labels_and_probabilities(labels, probabilities, scores_only=True)
    if y.size == 0:
        raise ValueError("auc of no examples")
    n_pos = int(np.count_nonzero(y))
    n_neg = y.size - n_pos
    if n_pos == 0 or n_neg == 0:
        warnings.warn(f"AUC is undefined with only one class ({n_pos} positives, {n_neg} "
                      "negatives); returning nan", UndefinedMetricWarning, stacklevel=2)
        return float("nan")
    # Group equal scores (the one sort); per group, positives and negatives.
    _, group = np.unique(p, return_inverse=True)
    group = group.reshape(-1)
    num_groups = int(group.max()) + 1
    pos = np.bincount(group[y == 1], minlength=num_groups).astype(np.int64)
    neg = np.bincount(group[y == 0], minlength=num_groups).astype(np.int64)
    neg_below = np.cumsum(neg) - neg
    # Each positive beats the negatives of lower groups and ties half of its own group's.
    twice_u = 2 * int(np.dot(pos, neg_below)) + int(np.dot(pos, neg))
    return twice_u / (2 * n_pos * n_neg)


def logloss(labels, probabilities) -> float:
    """Mean binary cross-entropy, probabilities clipped to [1e-7, 1 - 1e-7] (B.5), in
    float64 so that float32 inputs give the same value as float64 ones."""
    y, p = _as_labels_and_probabilities(labels, probabilities)
    if y.size == 0:
        raise ValueError("logloss of no examples")
    p = p.astype(np.float64)
    # The probability given to the true class, clipped: the same as clipping p, but a
    # confident miss costs exactly -log(1e-7) whichever class it is.
    q = np.clip(np.where(y == 1, p, 1.0 - p), LOGLOSS_EPSILON, 1.0 - LOGLOSS_EPSILON)
    return float(np.mean(-np.log(q)))


def ctr_metrics(labels, probabilities) -> Dict[str, float]:
    """{"auc": ..., "logloss": ...} of one scored period (PROTOCOLS.md B.5)."""
    return {"auc": auc(labels, probabilities), "logloss": logloss(labels, probabilities)}


class CtrAccumulator:
    """Streaming `ctr_metrics`: update per batch, result at the end. It keeps the labels
    and probabilities (compactly), because exact AUC needs all of them at once."""

    def __init__(self):
        self.reset()

    def reset(self) -> None:
        self._labels: list = []
        self._probabilities: list = []
        self.count = 0

    def update(self, labels, probabilities) -> "CtrAccumulator":
        """Add a batch; checked now, so that an error points at the bad batch."""
        y, p = _as_labels_and_probabilities(labels, probabilities)
        self._labels.append(y.copy())
        self._probabilities.append(p.copy())  # a copy: callers may reuse their buffers
        self.count += int(y.size)
        return self

    def result(self) -> Dict[str, float]:
        if self.count == 0:
            raise ValueError("no examples: update() was never given any")
        return ctr_metrics(np.concatenate(self._labels),
                           np.concatenate(self._probabilities))


# -------------------------------------------------------------------------- reporting


def relative_change(value: float, reference: float) -> float:
    """(value - reference) / reference: the "relative change against IU" of the papers'
    tables (e.g. +0.012 = 1.2% above incremental update). Note that for LogLoss a
    negative change is the improvement."""
    value, reference = float(value), float(reference)
    if reference == 0.0:
        raise ZeroDivisionError("relative change against a reference of 0 is undefined")
    return (value - reference) / reference
