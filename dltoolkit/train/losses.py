"""The loss a spec trains with, checked against its task (light: no torch, so checks stay fast)."""

from __future__ import annotations

from dltoolkit.errors import SpecError, message
from dltoolkit.spec import Spec

LOSSES = {"binary": "bce", "multiclass": "cross_entropy", "regression": "mse"}


def loss_name(spec: Spec) -> str:
    """The loss the spec asks for, checked against the task."""
    name = LOSSES[spec.task.kind] if spec.train.loss == "auto" else spec.train.loss
    ok = {"binary": {"bce", "cross_entropy"}, "multiclass": {"cross_entropy"}, "regression": {"mse", "huber"}}
    if name not in ok[spec.task.kind]:
        raise SpecError(
            message(
                f"Loss {name!r} does not fit a {spec.task.kind} task",
                name,
                f"one of {sorted(ok[spec.task.kind])}",
                "Set train.loss to auto.",
            )
        )
    if spec.task.class_weights is not None and spec.task.kind == "regression":
        raise SpecError(
            message(
                "task.class_weights is set for a regression task",
                spec.task.class_weights,
                "class weights for a binary or multiclass task only",
                "Remove task.class_weights.",
            )
        )
    return name
