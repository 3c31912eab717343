"""Optimizer and learning-rate schedule registries, built from the spec's ``train`` section.

Example:
    >>> import torch
    >>> from dltoolkit.spec import OptimizerSpec
    >>> opt = make_optimizer(OptimizerSpec(name="sgd", lr=0.1, nesterov=True), [torch.nn.Parameter(torch.zeros(1))])
    >>> type(opt).__name__
    'SGD'
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch.optim import lr_scheduler

from dltoolkit.registry import Registry
from dltoolkit.spec import OptimizerSpec, ScheduleSpec

OPTIMIZERS: Registry[Callable[[OptimizerSpec, Iterable], torch.optim.Optimizer]] = Registry("optimizer")
SCHEDULES: Registry[Callable[..., Any]] = Registry("schedule")


@OPTIMIZERS.register("sgd")
def _sgd(s: OptimizerSpec, params):
    return torch.optim.SGD(
        params,
        lr=s.lr,
        momentum=s.momentum,
        nesterov=s.nesterov and s.momentum > 0,
        weight_decay=s.weight_decay,
    )


@OPTIMIZERS.register("adam")
def _adam(s: OptimizerSpec, params):
    return torch.optim.Adam(params, lr=s.lr, betas=s.betas, weight_decay=s.weight_decay)


@OPTIMIZERS.register("adamw")
def _adamw(s: OptimizerSpec, params):
    return torch.optim.AdamW(params, lr=s.lr, betas=s.betas, weight_decay=s.weight_decay)


@OPTIMIZERS.register("rmsprop")
def _rmsprop(s: OptimizerSpec, params):
    return torch.optim.RMSprop(params, lr=s.lr, momentum=s.momentum, weight_decay=s.weight_decay)


def make_optimizer(spec: OptimizerSpec, params: Iterable) -> torch.optim.Optimizer:
    """The optimizer named by ``spec.name`` over ``params``, in :func:`param_groups`."""
    return OPTIMIZERS.get(spec.name)(spec, param_groups(spec, params))


def param_groups(spec: OptimizerSpec, params: Iterable) -> list:
    """``params`` as they go to the optimizer: one list, or, when some belong to a backbone node, two
    groups: ``head`` (every other parameter, at ``spec.lr``; first, so it is the ``lr`` a run logs)
    and ``backbone`` (at ``spec.backbone_lr``, default ``spec.lr``).

    Frozen parameters stay in their group: they get no gradient, so the optimizer leaves them
    alone (weight decay included) until they are unfrozen.
    """
    from dltoolkit.graph.backbones import GROUP_ATTR

    params = list(params)
    if not params or isinstance(params[0], dict):
        return params  # the caller's own groups
    backbone = [p for p in params if getattr(p, GROUP_ATTR, None) == "backbone"]
    if not backbone:
        return params
    rest = [p for p in params if getattr(p, GROUP_ATTR, None) != "backbone"]
    groups = [{"params": rest, "name": "head"}] if rest else []
    return groups + [{"params": backbone, "lr": spec.backbone_lr or spec.lr, "name": "backbone"}]


# Each schedule returns (scheduler, interval) where interval is "epoch" or "step".
@SCHEDULES.register("none")
def _none(s: ScheduleSpec, opt, epochs: int, steps: int):
    return None, "epoch"


@SCHEDULES.register("step")
def _step(s: ScheduleSpec, opt, epochs: int, steps: int):
    return lr_scheduler.StepLR(opt, step_size=s.step_size, gamma=s.gamma), "epoch"


@SCHEDULES.register("cosine")
def _cosine(s: ScheduleSpec, opt, epochs: int, steps: int):
    return lr_scheduler.CosineAnnealingLR(
        opt, T_max=max(1, epochs - s.warmup_epochs), eta_min=s.min_lr
    ), "epoch"


@SCHEDULES.register("onecycle")
def _onecycle(s: ScheduleSpec, opt, epochs: int, steps: int):
    max_lr = [g["lr"] for g in opt.param_groups]
    return lr_scheduler.OneCycleLR(opt, max_lr=max_lr, total_steps=max(2, epochs * steps)), "step"


@SCHEDULES.register("plateau")
def _plateau(s: ScheduleSpec, opt, epochs: int, steps: int):
    return lr_scheduler.ReduceLROnPlateau(opt, factor=s.factor, patience=s.patience, min_lr=s.min_lr), "epoch"


def make_schedule(spec: ScheduleSpec, opt: torch.optim.Optimizer, epochs: int, steps_per_epoch: int):
    """(scheduler or None, "epoch" | "step"), with a linear warm-up in front when asked for."""
    sched, interval = SCHEDULES.get(spec.name)(spec, opt, epochs, steps_per_epoch)
    if spec.warmup_epochs <= 0 or spec.name in ("onecycle", "plateau"):
        return sched, interval
    warm = spec.warmup_epochs

    def factor(epoch: int) -> float:
        return min(1.0, (epoch + 1) / (warm + 1))

    warmup = lr_scheduler.LambdaLR(opt, factor)
    if sched is None:
        return warmup, "epoch"
    return lr_scheduler.SequentialLR(opt, [warmup, sched], milestones=[warm]), "epoch"
