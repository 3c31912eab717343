"""The learning-rate range test (Smith, 2015; fastai's ``lr_find``): pick a learning rate without a sweep.

:func:`lr_find` builds the spec's model, loss and optimizer exactly as training does
(:func:`~dltoolkit.train.fit.build_module`, :func:`~dltoolkit.train.optim.make_optimizer`), then
takes ``steps`` optimizer steps on training batches while the learning rate grows exponentially
from ``min_lr`` to ``max_lr``. The loss is smoothed with a debiased exponential moving average
(factor 0.9 by default: about the last ten steps; fastai's 0.98 averages over about fifty, half of a
100-step test, and lags so far behind the raw loss that its steepest fall lands near the blow-up);
the test stops early when the smoothed loss exceeds ``diverge`` times the best seen so far (or a
loss is not finite). The spec's schedule is not used (the ramp is the schedule) and nothing is
written to disk. Afterwards the model's initial weights (and buffers) are restored, and so is
torch's random state, so the test leaves no trace on a later run.

**The suggestion** is the learning rate where the smoothed loss falls fastest: the most negative
slope of the smoothed loss against ``log10(lr)``, searched from the tenth point up to the minimum of
the smoothed loss (past the minimum the loss is rising, whatever its slope), rounded to two
significant digits.

Example:
    >>> import dltoolkit
    >>> found = dltoolkit.lr_find("digits-mlp")        # doctest: +SKIP
    >>> found.suggestion                               # doctest: +SKIP
    0.015
    >>> dltoolkit.run(found.spec)                      # doctest: +SKIP
"""

from __future__ import annotations

import copy
import math
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from dltoolkit.errors import DLToolkitError, SpecError, TrainingError, message
from dltoolkit.spec import Spec

if TYPE_CHECKING:
    import torch
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from dltoolkit.train.module import TaskModule

SKIP_START = 0.1  # the share of the first points the suggestion never picks (the average is still settling)


@dataclass
class LRFind:
    """The result of a learning-rate range test.

    Attributes:
        lrs: the learning rate of each step taken.
        losses: the raw training loss of each step.
        smoothed: the debiased exponential moving average of ``losses``.
        suggestion: the suggested learning rate (see the module's docstring for the rule).
        spec: a copy of the spec with ``train.optimizer.lr`` set to ``suggestion``.
        diverged: True when the test stopped early because the loss blew up.
        min_lr, max_lr: the range asked for.
    """

    lrs: list[float]
    losses: list[float]
    smoothed: list[float]
    suggestion: float
    spec: Spec
    diverged: bool
    min_lr: float
    max_lr: float

    def plot(self, ax: Axes | None = None) -> Figure:
        """Smoothed (and raw) loss against the learning rate on a log axis, the suggestion marked."""
        from dltoolkit.evaluate._figures import given_axes, new_axes

        ax = given_axes(ax, 1)[0] if ax is not None else new_axes(figsize=(5.5, 4.0))[0]
        ax.plot(self.lrs, self.losses, color="0.75", linewidth=0.8, label="loss")
        ax.plot(self.lrs, self.smoothed, color="C0", label="smoothed loss")
        at = int(np.argmin(np.abs(np.log(self.lrs) - math.log(self.suggestion))))
        ax.axvline(self.suggestion, color="C3", linestyle="--", linewidth=1)
        ax.plot(
            [self.suggestion], [self.smoothed[at]], "o", color="C3", label=f"suggestion {self.suggestion:.2g}"
        )
        ax.set_xscale("log")
        top = max(self.smoothed[0], min(self.smoothed)) * 1.5  # keep the blow-up from flattening the curve
        low = min(min(self.losses), min(self.smoothed))
        ax.set_ylim(low - 0.05 * abs(top - low), top)
        title = "learning-rate range test" + (" (stopped: loss diverged)" if self.diverged else "")
        ax.set(xlabel="learning rate", ylabel="training loss", title=title)
        ax.legend(loc="upper left", fontsize="small")
        from dltoolkit.evaluate._figures import figure_of

        return figure_of(ax)

    def save_plot(self, path: str | os.PathLike) -> Path:
        """Write :meth:`plot` to ``path`` as PNG (atomically)."""
        from dltoolkit.evaluate._figures import save_png

        return save_png(self.plot(), Path(path))

    def _repr_html_(self) -> str:
        from dltoolkit._html import esc

        state = "the loss diverged" if self.diverged else f"reached {self.max_lr:g} without diverging"
        return (
            f"<b>LRFind</b>: suggested learning rate <b>{self.suggestion:.2g}</b> "
            f"({len(self.lrs)} steps from {self.min_lr:g}; {esc(state)})"
        )


def lr_find(
    spec: Spec | str | dict,
    data: Any = None,
    *,
    min_lr: float = 1e-7,
    max_lr: float = 1.0,
    steps: int = 100,
    smoothing: float = 0.9,
    diverge: float = 4.0,
    overrides: dict[str, Any] | None = None,
) -> LRFind:
    """Run a learning-rate range test on the spec's model and data, and suggest a learning rate.

    Args:
        spec: a Spec, a dict, a spec file path or a bundled recipe name.
        data: a DataFrame or ``(X, y)`` arrays when the spec's source is ``frame``.
        min_lr: the learning rate of the first step (> 0).
        max_lr: the learning rate of the last step (> ``min_lr``).
        steps: optimizer steps from ``min_lr`` to ``max_lr`` (at least 10); the training batches
            are cycled when there are fewer.
        smoothing: the moving average's factor (``0 <= smoothing < 1``; 0: no smoothing).
        diverge: stop once the smoothed loss exceeds this many times its best (> 1).
        overrides: dotted-path values applied to the spec, e.g. ``{"train.batch_size": 64}``.

    Returns:
        An :class:`LRFind`; ``result.spec`` is the spec with the suggested learning rate.

    Raises:
        SpecError: a bad argument or spec (checked before any work).
        TrainingError: the loss diverged too early to suggest anything (lower ``min_lr``).
    """
    from dltoolkit.api import check, resolve_spec

    _check_arguments(min_lr, max_lr, steps, smoothing, diverge)
    spec = resolve_spec(spec, overrides)
    checked = check(spec, data)
    module = _module(spec, checked)
    lrs, losses, smoothed, diverged = range_test(
        module, _batches(spec, checked.data), min_lr, max_lr, steps, smoothing, diverge
    )
    suggestion = suggest(lrs, smoothed)
    tuned = spec.with_values({"train.optimizer.lr": suggestion})
    return LRFind(lrs, losses, smoothed, suggestion, tuned, diverged, min_lr, max_lr)


def _check_arguments(min_lr: float, max_lr: float, steps: int, smoothing: float, diverge: float) -> None:
    fix = "Example: lr_find(spec, min_lr=1e-7, max_lr=1, steps=100)."
    rules = [
        (min_lr > 0, "min_lr must be positive", min_lr, "a learning rate > 0"),
        (max_lr > min_lr, "max_lr must be above min_lr", (min_lr, max_lr), "min_lr < max_lr"),
        (steps >= 10, "steps is too small for a range test", steps, "an integer >= 10"),
        (0 <= smoothing < 1, "smoothing is out of range", smoothing, "0 <= smoothing < 1"),
        (diverge > 1, "diverge must be above 1", diverge, "a factor > 1, e.g. 4"),
    ]
    if isinstance(steps, bool) or not isinstance(steps, int):
        raise SpecError(message("steps must be an integer", steps, "an integer >= 10", fix))
    for ok, what, received, expected in rules:
        if not ok:
            raise SpecError(message(what, received, expected, fix))


def _module(spec: Spec, checked: Any) -> TaskModule:
    import pytorch_lightning as pl
    import torch

    from dltoolkit.data import make_augment
    from dltoolkit.train.fit import build_module, device_settings

    if spec.train.threads:
        torch.set_num_threads(spec.train.threads)
    pl.seed_everything(spec.train.seed, workers=False, verbose=False)  # the initial weights fit() gets
    data = checked.data
    augment = make_augment(spec.preprocess.augment, data.input_shape)
    steps = math.ceil(len(data.X_train) / spec.train.batch_size)
    module = build_module(spec, checked.graph, steps, augment, data)
    return module.to("cuda" if device_settings(spec)[0] == "gpu" else "cpu")


def _batches(spec: Spec, data: Any) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Training batches of ``train.batch_size`` rows, epoch after epoch, as :func:`fit` draws them."""
    from dltoolkit.train.fit import batches

    train, _ = batches(spec, data)
    size = spec.train.batch_size
    while True:
        empty = True
        for x, y in train:
            for xb, yb in zip(x.split(size), y.split(size), strict=True):
                empty = False
                yield xb, yb
        if empty:
            raise DLToolkitError("The training split is empty: there is nothing to run a range test on.")


def range_test(
    module: TaskModule,
    batches: Iterator[tuple[torch.Tensor, torch.Tensor]],
    min_lr: float,
    max_lr: float,
    steps: int,
    smoothing: float = 0.9,
    diverge: float = 4.0,
) -> tuple[list[float], list[float], list[float], bool]:
    """The range test on ``module`` (a :class:`~dltoolkit.train.module.TaskModule`), weights restored.

    Returns:
        (lrs, losses, smoothed losses, diverged).
    """
    import torch

    initial = copy.deepcopy(module.state_dict())
    rng = torch.get_rng_state(), (torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None)
    was_training = module.training
    try:
        return _ramp(module, batches, min_lr, max_lr, steps, smoothing, diverge)
    finally:
        module.load_state_dict(initial)
        module.train(was_training)
        torch.set_rng_state(rng[0])
        if rng[1] is not None:
            torch.cuda.set_rng_state_all(rng[1])


def _ramp(
    module: TaskModule,
    batches: Iterator[tuple[Any, Any]],
    min_lr: float,
    max_lr: float,
    steps: int,
    smoothing: float,
    diverge: float,
) -> tuple[list[float], list[float], list[float], bool]:
    import torch

    from dltoolkit.train.optim import make_optimizer

    train = module.spec.train
    opt = make_optimizer(train.optimizer, module.parameters())
    ratios = [group["lr"] / train.optimizer.lr for group in opt.param_groups]  # backbone_lr keeps its ratio
    device = next(module.parameters()).device
    module.train()
    lrs: list[float] = []
    losses: list[float] = []
    smoothed: list[float] = []
    best, average = math.inf, 0.0
    for i in range(steps):
        lr = min_lr * (max_lr / min_lr) ** (i / (steps - 1))
        for group, ratio in zip(opt.param_groups, ratios, strict=True):
            group["lr"] = lr * ratio
        x, y = (t.to(device) for t in next(batches))
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=train.precision == "bf16-mixed"):
            value = _step(module, opt, x, y, train.grad_clip)
        if not math.isfinite(value):
            return lrs, losses, smoothed, True
        average = smoothing * average + (1 - smoothing) * value
        current = average / (1 - smoothing ** (i + 1))
        lrs.append(lr)
        losses.append(value)
        smoothed.append(current)
        if current > diverge * best:
            return lrs, losses, smoothed, True
        best = min(best, current)
    return lrs, losses, smoothed, False


def _step(module: TaskModule, opt: Any, x: Any, y: Any, grad_clip: float | None) -> float:
    """One training step as :class:`TaskModule` takes it (augment, forward, loss, clip, step)."""
    import torch

    if module.augment is not None:
        x = module.augment(x)
    opt.zero_grad(set_to_none=True)
    loss = module.loss(module(x), y)
    value = loss.item()
    if math.isfinite(value):
        loss.backward()
        if grad_clip:
            torch.nn.utils.clip_grad_norm_(module.parameters(), grad_clip)
        opt.step()
    return value


def suggest(lrs: list[float], smoothed: list[float]) -> float:
    """The learning rate at the steepest descent of the smoothed loss (see the module docstring).

    Example:
        >>> lrs = [10.0**e for e in np.linspace(-5, 0, 11)]
        >>> smoothed = [2.0, 2.0, 1.99, 1.95, 1.8, 1.2, 0.6, 0.5, 0.49, 0.8, 3.0]
        >>> suggest(lrs, smoothed)
        0.0032
    """
    end = int(np.argmin(smoothed)) + 1  # up to the minimum, included
    start = min(int(len(smoothed) * SKIP_START), max(end - 2, 0))
    if end - start < 2:
        raise TrainingError(
            message(
                "The loss diverged before the range test could see it fall",
                f"{len(smoothed)} step(s), lowest loss at step {end}",
                "the loss to fall over several steps before it rises",
                "Lower min_lr (or max_lr), or check the data and the model.",
            )
        )
    logs = np.log10(np.asarray(lrs[start:end]))
    slopes = np.gradient(np.asarray(smoothed[start:end]), logs)
    return float(f"{lrs[start + int(np.argmin(slopes))]:.2g}")
