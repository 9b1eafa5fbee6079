"""LeapRec (Chairatanakul et al., AAAI 2022): a recommender trained with trajectory
meta-gradients over time steps, as a Global Time Leap plus an Ordered Time Leap.

Two copies of any protocol A model (`tfmeta.models.ranking.RankingModel`) score
together, score = GTL(u, i) + OTL(u, i); their embedding sizes are separate (0 turns
one off). Tasks are the training time steps, walked in time order by every iteration:

- GTL (long-term patterns): its parameters are reset to its meta-parameters at every
  time step, so the meta-parameters learn a starting point good for all steps.
- OTL (short-term patterns): its parameters start from its meta-parameters at the
  first time step and are carried from each time step to the next.

At each time step both take K inner Adam steps on minibatches of that step's
interactions (BPR loss of the summed scores, uniformly sampled negatives), and the
meta-gradient (`tfmeta.meta.leap`: Leap, or first-order MAML) of each set is
accumulated from its trajectory. At the end of an iteration both sets of
meta-parameters take one meta-optimizer (Adam) step on the averaged meta-gradients.
The deployed model is the latest (GTL, OTL) parameters, i.e. those after the last
time step of the last iteration.

Choices the paper leaves open, made explicit here:

- L(theta(k + 1)) in Leap's increment is the loss of the *next* inner step's
  minibatch (the trajectory as observed, one forward/backward per step; the last
  step of a time step costs one extra minibatch).
- Inner optimizers are Adam. GTL's Adam state is reset with its parameters at every
  time step; OTL's is reset at the start of every iteration and carried otherwise.
- A time step with fewer interactions than the batch size takes all of them as each
  inner step's minibatch (with fresh negatives): the same expected loss as a full
  minibatch drawn with replacement, at a fraction of its cost (Amazon Beauty has 97
  monthly steps under 1,024 interactions: its median one is 3.9x cheaper, an iteration
  1.9x; benchmarks/results/small_steps.md).
- Graph models see, at time step t, the interactions of time steps <= t (the graph
  grows with time; the deployed model uses all training interactions).

Distributed (`tfmeta.distribute`): create the models and the LeapRec object under a
strategy's scope. Each inner step's minibatch is split across the replicas and its loss
and gradient are summed over them before anything is updated, so the inner steps,
L(theta(k)), grad L(theta(k)) and thus the accumulated trajectories are the global
ones, identical on every replica; the meta update is then the same everywhere.
Negatives are drawn for the global batch (`Negatives.attach`) before it is split.
"""
from __future__ import annotations

from typing import Optional, Sequence

import numpy as np
import tensorflow as tf

from tfmeta import distribute
from tfmeta.meta import leap
from tfmeta.models.ranking import bpr_losses


class Scorer:
    """Sum of the scores of one or more models sharing the row contract."""

    def __init__(self, models: Sequence[tf.keras.Model]):
        if not models:
            raise ValueError("a scorer needs at least one model (GTL or OTL dimension > 0)")
        self.models = list(models)

    def __call__(self, users, history, items, training: bool = False) -> tf.Tensor:
        inputs = {"user": users, "history": history, "items": items}
        return tf.add_n([m(inputs, training=training) for m in self.models])

    def all_items(self, users, history) -> tf.Tensor:
        return tf.add_n([m.score_all_items(users, history) for m in self.models])

    def frozen(self) -> "Scorer":
        """The same scores with every model's node representations computed once now
        (inference: a graph model's propagation does not depend on the batch)."""
        return _FrozenScorer(self.models,
                             [m.node_representations(training=False) for m in self.models])

    def set_graph(self, users, items) -> None:
        for m in self.models:
            if getattr(m, "uses_graph", False):
                m.set_graph(users, items)

    @property
    def trainable_variables(self) -> list:
        return [v for m in self.models for v in m.trainable_variables]


class _FrozenScorer(Scorer):
    def __init__(self, models, nodes):
        super().__init__(models)
        self.nodes = nodes

    def __call__(self, users, history, items, training: bool = False) -> tf.Tensor:
        return tf.add_n([m.score(users, history, items, nodes=n)
                         for m, n in zip(self.models, self.nodes)])

    def all_items(self, users, history) -> tf.Tensor:
        return tf.add_n([m.score_all_items(users, history, nodes=n)
                         for m, n in zip(self.models, self.nodes)])


class Negatives:
    """Uniform negative item rows among the items a phase may use (seeded, resumable)."""

    def __init__(self, items: np.ndarray, seed: int):
        self.items = tf.constant(np.asarray(items, np.int64))
        self.generator = tf.random.Generator.from_seed(seed)

    def sample(self, n) -> tf.Tensor:
        index = self.generator.uniform([n], 0, tf.size(self.items, tf.int64), tf.int64)
        return tf.gather(self.items, index)

    def attach(self, batch: dict) -> dict:
        """The batch with a negative item row per example (key "negative")."""
        return dict(batch, negative=self.sample(tf.shape(batch["item"], tf.int64)[0]))


def bpr_example_losses(scorer: Scorer, batch: dict) -> tf.Tensor:
    """BPR loss per example of a batch with its negatives attached."""
    items = tf.stack([batch["item"], batch["negative"]], axis=1)
    return bpr_losses(scorer(batch["user"], batch["history"], items, training=True))


class LeapRec:
    """GTL + OTL over one model class; see the module docstring.

    Args:
        gtl, otl: the two models (either may be None when its size is 0).
        negatives: the negative sampler.
        meta: "leap" or "fomaml".
        learning_rate: inner Adam learning rate.
        meta_learning_rate: meta Adam learning rate.
    """

    def __init__(self, gtl: Optional[tf.keras.Model], otl: Optional[tf.keras.Model],
                 negatives: Negatives, meta: str = "leap", learning_rate: float = 1e-3,
                 meta_learning_rate: float = 1e-3):
        self.distribution = tf.distribute.get_strategy()  # the scope it is created in
        self.parts = {name: m for name, m in (("gtl", gtl), ("otl", otl)) if m is not None}
        self.scorer = Scorer(list(self.parts.values()))
        self.negatives = negatives
        self.theta = {n: list(m.trainable_variables) for n, m in self.parts.items()}
        self.phi = {n: [tf.Variable(v, trainable=False, name=f"{n}_meta_{i}")
                        for i, v in enumerate(vs)] for n, vs in self.theta.items()}
        self.meta = {n: leap.make(meta, self.phi[n],
                                  tf.keras.optimizers.Adam(meta_learning_rate))
                     for n in self.parts}
        self.inner = {n: tf.keras.optimizers.Adam(learning_rate) for n in self.parts}
        for n in self.parts:
            self.inner[n].build(self.theta[n])
        # The current step's loss and gradient (dense) and the parameters before a step.
        flat = self._flat_theta()
        self.grads = [tf.Variable(tf.zeros_like(v), trainable=False) for v in flat]
        self.before = [tf.Variable(tf.zeros_like(v), trainable=False) for v in flat]
        self.loss = tf.Variable(0.0, trainable=False)
        self._start = tf.function(self._start_task, reduce_retracing=True)
        self._step = tf.function(self._inner_step, reduce_retracing=True)

    def checkpoint_items(self) -> dict:
        items = {"negatives": self.negatives.generator}
        for n in self.parts:
            items[f"{n}_meta_parameters"] = self.phi[n]
            items[f"{n}_inner_optimizer"] = self.inner[n]
            for key, value in self.meta[n].checkpoint_items().items():
                items[f"{n}_{key}"] = value
        return items

    # -- one iteration over the time steps
    def begin_iteration(self) -> None:
        if "otl" in self.parts:
            self._reset_optimizer("otl")
            _copy(self.phi["otl"], self.theta["otl"])

    def time_step(self, batches: Sequence[dict]) -> float:
        """K inner steps on batches[0..K-1] (batches[K] gives the last step's L(k+1));
        returns the mean inner loss. Batches are global: the negatives are drawn here
        and each is split across the replicas."""
        batches = [distribute.distribute_batch(self.distribution, self.negatives.attach(b))
                   for b in batches]
        if "gtl" in self.parts:
            self._reset_optimizer("gtl")
            self.meta["gtl"].begin_task(self.theta["gtl"])  # theta <- phi
        if "otl" in self.parts:
            self.meta["otl"].begin_task()  # carried from the previous time step
        self._start(batches[0])
        losses = [float(self.loss.numpy())]
        for batch in batches[1:]:
            losses.append(float(self._step(batch)))
        return float(np.mean(losses[:-1]))

    def end_iteration(self) -> None:
        for n in self.parts:
            self.meta[n].apply()

    # -- internals
    def _flat_theta(self) -> list:
        return [v for n in self.parts for v in self.theta[n]]

    def _reset_optimizer(self, name: str) -> None:
        for v in self.inner[name].variables():
            v.assign(tf.zeros_like(v))

    def _loss_and_grads(self, batch):
        loss, grads = distribute.loss_and_gradients(
            self.distribution, lambda b: bpr_example_losses(self.scorer, b),
            self._flat_theta(), batch)
        return loss, [tf.convert_to_tensor(g) for g in grads]

    def _start_task(self, batch) -> None:
        loss, grads = self._loss_and_grads(batch)
        self.loss.assign(loss)
        _copy(grads, self.grads)

    def _inner_step(self, batch_next):
        _copy(self._flat_theta(), self.before)
        offset = 0
        for n in self.parts:
            size = len(self.theta[n])
            self.inner[n].apply_gradients(zip(self.grads[offset:offset + size],
                                              self.theta[n]))
            offset += size
        loss_next, grads_next = self._loss_and_grads(batch_next)
        offset = 0
        for n in self.parts:
            size = len(self.theta[n])
            part = slice(offset, offset + size)
            self.meta[n].observe_step(self.before[part], self.theta[n], self.loss, loss_next,
                                      self.grads[part], grads_next[part])
            offset += size
        self.loss.assign(loss_next)
        _copy(grads_next, self.grads)
        return loss_next


def _copy(source, target) -> None:
    for value, variable in zip(source, target, strict=True):
        variable.assign(value)
