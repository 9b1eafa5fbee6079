"""Tests of seeded negative sampling (tfmeta.data.negatives), PROTOCOLS.md A.6 and B.2."""
import collections
import json
import os
import random
import subprocess
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tfmeta.data.negatives import sample_many, sample_one, user_rng

POOL = [f"item{i}" for i in range(1000)]


def _draws(seed, purpose, user, n=20):
    rng = user_rng(seed, purpose, user)
    return sample_many(rng, POOL, len(POOL), n, set()), [
        sample_one(rng, POOL, len(POOL), set()) for _ in range(n)]


class SpyRandom(random.Random):
    """A Random that records which of its methods the sampler called."""

    def __init__(self, seed):
        super().__init__(seed)
        self.calls = collections.Counter()

    def choice(self, seq):
        self.calls["choice"] += 1
        return super().choice(seq)

    def sample(self, population, k, **kwargs):
        self.calls["sample"] += 1
        return super().sample(population, k, **kwargs)


def _chi_square(counts: dict, keys, expected: float) -> float:
    return sum((counts.get(k, 0) - expected) ** 2 / expected for k in keys)


# ---------------------------------------------------------------- determinism

def test_same_seed_purpose_and_user_give_the_same_draws():
    assert _draws(7, "test", "u1") == _draws(7, "test", "u1")
    assert user_rng(7, "test", "u1").random() == user_rng(7, "test", "u1").random()


@pytest.mark.parametrize("other", [(8, "test", "u1"), (7, "val", "u1"), (7, "test", "u2"),
                                   (7, "test", "u10"), (7, "test", "U1"), (17, "test", "u1")])
def test_different_seed_purpose_or_user_give_different_draws(other):
    mine = _draws(7, "test", "u1")
    theirs = _draws(*other)
    assert mine[0] != theirs[0] and mine[1] != theirs[1]


def test_draws_do_not_depend_on_the_process_or_its_hash_seed():
    """Workers are separate processes with their own str hash seed."""
    script = ("import json, sys\n"
              "sys.path.insert(0, sys.argv[1])\n"
              "from tfmeta.data import negatives as n\n"
              "pool = [f'item{i}' for i in range(1000)]\n"
              "rng = n.user_rng(7, 'test', 'u1')\n"
              "print(json.dumps([n.sample_many(rng, pool, 1000, 20, set()),\n"
              "                  [n.sample_one(rng, pool, 1000, set()) for _ in range(20)]]))\n")
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    expected = [list(part) for part in _draws(7, "test", "u1")]
    for hash_seed in ("0", "4242"):
        env = dict(os.environ, PYTHONHASHSEED=hash_seed)
        out = subprocess.run([sys.executable, "-c", script, root], env=env, check=True,
                             capture_output=True, text=True, timeout=60).stdout
        assert json.loads(out) == expected


# ------------------------------------------------------------------ sample_one

def test_sample_one_returns_none_when_nothing_is_allowed():
    rng = random.Random(1)
    assert sample_one(rng, POOL[:5], 5, set(POOL[:5])) is None
    assert sample_one(rng, POOL, 0, set()) is None
    assert sample_one(rng, [], 0, set()) is None
    # Only items beyond pool_size are allowed: still nothing to draw.
    assert sample_one(rng, POOL[:10], 5, set(POOL[:5])) is None


def test_sample_one_finds_the_single_allowed_item_through_the_fallback():
    pool = [f"i{k}" for k in range(100_000)]
    exclude = set(pool) - {"i31337"}
    rng = SpyRandom(3)
    assert sample_one(rng, pool, len(pool), exclude) == "i31337"
    assert rng.calls["choice"] == 1  # the rejection loop gave up; the fallback found it


@settings(max_examples=200, deadline=None)
@given(data=st.data())
def test_sample_one_draws_only_allowed_items_from_the_pool_prefix(data):
    pool = data.draw(st.lists(st.integers(0, 999), unique=True, max_size=60), label="pool")
    pool = [f"i{k}" for k in pool]
    pool_size = data.draw(st.integers(0, len(pool)), label="pool_size")
    exclude = data.draw(st.sets(st.sampled_from(pool)) if pool else st.just(set()),
                        label="exclude")
    rng = random.Random(data.draw(st.integers(0, 2**32), label="seed"))
    allowed = [p for p in pool[:pool_size] if p not in exclude]
    for _ in range(5):
        item = sample_one(rng, pool, pool_size, exclude)
        assert (item in allowed) if allowed else (item is None)


def test_sample_one_is_uniform_over_the_allowed_items():
    pool = [f"i{k}" for k in range(12)]
    exclude = {"i3", "i7", "not-in-pool"}
    allowed = [p for p in pool[:10] if p not in exclude]  # 8 items; i10, i11 out of range
    rng = random.Random(20240601)
    draws = 16000
    counts = collections.Counter(sample_one(rng, pool, 10, exclude) for _ in range(draws))
    assert set(counts) == set(allowed)
    # 7 degrees of freedom: P(chi2 > 40) is about 1e-6.
    assert _chi_square(counts, allowed, draws / len(allowed)) < 40


def test_sample_one_is_uniform_when_the_fallback_is_used():
    pool = [f"i{k}" for k in range(200)]
    allowed = ["i0", "i57", "i123", "i199"]
    exclude = set(pool) - set(allowed)
    rng = SpyRandom(77)
    draws = 8000
    counts = collections.Counter(sample_one(rng, pool, 200, exclude) for _ in range(draws))
    assert 0 < rng.calls["choice"] < draws  # both paths were taken
    assert set(counts) == set(allowed)
    assert _chi_square(counts, allowed, draws / len(allowed)) < 30  # 3 d.o.f.


# ----------------------------------------------------------------- sample_many

def _check_many(result, pool, pool_size, count, exclude):
    allowed = [p for p in pool[:pool_size] if p not in exclude]
    assert len(result) == len(set(result)), "duplicates"
    assert not set(result) & set(exclude), "excluded item drawn"
    assert set(result) <= set(pool[:pool_size]), "item outside pool[:pool_size]"
    if count <= len(allowed):
        assert len(result) == max(count, 0)
    else:
        assert sorted(result) == sorted(allowed)


@settings(max_examples=200, deadline=None)
@given(data=st.data())
def test_sample_many_properties(data):
    pool = data.draw(st.lists(st.integers(0, 10**6), unique=True, max_size=300), label="pool")
    pool = [f"i{k}" for k in pool]
    pool_size = data.draw(st.integers(0, len(pool)), label="pool_size")
    if pool and data.draw(st.booleans(), label="mostly excluded"):
        keep = data.draw(st.sets(st.sampled_from(pool), max_size=8), label="allowed")
        exclude = set(pool) - keep  # forces the enumerate-the-rest fallback
    else:
        exclude = data.draw(st.sets(st.sampled_from(pool)) if pool else st.just(set()),
                            label="exclude")
    exclude |= {"not-in-pool"}
    count = data.draw(st.integers(0, len(pool) + 5), label="count")
    rng = random.Random(data.draw(st.integers(0, 2**32), label="seed"))
    _check_many(sample_many(rng, pool, pool_size, count, exclude),
                pool, pool_size, count, exclude)


@pytest.mark.parametrize("pool_size, count, n_allowed", [
    (1000, 99, 1000), (1000, 99, 99), (1000, 99, 100), (1000, 99, 150), (1000, 99, 40),
    (200, 10, 3), (5000, 99, 120), (100, 0, 100), (0, 5, 0), (50, 60, 50),
])
def test_sample_many_counts_and_fallback(pool_size, count, n_allowed):
    rng = SpyRandom(pool_size * 31 + count)
    pool = POOL + [f"extra{k}" for k in range(max(0, pool_size - len(POOL)) + 10)]
    prefix = pool[:pool_size]
    allowed = set(random.Random(5).sample(prefix, n_allowed))
    exclude = set(prefix) - allowed
    result = sample_many(rng, pool, pool_size, count, exclude)
    _check_many(result, pool, pool_size, count, exclude)
    if n_allowed < count or n_allowed <= pool_size / 40:
        # Too few allowed for rejection sampling to finish: the fallback filled the list.
        assert rng.calls["sample"] == 1


def test_sample_many_is_deterministic_given_the_rng():
    exclude = set(POOL[::3])
    first = sample_many(user_rng(1, "test", "u"), POOL, 900, 99, exclude)
    again = sample_many(user_rng(1, "test", "u"), POOL, 900, 99, exclude)
    assert first == again and len(first) == 99


@pytest.mark.parametrize("pool_size, n_allowed, count", [(20, 15, 5), (300, 10, 6)])
def test_sample_many_includes_every_allowed_item_equally_often(pool_size, n_allowed, count):
    pool = [f"i{k}" for k in range(pool_size)]
    allowed = random.Random(11).sample(pool, n_allowed)
    exclude = set(pool) - set(allowed)
    rng = random.Random(pool_size)
    trials = 3000
    counts = collections.Counter()
    for _ in range(trials):
        counts.update(sample_many(rng, pool, pool_size, count, exclude))
    assert set(counts) == set(allowed)
    expected = trials * count / n_allowed
    # Inclusion counts are less spread than multinomial ones, so the chi-square
    # critical value (about 37 for 14 d.o.f. at p=1e-3) is a loose bound.
    assert _chi_square(counts, allowed, expected) < 40


if __name__ == "__main__":  # Bazel's py_test runs the file as a script
    raise SystemExit(pytest.main([__file__]))
