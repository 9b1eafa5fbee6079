"""Trajectory meta-gradients for LeapRec (Chairatanakul et al., AAAI 2022): Leap and
first-order MAML on any list of tf.Variables, usable eagerly or inside `tf.function`.

Setting. The meta-parameters phi are a list of tf.Variables. Each task starts an inner
loop at theta(0) = phi and takes K steps theta(0) -> ... -> theta(K) with its own
optimizer; the caller runs that loop and reports every step here. The accumulated
meta-gradient is a *gradient*: `apply()` hands it to a standard meta optimizer, which
subtracts it (phi <- phi - beta * g for SGD).

Leap (Flennerhag et al., ICLR 2019, "Transferring Knowledge across Learning
Processes"). Leap minimises the length of each task's path on the loss surface, the
points psi(k) = (theta(k), L(theta(k))):

    length = sum_k |psi(k+1) - psi(k)|,    |(dtheta, dL)| = sqrt(dL^2 + |dtheta|^2),

with dtheta = theta(k+1) - theta(k) and dL = L(theta(k+1)) - L(theta(k)). Its gradient
w.r.t. phi, holding theta(k+1) fixed and taking the Jacobian d theta(k) / d phi as the
identity, is

    g = sum_k -(dtheta + dL * grad L(theta(k))) / sqrt(dL^2 + |dtheta|^2),

where |dtheta|^2 is one squared norm over all the variables together. As in the paper,
dL is stabilised to -|dL| (a step where the loss went up still pulls phi downhill):

    g = sum_k -(dtheta - |dL| * grad L(theta(k))) / sqrt(dL^2 + |dtheta|^2).

Sign check: the meta step phi - beta * g adds beta * dtheta / norm, i.e. phi moves
along the path, towards where the tasks' training went. The denominator is
max(norm, epsilon) (`epsilon`, 1e-12 by default), so a step that changes nothing
contributes exactly zero instead of 0/0 = NaN. The guard only acts on steps shorter
than epsilon, and their terms stay bounded by 1 + |grad L|.

FOMAML (first-order MAML). A task's meta-gradient is the gradient of its loss at the
end of its inner loop, grad L(theta(K)), with no second derivatives. It uses the same
calls as Leap: of each step it keeps only `grad_after`, the gradient at theta_after,
so after the task's last step the kept gradient is grad L(theta(K)). It adds the
change (grad_after - previous grad_after of this task) to the sum, so `accumulated`
always holds the sum over tasks of each task's latest gradient and no end-of-task
call is needed.

Both average over tasks: `apply()` divides the sum by the number of `begin_task()`
calls since the last `apply()`, takes one meta-optimizer step and resets.

API (all methods are tf.function-safe; state lives in non-trainable tf.Variables
created in the constructor):

    meta = make("leap" | "fomaml", meta_variables, meta_optimizer, **options)
    meta.begin_task(theta=None)      # count a task; if theta is given, theta <- phi
    meta.observe_step(theta_before, theta_after, loss_before, loss_after,
                      grad_before, grad_after=None)    # one inner step
    meta.apply()                     # average, meta-optimizer step, reset
    meta.reset()                     # drop what was accumulated
    meta.accumulated, meta.tasks     # the summed meta-gradient and the task count
    meta.checkpoint_items()          # dict for tf.train.Checkpoint(**items)

One training loop serves both methods, reusing each step's gradient as the next
step's `grad_before`:

    meta.begin_task(theta)
    loss, grads = loss_and_grads(theta)
    for k in range(K):
        before = [tf.identity(v) for v in theta]
        inner_optimizer.apply_gradients(zip(grads, theta))
        loss_next, grads_next = loss_and_grads(theta)
        meta.observe_step(before, theta, loss, loss_next, grads, grads_next)
        loss, grads = loss_next, grads_next
    ...  # more tasks
    meta.apply()

Lists are in the order of `meta_variables` (theta[i] has the shape of phi[i]).
Gradients may be dense tensors, `tf.IndexedSlices` (embedding lookups; repeated rows
are summed) or None (zero). For dL to measure the step, compute loss_before and
loss_after on the same data. The meta optimizer is a Keras 2
`tf.keras.optimizers.Optimizer`; it is built on `meta_variables` in the constructor so
that its slots exist before a checkpoint restore. The checkpoint items do not include
phi itself, which belongs to the caller's model.
"""
from __future__ import annotations

from typing import Sequence

import tensorflow as tf


class TrajectoryMetaGradient:
    """Sums a meta-gradient over tasks' inner steps and applies its mean over tasks.

    Subclasses implement `_accumulate` (the one override point), which adds one
    step's contribution to `self.accumulated`.
    """

    def __init__(self, meta_variables: Sequence[tf.Variable],
                 meta_optimizer: tf.keras.optimizers.Optimizer):
        self.meta_variables = list(meta_variables)
        self.meta_optimizer = meta_optimizer
        self._sums = _zeros_like(self.meta_variables, "meta_gradient")
        self.tasks = tf.Variable(0, dtype=tf.int64, trainable=False, name="meta_tasks")
        meta_optimizer.build(self.meta_variables)

    @property
    def accumulated(self) -> list:
        """The summed (not yet averaged) meta-gradient, one variable per meta variable."""
        return self._sums

    def checkpoint_items(self) -> dict:
        return {"meta_gradient": self._sums, "meta_tasks": self.tasks,
                "meta_optimizer": self.meta_optimizer}

    def begin_task(self, theta: Sequence[tf.Variable] | None = None) -> None:
        """Counts a task; with `theta`, also starts its inner loop at phi."""
        self.tasks.assign_add(1)
        if theta is not None:
            for t, p in zip(self._listed(theta, "theta"), self.meta_variables):
                t.assign(p)

    def observe_step(self, theta_before: Sequence, theta_after: Sequence, loss_before,
                     loss_after, grad_before: Sequence, grad_after: Sequence | None = None
                     ) -> None:
        """Accumulates one inner step theta_before -> theta_after of the current task.

        grad_before / grad_after are the loss gradients at theta_before / theta_after
        (Leap uses grad_before, FOMAML grad_after).
        """
        self._accumulate(self._listed(theta_before, "theta_before"),
                         self._listed(theta_after, "theta_after"),
                         tf.cast(loss_before, tf.float32), tf.cast(loss_after, tf.float32),
                         self._listed(grad_before, "grad_before"),
                         None if grad_after is None else self._listed(grad_after, "grad_after"))

    def apply(self) -> None:
        """phi <- meta step with the meta-gradient averaged over tasks; then reset."""
        tf.debugging.assert_positive(self.tasks, message="apply() before any begin_task()")
        grads = [s / tf.cast(self.tasks, s.dtype) for s in self._sums]
        self.meta_optimizer.apply_gradients(zip(grads, self.meta_variables))
        self.reset()

    def reset(self) -> None:
        for s in self._sums:
            s.assign(tf.zeros_like(s))
        self.tasks.assign(0)

    def _listed(self, values: Sequence, name: str) -> list:
        """values as a list, checked to have one entry per meta variable."""
        if len(values) != len(self.meta_variables):
            raise ValueError(f"{name} has {len(values)} entries for "
                             f"{len(self.meta_variables)} meta variables")
        return list(values)

    def _accumulate(self, theta_before, theta_after, loss_before, loss_after, grad_before,
                    grad_after) -> None:
        raise NotImplementedError


class Leap(TrajectoryMetaGradient):
    """Leap's path-length meta-gradient, identity Jacobian, stabilised dL (see module)."""

    def __init__(self, meta_variables, meta_optimizer, epsilon: float = 1e-12):
        super().__init__(meta_variables, meta_optimizer)
        self.epsilon = epsilon

    def _accumulate(self, theta_before, theta_after, loss_before, loss_after, grad_before,
                    grad_after) -> None:
        steps = [tf.convert_to_tensor(a) - tf.convert_to_tensor(b)
                 for a, b in zip(theta_after, theta_before)]
        d_loss = loss_after - loss_before
        squared = tf.add_n([tf.reduce_sum(tf.square(tf.cast(d, tf.float32))) for d in steps])
        norm = tf.maximum(tf.sqrt(tf.square(d_loss) + squared), self.epsilon)
        for s, d, g in zip(self._sums, steps, grad_before):
            # -(dtheta - |dL| grad) / norm, added in two parts so a sparse grad stays sparse.
            s.assign_sub(d / tf.cast(norm, d.dtype))
            _add_scaled(s, g, tf.abs(d_loss) / norm)


class FOMAML(TrajectoryMetaGradient):
    """First-order MAML: each task contributes grad L(theta(K)) (see module)."""

    def __init__(self, meta_variables, meta_optimizer):
        super().__init__(meta_variables, meta_optimizer)
        # The current task's latest grad_after, already included in the sums.
        self._last = _zeros_like(self.meta_variables, "fomaml_last_gradient")

    def checkpoint_items(self) -> dict:
        return {**super().checkpoint_items(), "fomaml_last_gradient": self._last}

    def begin_task(self, theta=None) -> None:
        super().begin_task(theta)
        for last in self._last:
            last.assign(tf.zeros_like(last))

    def _accumulate(self, theta_before, theta_after, loss_before, loss_after, grad_before,
                    grad_after) -> None:
        if grad_after is None:
            raise ValueError("FOMAML needs grad_after, the loss gradient at theta_after")
        for s, last, g in zip(self._sums, self._last, grad_after):
            # Replace this task's previous gradient in the sum by the new one.
            s.assign_sub(last)
            last.assign(tf.zeros_like(last))
            _add_scaled(last, g, 1.0)
            s.assign_add(last)


METHODS = {"leap": Leap, "fomaml": FOMAML}


def make(name: str, meta_variables: Sequence[tf.Variable],
         meta_optimizer: tf.keras.optimizers.Optimizer, **options) -> TrajectoryMetaGradient:
    """The meta-gradient method called `name` ("leap" or "fomaml")."""
    if name not in METHODS:
        raise ValueError(f"unknown meta-gradient method {name!r}; expected one of "
                         f"{sorted(METHODS)}")
    return METHODS[name](meta_variables, meta_optimizer, **options)


def _zeros_like(variables, name: str) -> list:
    return [tf.Variable(tf.zeros(v.shape, v.dtype), trainable=False, name=name)
            for v in variables]


def _add_scaled(variable: tf.Variable, grad, scale) -> None:
    """variable += scale * grad, for a dense, IndexedSlices (scattered) or None grad."""
    if grad is None:
        return
    scale = tf.cast(scale, variable.dtype)
    if isinstance(grad, tf.IndexedSlices):
        variable.scatter_add(tf.IndexedSlices(grad.values * scale, grad.indices,
                                              grad.dense_shape))
    else:
        variable.assign_add(tf.convert_to_tensor(grad) * scale)
