"""ASMG (Peng et al., RecSys 2021): a meta generator over the sequence of base models.

The base model is updated incrementally as in IU. After the update on period i, the
generator is trained so that what it generates from the most recent base models fits
period i, the newest data; then it generates the serving model for period i+1 from the
k most recent base models (theta_{i-k+1} .. theta_i).

Training sees truncated sequences: the window holds the k most recent snapshots and
`state` is the generator's hidden state *before* the window's first snapshot. When the
window slides, the state is advanced over the snapshot that leaves it, so the next
period continues from the state learned so far instead of restarting.

    asmg-gru-single  loss of the last output on the newest period only
    asmg-gru-multi   outputs at all k steps, each on its next period, linear-decay
                     weights (more weight on recent)
    asmg-gru-unif    as multi with equal weights
    asmg-gru-full    the whole sequence from a zero state (multi weights)
    asmg-gru-zero    as multi, restarting from a zero state every period
    asmg-linear      a learned convex combination of the last k models

The generated parameters reach the loss through a second instance of the model (the
probe): its variables take the generated values, the model's ordinary gradient at that
point is computed, and the chain rule carries it into the generator
(`tape.gradient(generated, generator_weights, output_gradients=...)`). That is the
exact gradient, and it works for any Keras model.

Only the embedding rows a batch reads are generated during training (`gather_rows`):
the batch's loss does not depend on the others, and the generator's rows are
independent, so the meta-gradient is the same while a step costs the batch's rows
instead of the whole tables (the whole-table cost made every step grow with the
number of ids). The rows are found model-agnostically, from the indices of the
probe's sparse gradient; a table whose gradient is dense is generated whole.
`meta_seconds` excludes graph tracing (`trace_seconds`). The windowed variants trace
their step once: while the window holds fewer than k models, its first slots are empty
(`padding`: the GRU carries its state through them and ASMG-Linear weighs them 0; their
outputs get loss weight 0), so every window length runs the same graph and the real
outputs are exactly those of the shorter sequence. asmg-gru-full, whose window grows to
`max_periods`, traces a new step for every length instead of running 21 steps from the
start.
"""
from __future__ import annotations

import time

import tensorflow as tf

from tfmeta import distribute
from tfmeta.meta import generators
from tfmeta.meta.incremental import ProbedUpdateStrategy, copy_weights

VARIANTS = ("single", "multi", "unif", "full", "zero")


def param_specs(model) -> list:
    embeddings = {id(v) for v in getattr(model, "embedding_tables", [])}
    return [generators.ParamSpec(tuple(v.shape), id(v) in embeddings)
            for v in model.trainable_variables]


def step_weights(variant: str, steps: int) -> list[float]:
    """Loss weights of the window's outputs, oldest first, summing to 1."""
    if variant == "single":
        raw = [0.0] * (steps - 1) + [1.0]
    elif variant == "unif":
        raw = [1.0] * steps
    else:  # multi, full, zero: linear decay towards the past
        raw = [float(s + 1) for s in range(steps)]
    total = sum(raw)
    return [w / total for w in raw]


class ASMG(ProbedUpdateStrategy):
    """IU for the base model, plus a meta generator that produces the serving model."""

    def __init__(self, model, generator: str = "gru", variant: str = "multi", k: int = 3,
                 hidden_size: int = 4, meta_learning_rate: float = 1e-3,
                 meta_epochs: int = 1, max_periods: int = 21, gather_rows: bool = True,
                 **kwargs):
        super().__init__(model, **kwargs)
        if variant not in VARIANTS:
            raise ValueError(f"unknown ASMG variant {variant!r}; choose from {VARIANTS}")
        self.variant = "single" if generator == "linear" else variant
        self.name = "asmg-linear" if generator == "linear" else f"asmg-gru-{variant}"
        self.k, self.meta_epochs, self.gather_rows = k, meta_epochs, gather_rows
        specs = param_specs(model)
        self.generator = (generators.LinearGenerator(specs, num_steps=k) if generator == "linear"
                          else generators.CoordinateGRUGenerator(specs, hidden_size))
        self.generator.build(None)  # weights and optimizer slots exist before a restore
        self.meta_optimizer = tf.keras.optimizers.Adam(meta_learning_rate)
        self.meta_optimizer.build(self.generator.trainable_variables)
        # No autograph: the step has no tensor-dependent Python control flow, and
        # converting the model and generator calls made tracing 20-30% slower.
        self._meta_step = tf.function(self._generator_step, reduce_retracing=True,
                                      autograph=False)
        self.make_probe()
        self.tables = [j for j, spec in enumerate(specs) if spec.embedding]
        self.meta_seconds = self.trace_seconds = 0.0
        # The window of recent base models (fixed slots, the last `filled` of them in use,
        # oldest first) and the hidden state before its first one: variables, so that
        # checkpoints carry them.
        capacity = max_periods if self.variant == "full" else k
        self.slots = [[tf.Variable(tf.zeros_like(v), trainable=False)
                       for v in model.trainable_variables] for _ in range(capacity)]
        self.filled = tf.Variable(0, trainable=False)
        self.state = [tf.Variable(s, trainable=False) for s in self.generator.initial_state()]

    # -- the period step
    def pretrain(self, source, periods, epochs: int = 1) -> float:
        loss = super().pretrain(source, periods, epochs)
        self._push(self.model.trainable_variables)  # the pre-trained model opens the history
        return loss

    def update(self, source, i: int) -> float:
        loss = super().update(source, i)  # the base model: theta_i
        self.meta_seconds = self.trace_seconds = 0.0
        if self._filled():
            for _ in range(self.meta_epochs):
                self._train_generator(source, i)
            tick = time.perf_counter()
            if self._filled() == len(self.slots) and self.variant not in ("full", "zero"):
                self._advance_state()
            self.meta_seconds += time.perf_counter() - tick
        self._push(self.model.trainable_variables)
        return loss

    def serving_weights(self) -> list:
        outputs, _ = self.generator(self._sequence(), self._start_state())
        return outputs[-1]

    def checkpoint_items(self) -> dict:
        items = super().checkpoint_items()
        items.update(generator=self.generator, meta_optimizer=self.meta_optimizer,
                     state=self.state, window=self.slots, window_size=self.filled)
        return items

    # -- internals
    def _filled(self) -> int:
        return int(self.filled.numpy())  # .numpy(): int() refuses a MirroredVariable

    def _sequence(self) -> list:
        return [list(slot) for slot in self.slots[len(self.slots) - self._filled():]]

    def _start_state(self) -> list:
        if self.variant in ("full", "zero"):
            return self.generator.initial_state()
        return list(self.state)

    def _push(self, values) -> None:
        """Appends a snapshot in the last slot, moving the others one slot towards the
        first; a full window drops its oldest."""
        n, capacity = self._filled(), len(self.slots)
        first = max(capacity - n - 1, 0)
        for older, newer in zip(self.slots[first:], self.slots[first + 1:]):
            copy_weights(newer, older)
        copy_weights(values, self.slots[-1])
        self.filled.assign(min(n + 1, capacity))

    def _advance_state(self) -> None:
        """Moves the state past the snapshot about to leave the window."""
        _, state = self.generator([list(self.slots[0])], list(self.state))
        for variable, value in zip(self.state, state):
            variable.assign(value)

    def _train_generator(self, source, i: int) -> None:
        """One pass over period i: each window output is scored on the period after its
        input (the last one on period i) and the generator follows the weighted loss."""
        filled = self._filled()
        length = filled if self.variant == "full" else len(self.slots)
        padding = length - filled  # empty slots first: output s reads period i-length+1+s
        weights = [0.0] * padding + step_weights(self.variant, filled)
        # Which outputs get a loss: fixed per length, so that one graph serves every
        # padding; an empty slot's output is scored (weight 0) on the newest batch.
        active = (length - 1,) if self.variant == "single" else tuple(range(length))
        real = [s for s in active[:-1] if s >= padding]
        datasets = [distribute.distribute_dataset(self.distribution, d) for d in
                    [source.periods([i - length + 1 + s]).repeat() for s in real]
                    + [source.periods([i])]]  # the newest period ends the pass
        position = {s: n for n, s in enumerate(real)}
        pick = [position.get(s, len(real)) for s in active]  # dataset of each active output
        arguments = (tf.constant(weights, tf.float32), tf.constant(padding, tf.int32))
        tick = time.perf_counter()
        self._meta_step.get_concrete_function(  # traced before the clock runs
            tuple(datasets[n].element_spec for n in pick), active, length,
            *(tf.TensorSpec.from_tensor(a) for a in arguments))
        self.trace_seconds += time.perf_counter() - tick
        tick = time.perf_counter()
        for batches in zip(*datasets):
            self._meta_step(tuple(batches[n] for n in pick), active, length, *arguments)
        self.meta_seconds += time.perf_counter() - tick

    def _generator_step(self, batches: tuple, active: tuple, length: int, weights,
                        padding) -> None:
        """One meta-gradient step over the last `length` slots, the first `padding` of
        them empty (traced once per length). Distributed: the probe's gradient is the
        global one (summed over replicas); the generator's update then happens once, in
        cross-replica context."""
        rows = self._rows_read(batches)
        variables = self.generator.trainable_variables
        with tf.GradientTape() as tape:
            sequence = [self._gather(slot, rows) for slot in self.slots[-length:]]
            outputs, _ = self.generator(sequence, self._gather(self._start_state(), rows),
                                        padding=padding)
        targets, output_gradients = [], []
        for s, batch in zip(active, batches):
            self._load_probe(outputs[s], rows)
            _, grads = distribute.loss_and_gradients(
                self.distribution, self.probe_losses, self.probe.trainable_variables, batch)
            targets.extend(outputs[s])
            output_gradients.extend(self._on_rows(g, rows.get(j)) * weights[s]
                                    for j, g in enumerate(grads))
        gradients = tape.gradient(targets, variables, output_gradients=output_gradients)
        self.meta_optimizer.apply_gradients(zip(gradients, variables))

    def _rows_read(self, batches: tuple) -> dict:
        """Sorted embedding rows the batches read, per table index; {} generates whole
        tables. The probe's current values do not matter: only which rows get gradient."""
        if not self.gather_rows:
            return {}
        variables = self.probe.trainable_variables
        _, grads = distribute.loss_and_gradients(
            self.distribution, lambda *bs: tf.concat([self.probe_losses(b) for b in bs], 0),
            [variables[j] for j in self.tables], *batches)
        return {j: tf.sort(tf.unique(g.indices)[0]) for j, g in zip(self.tables, grads)
                if isinstance(g, tf.IndexedSlices)}

    @staticmethod
    def _gather(values, rows: dict) -> list:
        return [tf.gather(v, rows[j]) if j in rows else v for j, v in enumerate(values)]

    def _load_probe(self, generated, rows: dict) -> None:
        for j, (value, variable) in enumerate(zip(generated, self.probe.trainable_variables)):
            if j in rows:
                variable.scatter_update(tf.IndexedSlices(value, rows[j]))
            else:
                variable.assign(value)

    @staticmethod
    def _on_rows(gradient, rows):
        """A probe gradient as a dense tensor over `rows` (all rows when None)."""
        if rows is None:
            return tf.convert_to_tensor(gradient)
        positions = tf.searchsorted(rows, gradient.indices)
        return tf.math.unsorted_segment_sum(gradient.values, positions, tf.size(rows))


def from_method(model, method: str, k: int = 3, hidden_size: int = 4, **kwargs) -> ASMG:
    if method == "asmg-linear":
        return ASMG(model, generator="linear", k=k, **kwargs)
    variant = method.removeprefix("asmg-gru-")
    return ASMG(model, generator="gru", variant=variant, k=k, hidden_size=hidden_size,
                **kwargs)


METHODS = ("asmg-linear",) + tuple(f"asmg-gru-{v}" for v in VARIANTS)
