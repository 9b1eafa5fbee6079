"""Update strategies for incremental CTR (protocol B): how the base model moves from
period i-1 to period i, and which parameters it serves for period i+1.

A strategy works on any Keras model whose `call(features)` returns logits, through its
`trainable_variables` only. One override point per concern:

- `update(source, i)`: train the base model on period i, starting from model i-1;
- `serving_weights()`: the parameters served for the next period (default: the base
  model's own).

Under a `tf.distribute.Strategy` (`tfmeta.distribute`), create the model and the
strategy object inside `strategy.scope()`: each period's global batches are then split
across the replicas, and `loss` returns per-example losses so that the replicas' parts
add up to the global mean.

    iu       incremental update: fine-tune on the new period only
    bu-w     batch update: fine-tune on the last w periods
    incctr   IncCTR: incremental update plus knowledge distillation from model i-1
"""
from __future__ import annotations

from typing import Iterable, Optional, Protocol, Sequence

import tensorflow as tf

from tfmeta import distribute, optimizers
from tfmeta.models.embedding_mlp import bce_losses


class PeriodSource(Protocol):
    """Where strategies get their data: batches of one or several periods."""

    def periods(self, indices: Sequence[int], shuffle: bool = True) -> tf.data.Dataset:
        ...


def clone(model: tf.keras.Model) -> tf.keras.Model:
    """A second instance of a model with the same architecture and weights."""
    twin = model.__class__.from_config(model.get_config())
    copy_weights(model.trainable_variables, twin.trainable_variables)
    return twin


def copy_weights(source: Iterable, target: Iterable) -> None:
    for value, variable in zip(source, target, strict=True):
        variable.assign(value)


class UpdateStrategy:
    """Incremental update (`iu`): fine-tune the previous model on the new period."""

    name = "iu"

    def __init__(self, model: tf.keras.Model, learning_rate: float = 1e-3, epochs: int = 1,
                 optimizer: str = "adam"):
        self.model = model
        self.epochs = epochs
        self.distribution = tf.distribute.get_strategy()  # the scope it is created in
        self.optimizer = optimizers.make(optimizer, learning_rate)  # tfmeta.optimizers
        # Slots exist before a checkpoint is restored into them, and before tracing.
        self.optimizer.build(model.trainable_variables)
        self._train_step = tf.function(lambda batch: distribute.run(self.distribution, self._step,
                                                                    batch),
                                       reduce_retracing=True)

    # -- what a subclass changes
    def loss(self, batch: dict, logits: tf.Tensor) -> tf.Tensor:
        """Per-example losses [B] of a batch."""
        return bce_losses(logits, batch["label"])

    def training_periods(self, i: int) -> list[int]:
        return [i]

    def update(self, source: PeriodSource, i: int) -> float:
        """Trains the base model on period i (from model i-1); returns the mean loss."""
        return self.fit(source.periods(self.training_periods(i)))

    def serving_weights(self) -> list:
        return list(self.model.trainable_variables)

    def checkpoint_items(self) -> dict:
        """Trackable state beyond the model, saved with every period's checkpoint."""
        return {"optimizer": self.optimizer}

    # -- shared machinery
    def pretrain(self, source: PeriodSource, periods: Sequence[int], epochs: int = 1) -> float:
        return self.fit(source.periods(list(periods)), epochs)

    def fit(self, dataset: tf.data.Dataset, epochs: Optional[int] = None) -> float:
        total, batches = 0.0, 0
        for _ in range(epochs or self.epochs):
            for batch in distribute.distribute_dataset(self.distribution, dataset):
                total += float(self._train_step(batch))
                batches += 1
        return total / max(batches, 1)

    def _step(self, batch):
        with tf.GradientTape() as tape:
            logits = self.model(batch, training=True)
            loss = distribute.global_mean(self.loss(batch, logits))
        variables = self.model.trainable_variables
        self.optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))
        return loss


class ProbedUpdateStrategy(UpdateStrategy):
    """A strategy whose meta model is trained through a probe: a second instance of the
    model (`make_probe`) that generated parameters are loaded into, so that the base
    loss can be differentiated with respect to them (ASMG's generator, SML's transfer)."""

    def make_probe(self) -> None:
        # Called by the subclass after building its meta model: unseeded initializers
        # then draw in the order they always did.
        self.probe = clone(self.model)

    def probe_losses(self, batch: dict) -> tf.Tensor:
        """The base loss per example of the probe, whatever `loss` the subclass uses."""
        return UpdateStrategy.loss(self, batch, self.probe(batch, training=True))


class BatchUpdate(UpdateStrategy):
    """Batch update (`bu-w`): fine-tune the previous model on the last w periods."""

    def __init__(self, model, window: int = 3, **kwargs):
        super().__init__(model, **kwargs)
        self.window = window
        self.name = f"bu-{window}"

    def training_periods(self, i: int) -> list[int]:
        return list(range(max(1, i - self.window + 1), i + 1))


class IncCTR(UpdateStrategy):
    """IncCTR (Wang et al. 2020): incremental update plus knowledge distillation, the
    new model also matching model i-1's predicted probabilities with weight `lambda_`."""

    name = "incctr"

    def __init__(self, model, lambda_: float = 0.5, **kwargs):
        super().__init__(model, **kwargs)
        self.lambda_ = lambda_
        self.teacher = clone(model)

    def update(self, source, i):
        copy_weights(self.model.trainable_variables, self.teacher.trainable_variables)
        return super().update(source, i)

    def loss(self, batch, logits):
        soft = tf.sigmoid(self.teacher(batch, training=False))
        return bce_losses(logits, batch["label"]) + self.lambda_ * bce_losses(logits, soft)
