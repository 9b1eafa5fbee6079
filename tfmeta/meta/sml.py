"""SML (Zhang, Feng, He, Wei, Song, Ling, Zhang, "How to Retrain Recommender System? A
Sequential Meta-Learning Method", SIGIR 2020): a learned transfer from the previous
model and a model fitted on the new period to the next model.

At period i:

1. fit theta_hat_i on period i only, starting from theta_{i-1} (as IU does);
2. theta_i = T(theta_{i-1}, theta_hat_i), where T is the transfer module below; theta_i
   is both the served model (scored on period i+1) and the base model carried into
   period i+1.

T is trained so that its output does well on the *next* period. Period i+1 is the
one being scored, so tfmeta trains T one step behind: at period i, before step 2, on
the pair (theta_{i-2}, theta_hat_{i-1}) with the loss of T(theta_{i-2},
theta_hat_{i-1}) on period i, the newest data (one meta step per batch of period i,
`meta_epochs` passes). The first update (period 11) has no pair yet and applies T as
initialised.

The transfer module T (`Transfer`). For every variable of the model, the three
channels [w_prev, w_hat, w_hat * w_prev] of each coordinate (the paper's stacked
"picture" of the previous parameters, the fitted ones and their element-wise product)
go through a 1-D convolution of kernel width 1 over the flattened coordinates, i.e.
the same small network at every coordinate of that variable:

    h = tanh(x W1 + b1)                 x [N, 3], W1 [3, 8], b1 [8]       (conv 1)
    y = x . s + h W2 + b2               W2 [8, 1], b2 [1], s [3]          (conv 2 + skip)

One set of these weights per variable (shared by all its coordinates: T's size and
graph do not depend on the number of vocabulary rows); the kernel-1 convolutions are
implemented as matmuls over the channel axis, so a variable costs a fixed handful of
ops whatever its size.

Choices tfmeta makes where the paper leaves room:

- Architecture: the paper's CNN (two convolutions across the channel stack, then a
  fully connected read-out over a whole embedding vector) is reduced to the two
  per-coordinate convolutions above, hidden channels 8, tanh, plus a linear skip
  x . s from the three input channels.
- Initialisation close to "take theta_hat": s = [0, 1, 0], b2 = 0, W2 small
  (normal, stddev `readout_stddev` = 1e-3), W1 Glorot-uniform, b1 = 0. The initial
  output is within about 1e-3 * |x| of theta_hat per coordinate, and every weight of T
  gets a gradient from the first meta step (with W2 exactly 0, W1 and b1 would not).
- Coordinates that period i left alone (w_hat == w_prev exactly: rows of users and
  items absent from period i, reserved rows of ids not yet seen) are passed through
  unchanged instead of transformed, so ids the period says nothing about keep their
  parameters.
- theta_hat_i is fitted with the base optimizer, whose Adam state is carried from
  period to period as in IU; T has its own Adam (`meta_learning_rate`). No
  regularisation of T.
- Scale: T sees raw parameter values (no normalisation per variable).

Checkpointed state: T's weights, both optimizers, and the stored pair (theta_{i-1},
theta_hat_i) that the next period trains T on, as Variables, plus whether the pair
is filled yet; the carried model itself is the driver's `model`.
"""
from __future__ import annotations

import time
from typing import Sequence

import tensorflow as tf

from tfmeta import distribute
from tfmeta.meta.incremental import ProbedUpdateStrategy, copy_weights


class Transfer(tf.Module):
    """T(previous, fitted) -> new parameters, variable by variable (see the module)."""

    CHANNELS = 3

    def __init__(self, shapes: Sequence[Sequence[int]], hidden: int = 8,
                 readout_stddev: float = 1e-3, seed: int = 0, name: str = "sml_transfer"):
        super().__init__(name=name)
        self.shapes = [tuple(int(d) for d in s) for s in shapes]
        self.hidden = hidden
        c = self.CHANNELS
        self.conv1_kernels, self.conv1_biases = [], []
        self.conv2_kernels, self.conv2_biases, self.skips = [], [], []
        for k, _ in enumerate(self.shapes):
            glorot = tf.keras.initializers.GlorotUniform(seed=seed * 1000 + 2 * k)
            normal = tf.keras.initializers.RandomNormal(stddev=readout_stddev,
                                                        seed=seed * 1000 + 2 * k + 1)
            self.conv1_kernels.append(tf.Variable(glorot([c, hidden]),
                                                  name=f"conv1_kernel_{k}"))
            self.conv1_biases.append(tf.Variable(tf.zeros([hidden]), name=f"conv1_bias_{k}"))
            self.conv2_kernels.append(tf.Variable(normal([hidden, 1]),
                                                  name=f"conv2_kernel_{k}"))
            self.conv2_biases.append(tf.Variable(tf.zeros([1]), name=f"conv2_bias_{k}"))
            self.skips.append(tf.Variable([0.0, 1.0, 0.0], name=f"skip_{k}"))

    def transfer_one(self, k: int, previous, fitted) -> tf.Tensor:
        previous = tf.convert_to_tensor(previous)
        fitted = tf.convert_to_tensor(fitted)
        p, h = tf.reshape(previous, [-1]), tf.reshape(fitted, [-1])
        x = tf.stack([p, h, h * p], axis=1)                                   # [N, 3]
        hidden = tf.tanh(tf.matmul(x, self.conv1_kernels[k]) + self.conv1_biases[k])
        y = (tf.linalg.matvec(x, self.skips[k])
             + tf.squeeze(tf.matmul(hidden, self.conv2_kernels[k]), -1) + self.conv2_biases[k])
        y = tf.where(tf.equal(p, h), h, y)  # coordinates the period left alone
        return tf.reshape(y, tf.shape(fitted))

    def __call__(self, previous: Sequence, fitted: Sequence) -> list:
        if not len(previous) == len(fitted) == len(self.shapes):
            raise ValueError(f"T has {len(self.shapes)} variables, got {len(previous)} "
                             f"previous and {len(fitted)} fitted tensors")
        return [self.transfer_one(k, p, h)
                for k, (p, h) in enumerate(zip(previous, fitted))]


class SML(ProbedUpdateStrategy):
    """IU-fitted theta_hat_i, then theta_i = T(theta_{i-1}, theta_hat_i) is served and
    carried forward; T is trained one period behind (see the module docstring)."""

    name = "sml"

    def __init__(self, model, hidden: int = 8, meta_learning_rate: float = 1e-3,
                 meta_epochs: int = 1, readout_stddev: float = 1e-3, seed: int = 0,
                 **kwargs):
        super().__init__(model, **kwargs)
        variables = model.trainable_variables
        self.meta_epochs = meta_epochs
        self.transfer = Transfer([v.shape for v in variables], hidden=hidden,
                                 readout_stddev=readout_stddev, seed=seed)
        self.meta_optimizer = tf.keras.optimizers.Adam(meta_learning_rate)
        self.meta_optimizer.build(self.transfer.trainable_variables)
        self._meta_step = tf.function(self._transfer_step, reduce_retracing=True)
        self._apply = tf.function(self.transfer.__call__, reduce_retracing=True)
        self.make_probe()
        # The pair T trains on next period: (theta_{i-1}, theta_hat_i) after period i.
        self.previous = [tf.Variable(tf.zeros_like(v), trainable=False) for v in variables]
        self.fitted = [tf.Variable(tf.zeros_like(v), trainable=False) for v in variables]
        self.has_pair = tf.Variable(False, trainable=False)
        self.meta_seconds = 0.0
        self.meta_loss = float("nan")

    # -- the period step
    def update(self, source, i: int) -> float:
        tick = time.perf_counter()
        if bool(self.has_pair):
            self.meta_loss = self.train_transfer(source.periods([i]))
        self.meta_seconds = time.perf_counter() - tick
        variables = self.model.trainable_variables
        copy_weights(variables, self.previous)                # theta_{i-1}
        loss = self.fit(source.periods(self.training_periods(i)))  # theta_hat_i
        copy_weights(variables, self.fitted)
        copy_weights(self._apply(list(self.previous), list(self.fitted)), variables)
        self.has_pair.assign(True)
        return loss

    def checkpoint_items(self) -> dict:
        items = super().checkpoint_items()
        items.update(transfer=self.transfer, meta_optimizer=self.meta_optimizer,
                     previous=self.previous, fitted=self.fitted, has_pair=self.has_pair)
        return items

    # -- T's training
    def train_transfer(self, dataset: tf.data.Dataset) -> float:
        """Meta steps of T on the stored pair, one per batch; returns the mean loss."""
        self.probe.set_known(self.model.known_users.value(), self.model.known_items.value())
        total, batches = 0.0, 0
        for _ in range(self.meta_epochs):
            for batch in distribute.distribute_dataset(self.distribution, dataset):
                total += float(self._meta_step(batch))
                batches += 1
        return total / max(batches, 1)

    def transfer_gradients(self, batch) -> tuple:
        """(loss, gradients of T's weights) of T(stored pair) on a batch: the probe
        takes T's output, its ordinary gradient is carried into T by the chain rule."""
        variables = self.transfer.trainable_variables
        with tf.GradientTape() as tape:
            outputs = self.transfer(list(self.previous), list(self.fitted))
        copy_weights(outputs, self.probe.trainable_variables)
        loss, grads = distribute.loss_and_gradients(
            self.distribution, self.probe_losses, self.probe.trainable_variables, batch)
        gradients = tape.gradient(outputs, variables,
                                  output_gradients=[tf.convert_to_tensor(g) for g in grads])
        return loss, gradients

    def _transfer_step(self, batch):
        loss, gradients = self.transfer_gradients(batch)
        self.meta_optimizer.apply_gradients(zip(gradients, self.transfer.trainable_variables))
        return loss
