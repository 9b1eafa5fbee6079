"""SPMF (Wang, Yin, Huang, Sun, Chen, Zhou, "Streaming Ranking Based Recommender
Systems", SIGIR 2018): incremental update with a replay memory of past examples, in the
"sample-based" form that the ASMG paper (Peng et al., RecSys 2021) runs as a baseline.

A reservoir holds a uniform sample of every labelled example seen so far (pre-training
periods included). At period i the current model (theta_{i-1}) scores the reservoir,
the examples it gets most wrong are taken out as a replay set, the model is fine-tuned
on period i's examples and the replay set shuffled together, and then period i's
examples are offered to the reservoir.

Choices tfmeta makes where the paper leaves room:

- Reservoir: fixed `capacity` (10,000 examples by default), filled by Vitter's
  Algorithm R over the stream of examples in period order and, within a period, in
  file order: example t of the stream (0-based) goes to slot t while t < capacity,
  afterwards it replaces slot j ~ U{0..t} when j < capacity. The random draws come
  from numpy's PCG64 seeded with (seed, number of examples seen before the period),
  so the reservoir depends only on the seed and the data, not on how many times the
  process was restarted. Entries are the serialized tf.train.Example records of the
  period files (a tf.string Variable of shape [capacity], '' = empty, plus the
  `size` and `seen` counters), which is what checkpoints carry.
- Which examples are replayed: the paper samples from the reservoir with
  probabilities increasing with how badly the model ranks each example; tfmeta takes
  the deterministic top: the examples with the highest binary cross-entropy under
  theta_{i-1} (lowest predicted probability for positives, highest for negatives),
  ties broken by reservoir slot. Positives and negatives (sampled or not) are scored
  alike; everything in the reservoir is a labelled CTR example.
- How many: `ceil(replay_ratio * n_i)` for a period of n_i examples
  (`replay_ratio` = 0.5), capped by the reservoir's size. The replayed examples stay
  in the reservoir (sampling with replacement across periods).
- Training: the period and its replay set form one dataset, shuffled with the seed
  the driver uses for period i (seed * 1000 + i), batched like the driver's, for
  `epochs` passes with the base optimizer (carried across periods, as in IU). The
  loss is the plain BCE: replayed examples weigh as much as new ones.
- Order: replay selection uses the model before the update; period i enters the
  reservoir after the update, so it is never replayed in its own period.

Records are parsed by `tfmeta.data.periods.read_records` (the same feature spec and
dense-history handling as the driver's batches) from a temporary TFRecord file.
"""
from __future__ import annotations

import math
import os
import tempfile
import time
from typing import Optional, Sequence

import numpy as np
import tensorflow as tf

from tfmeta.data.periods import read_records
from tfmeta.meta.incremental import UpdateStrategy


class SPMF(UpdateStrategy):
    """Incremental update plus replay of the hardest examples of a reservoir."""

    name = "spmf"

    def __init__(self, model, capacity: int = 10_000, replay_ratio: float = 0.5,
                 seed: int = 0, **kwargs):
        super().__init__(model, **kwargs)
        if capacity < 1 or replay_ratio < 0:
            raise ValueError("capacity must be positive and replay_ratio non-negative")
        self.capacity, self.replay_ratio, self.seed = int(capacity), float(replay_ratio), seed
        self.records = tf.Variable(tf.fill([self.capacity], ""), trainable=False,
                                   name="reservoir_records")
        self.size = tf.Variable(0, dtype=tf.int64, trainable=False, name="reservoir_size")
        self.seen = tf.Variable(0, dtype=tf.int64, trainable=False, name="reservoir_seen")
        self._example_losses = tf.function(self._per_example_loss, reduce_retracing=True)
        self.meta_seconds = 0.0
        self.replayed = 0  # examples replayed by the last update

    # -- the period step
    def pretrain(self, source, periods: Sequence[int], epochs: int = 1) -> float:
        loss = super().pretrain(source, periods, epochs)
        for p in periods:  # the pre-training periods open the stream
            self.remember(self.read_period(source, p))
        return loss

    def update(self, source, i: int) -> float:
        records = self.read_period(source, i)
        tick = time.perf_counter()
        wanted = min(math.ceil(self.replay_ratio * len(records)), int(self.size.numpy()))
        replay = self.hardest(source, wanted)
        self.meta_seconds = time.perf_counter() - tick  # scoring the reservoir
        self.replayed = len(replay)
        mixed = np.concatenate([records, replay])
        with tempfile.TemporaryDirectory() as tmp:
            dataset = self._dataset(source, mixed, tmp, shuffle=True,
                                    seed=getattr(source, "seed", 0) * 1000 + i)
            loss = self.fit(dataset)
        self.remember(records)
        return loss

    def checkpoint_items(self) -> dict:
        items = super().checkpoint_items()
        items.update(reservoir_records=self.records, reservoir_size=self.size,
                     reservoir_seen=self.seen)
        return items

    # -- the reservoir
    def reservoir(self) -> np.ndarray:
        """The stored records (serialized tf.train.Examples), slot order."""
        return self.records.numpy()[:int(self.size.numpy())]

    def remember(self, records: np.ndarray) -> None:
        """Offers records (in stream order) to the reservoir (Algorithm R)."""
        records = np.asarray(records, dtype=object)
        if not len(records):
            return
        seen, n = int(self.seen.numpy()), len(records)
        t = seen + np.arange(n, dtype=np.int64)  # stream positions, 0-based
        draws = np.random.default_rng([self.seed, seen]).random(n)
        slots = np.where(t < self.capacity, t,
                         np.minimum(np.floor(draws * (t + 1)).astype(np.int64), t))
        keep = slots < self.capacity
        slots, records = slots[keep], records[keep]
        # Sequential semantics: the last record written to a slot is the one that stays.
        _, first_from_end = np.unique(slots[::-1], return_index=True)
        last = len(slots) - 1 - first_from_end
        store = self.records.numpy()
        store[slots[last]] = records[last]
        self.records.assign(tf.constant(store, dtype=tf.string))
        self.seen.assign(seen + n)
        self.size.assign(min(self.capacity, seen + n))

    def example_losses(self, source, records: Optional[np.ndarray] = None) -> np.ndarray:
        """Per-example BCE of the current model on records (default: the reservoir)."""
        records = self.reservoir() if records is None else records
        if not len(records):
            return np.zeros([0], np.float32)
        with tempfile.TemporaryDirectory() as tmp:
            losses = [self._example_losses(batch).numpy()
                      for batch in self._dataset(source, records, tmp, shuffle=False)]
        return np.concatenate(losses)

    def hardest(self, source, n: int) -> np.ndarray:
        """The n reservoir records with the highest loss, hardest first."""
        if n <= 0 or not int(self.size.numpy()):
            return np.asarray([], dtype=object)
        losses = self.example_losses(source)
        order = np.argsort(-losses, kind="stable")[:n]
        return self.reservoir()[order]

    # -- input
    @staticmethod
    def read_period(source, i: int) -> np.ndarray:
        """Period i's serialized examples, in file order."""
        records = tf.data.TFRecordDataset(source.data.files([i])).batch(4096)
        chunks = [b.numpy() for b in records]
        return np.concatenate(chunks).astype(object) if chunks else np.asarray([], object)

    def _dataset(self, source, records: np.ndarray, directory: str, shuffle: bool,
                 seed: Optional[int] = None) -> tf.data.Dataset:
        path = os.path.join(directory, f"records-{len(os.listdir(directory))}.tfrecord")
        with tf.io.TFRecordWriter(path) as writer:
            for record in records:
                writer.write(record)
        data = source.data
        return read_records([path], data.feature_spec("examples"), source.batch_size,
                            shuffle=shuffle, seed=seed,
                            history_len=data.manifest.get("history_len"))

    def _per_example_loss(self, batch):
        logits = tf.reshape(self.model(batch, training=False), [-1])
        labels = tf.cast(tf.reshape(batch["label"], [-1]), logits.dtype)
        return tf.nn.sigmoid_cross_entropy_with_logits(labels=labels, logits=logits)
