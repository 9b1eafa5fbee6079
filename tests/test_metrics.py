"""Tests of the shared scoring (tfmeta.evaluation.metrics), PROTOCOLS.md A.7, A.8, B.5:
hand-computed cases, the tie rule, and AUC against a brute-force pairwise count."""
import math
import warnings

import numpy as np
import pytest
import tensorflow as tf
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from tfmeta.evaluation import metrics
from tfmeta.evaluation.metrics import (
    CtrAccumulator, RankingAccumulator, UndefinedMetricWarning, auc, ctr_metrics,
    full_ranking_ranks, logloss, ranking_metrics, ranks_from_scores, relative_change)

EPS = 1e-7


# ------------------------------------------------------------------ ranking (A.7, A.8)


def test_ranking_metrics_hand_computed():
    m = ranking_metrics([1, 3, 11])
    assert list(m) == ["HR@1", "HR@5", "HR@10", "NDCG@5", "NDCG@10", "MRR"]
    assert all(type(v) is float for v in m.values())
    assert m["HR@1"] == pytest.approx(1 / 3)
    assert m["HR@5"] == pytest.approx(2 / 3)
    assert m["HR@10"] == pytest.approx(2 / 3)
    assert m["NDCG@5"] == pytest.approx((1 + 1 / math.log2(4)) / 3)
    assert m["NDCG@10"] == pytest.approx((1 + 0.5) / 3)
    assert m["MRR"] == pytest.approx((1 + 1 / 3 + 1 / 11) / 3)


def test_ranking_metrics_cutoff_boundaries():
    # rank == k counts for HR@k and NDCG@k; rank == k + 1 does not.
    m = ranking_metrics(np.array([5, 6, 10, 11]), ks=(5, 10), ndcg_ks=(5, 10))
    assert m["HR@5"] == pytest.approx(1 / 4)
    assert m["HR@10"] == pytest.approx(3 / 4)
    assert m["NDCG@5"] == pytest.approx(1 / math.log2(6) / 4)
    assert m["NDCG@10"] == pytest.approx(
        (1 / math.log2(6) + 1 / math.log2(7) + 1 / math.log2(11)) / 4)
    assert set(m) == {"HR@5", "HR@10", "NDCG@5", "NDCG@10", "MRR"}


def test_ranking_metrics_rejects_non_ranks():
    with pytest.raises(ValueError):
        ranking_metrics([0, 1])
    with pytest.raises(ValueError):
        ranking_metrics([1.5])
    with pytest.raises(ValueError):
        ranking_metrics([])


def test_ranks_from_scores_hand_computed():
    pos = tf.constant([0.9, 0.5, 0.1])
    neg = tf.constant([[0.1, 0.2, 0.3],     # all below -> 1
                       [0.6, 0.5, 0.4],     # one above, one tie -> 3
                       [0.2, 0.3, 0.4]])    # all above -> 4
    ranks = ranks_from_scores(pos, neg)
    assert ranks.dtype == tf.int32
    np.testing.assert_array_equal(ranks.numpy(), [1, 3, 4])


def test_constant_scorer_ranks_last():
    n = 99
    ranks = ranks_from_scores(tf.fill([4], 0.25), tf.fill([4, n], 0.25))
    np.testing.assert_array_equal(ranks.numpy(), [n + 1] * 4)
    m = ranking_metrics(ranks)
    assert m["HR@10"] == 0.0 and m["MRR"] == pytest.approx(1 / 100)


def test_nan_scores_count_against_the_model():
    ranks = ranks_from_scores([float("nan"), 0.5], [[0.1, 0.2], [float("nan"), 0.1]])
    np.testing.assert_array_equal(ranks.numpy(), [3, 2])


def test_mask_ignores_invalid_negatives():
    pos = tf.constant([0.5, 0.5])
    neg = tf.constant([[0.9, 0.8, 0.1], [0.9, 0.8, 0.1]])
    mask = tf.constant([[True, False, True], [False, False, False]])
    np.testing.assert_array_equal(ranks_from_scores(pos, neg, mask).numpy(), [2, 1])
    np.testing.assert_array_equal(ranks_from_scores(pos, neg).numpy(), [3, 3])


def test_ranks_from_scores_rejects_mismatched_shapes():
    with pytest.raises((ValueError, tf.errors.InvalidArgumentError)):
        ranks_from_scores(tf.constant([0.5]), tf.constant([[0.1], [0.2]]))
    with pytest.raises((ValueError, tf.errors.InvalidArgumentError)):
        ranks_from_scores(tf.constant([[0.5]]), tf.constant([[0.1]]))


def test_ranks_from_scores_in_tf_function_matches_eager():
    rng = np.random.default_rng(0)
    pos = rng.integers(0, 5, size=32).astype(np.float32)       # many ties
    neg = rng.integers(0, 5, size=(32, 99)).astype(np.float32)
    mask = rng.random((32, 99)) < 0.8

    @tf.function(input_signature=[tf.TensorSpec([None], tf.float32),
                                  tf.TensorSpec([None, None], tf.float32),
                                  tf.TensorSpec([None, None], tf.bool)])
    def masked(p, n, m):
        return ranks_from_scores(p, n, m)

    @tf.function(input_signature=[tf.TensorSpec([None], tf.float32),
                                  tf.TensorSpec([None, None], tf.float32)])
    def unmasked(p, n):
        return ranks_from_scores(p, n)

    expected = 1 + np.sum((neg >= pos[:, None]) & mask, axis=1)
    np.testing.assert_array_equal(masked(pos, neg, mask).numpy(), expected)
    np.testing.assert_array_equal(masked(pos, neg, mask).numpy(),
                                  ranks_from_scores(pos, neg, mask).numpy())
    np.testing.assert_array_equal(unmasked(pos, neg).numpy(),
                                  ranks_from_scores(pos, neg).numpy())
    # Another batch size through the same traced graph.
    np.testing.assert_array_equal(masked(pos[:5], neg[:5], mask[:5]).numpy(), expected[:5])


def test_full_ranking_with_exclusions():
    scores = tf.constant([[0.9, 0.8, 0.7, 0.6, 0.5],
                          [0.5, 0.5, 0.5, 0.5, 0.5]])
    positive_index = tf.constant([3, 0])
    exclude = tf.constant([[True, False, False, False, False],   # seen before t
                           [False, False, True, False, True]])   # e.g. non-warm
    # Row 0: positive 0.6, counted {1: 0.8, 2: 0.7} (0 excluded, 4 below) -> 3.
    # Row 1: constant scores; counted {1, 3} (ties) -> 3: the positive is not its own tie.
    ranks = full_ranking_ranks(None, scores, positive_index, exclude)
    np.testing.assert_array_equal(ranks.numpy(), [3, 3])
    given_scores = full_ranking_ranks(tf.constant([0.6, 0.5]), scores, positive_index, exclude)
    np.testing.assert_array_equal(given_scores.numpy(), [3, 3])
    # Excluding the positive's own column changes nothing; with no exclusions, plain ranks.
    np.testing.assert_array_equal(
        full_ranking_ranks(None, scores, positive_index,
                           tf.one_hot(positive_index, 5, on_value=True, off_value=False)).numpy(),
        [4, 5])


def test_full_ranking_rejects_out_of_range_positive():
    with pytest.raises(tf.errors.InvalidArgumentError):
        full_ranking_ranks(None, tf.zeros([1, 3]), tf.constant([3]), tf.zeros([1, 3], tf.bool))


def test_ranking_accumulator_equals_one_shot():
    rng = np.random.default_rng(1)
    ranks = rng.integers(1, 101, size=1000)
    acc = RankingAccumulator()
    for batch in np.array_split(ranks, 7):
        acc.update(tf.constant(batch, tf.int32))
    assert acc.count == 1000
    one_shot = ranking_metrics(ranks)
    streamed = acc.result()
    assert list(streamed) == list(one_shot)
    for key in one_shot:
        assert streamed[key] == pytest.approx(one_shot[key], rel=1e-12)
    assert streamed["HR@10"] == one_shot["HR@10"] == np.mean(ranks <= 10)
    with pytest.raises(ValueError):
        RankingAccumulator().result()


# ------------------------------------------------------------------------- CTR (B.5)


def _brute_force_auc(labels, scores) -> float:
    labels, scores = np.asarray(labels), np.asarray(scores, dtype=np.float64)
    pos, neg = scores[labels == 1], scores[labels == 0]
    wins = 0.0
    for p in pos:
        for n in neg:
            wins += 1.0 if p > n else 0.5 if p == n else 0.0
    return wins / (len(pos) * len(neg))


@settings(deadline=None, max_examples=100)
@given(st.lists(st.tuples(st.integers(0, 1), st.integers(0, 5)), min_size=2, max_size=80))
def test_auc_matches_brute_force_pairwise_count(examples):
    labels = [y for y, _ in examples]
    assume(0 < sum(labels) < len(labels))
    scores = np.array([s for _, s in examples], dtype=np.float32) / 5  # many ties
    assert auc(labels, scores) == pytest.approx(_brute_force_auc(labels, scores), abs=1e-12)


def test_auc_matches_brute_force_on_larger_random_data():
    rng = np.random.default_rng(2)
    labels = rng.integers(0, 2, size=3000)
    scores = np.round(rng.random(3000) * 0.5 + 0.3 * labels, 2)  # ties and signal
    pos, neg = scores[labels == 1], scores[labels == 0]
    diff = pos[:, None] - neg[None, :]
    expected = (np.sum(diff > 0) + 0.5 * np.sum(diff == 0)) / diff.size
    assert auc(labels, scores) == pytest.approx(expected, abs=1e-12)


def test_auc_matches_sklearn_if_installed():
    sklearn_metrics = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(3)
    labels = rng.integers(0, 2, size=500)
    scores = np.round(rng.random(500), 1)
    assert auc(labels, scores) == pytest.approx(sklearn_metrics.roc_auc_score(labels, scores))


def test_auc_of_perfect_reversed_and_constant_scorers():
    labels = np.array([0, 0, 1, 1, 0, 1])
    assert auc(labels, labels * 0.8 + 0.1) == 1.0
    assert auc(labels, 1 - labels) == 0.0
    assert auc(labels, np.full(6, 0.3)) == 0.5
    assert auc([True, False, True], [0.9, 0.1, 0.4]) == 1.0


def test_auc_with_one_class_is_nan_with_a_warning():
    with pytest.warns(UndefinedMetricWarning, match="one class"):
        assert math.isnan(auc([1, 1, 1], [0.1, 0.5, 0.9]))
    with pytest.warns(UndefinedMetricWarning):
        result = ctr_metrics([0, 0], [0.1, 0.2])
    assert math.isnan(result["auc"])
    assert result["logloss"] == pytest.approx(-(math.log(0.9) + math.log(0.8)) / 2)


def test_ctr_inputs_are_checked():
    with pytest.raises(ValueError):
        auc([0, 1, 2], [0.1, 0.2, 0.3])
    with pytest.raises(ValueError):
        auc([0, 1], [0.1, 0.2, 0.3])
    with pytest.raises(ValueError):
        auc([0, 1], [0.1, float("nan")])
    with pytest.raises(ValueError, match="logits"):
        logloss([0, 1], [-2.0, 3.0])
    assert auc([0, 1], [-2.0, 3.0]) == 1.0  # AUC only needs an order


def test_logloss_hand_computed():
    assert logloss([1, 0], [0.8, 0.25]) == pytest.approx(-(math.log(0.8) + math.log(0.75)) / 2)


def test_logloss_clips_exact_zero_and_one():
    value = logloss([1, 0, 1, 0], np.array([0.0, 1.0, 1.0, 0.0], dtype=np.float32))
    expected = (2 * -math.log(EPS) + 2 * -math.log(1 - EPS)) / 4
    assert math.isfinite(value)
    assert value == pytest.approx(expected, rel=1e-12)
    assert metrics.LOGLOSS_EPSILON == EPS


def test_ctr_accumulator_equals_one_shot():
    rng = np.random.default_rng(4)
    labels = rng.integers(0, 2, size=2000)
    probs = np.round(rng.random(2000), 2).astype(np.float32)
    acc = CtrAccumulator()
    buffer = np.empty(300, np.float32)
    for start in range(0, 2000, 300):  # uneven last batch; the caller reuses a buffer
        batch = probs[start:start + 300]
        buffer[:len(batch)] = batch
        acc.update(tf.constant(labels[start:start + 300]), buffer[:len(batch)])
    buffer[:] = 0.5
    assert acc.count == 2000
    one_shot = ctr_metrics(labels, probs)
    assert set(one_shot) == {"auc", "logloss"}
    streamed = acc.result()
    assert streamed["auc"] == one_shot["auc"]
    assert streamed["logloss"] == pytest.approx(one_shot["logloss"], rel=1e-12)
    with pytest.raises(ValueError):
        CtrAccumulator().result()


# -------------------------------------------------------------------------- reporting


def test_relative_change():
    assert relative_change(0.75, 0.5) == pytest.approx(0.5)
    assert relative_change(0.45, 0.5) == pytest.approx(-0.1)
    assert relative_change(np.float32(0.5), 0.5) == 0.0
    with pytest.raises(ZeroDivisionError):
        relative_change(1.0, 0.0)


def test_no_warnings_on_ordinary_inputs():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ranking_metrics([1, 2])
        ctr_metrics([0, 1], [0.2, 0.7])


if __name__ == "__main__":
    raise SystemExit(pytest.main([__file__]))
