"""Pre-flight: every configuration of a search space builds a valid graph, checked before Ray starts.

Every value of each discrete domain (choice, grid) and both ends of each continuous one are
tried, with the other fields at their spec values, plus a few sampled whole configurations. A
configuration that cannot be built is a :class:`SpecError` naming the path and the value; the
report gives the range of parameter counts and FLOPs over the configurations seen.

Example:
    >>> report = preflight(spec, prepared, parse_space(spec.search.space))  # doctest: +SKIP
    >>> report.params                                                       # doctest: +SKIP
    (2762, 17290)
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

from dltoolkit.errors import DLToolkitError, SpecError, UnknownNameError
from dltoolkit.spec import Spec
from dltoolkit.tune.space import Domain


@dataclass
class Preflight:
    """What the pre-flight found: how many configurations were built and their cost ranges.

    ``flops`` is counted when first asked for, on the smallest and the largest configuration (by
    parameters): counting costs about a second the first time a process does it, and a sweep
    that nobody asks about FLOPs should not pay it.
    """

    configs: int
    params: tuple[int, int]  # (min, max) parameter count
    unused: list[str] = field(default_factory=list)  # space paths on nodes that feed no output
    ends: tuple[Any, ...] = field(default=(), repr=False)  # the smallest and largest graphs

    @property
    def flops(self) -> tuple[int, int]:
        """(min, max) FLOPs per sample (forward) of the smallest and the largest configuration."""
        counts = [g.total_flops for g in self.ends] or [0]
        return min(counts), max(counts)

    def __str__(self) -> str:
        low, high = self.flops
        text = (
            f"pre-flight: {self.configs} configurations build; parameters {self.params[0]:,}-"
            f"{self.params[1]:,}, FLOPs/sample {low:,}-{high:,}"
        )
        return text + (f"; left out (unused nodes): {', '.join(self.unused)}" if self.unused else "")


def unused_paths(graph: Any, space: dict[str, Domain]) -> list[str]:
    """The search-space paths that address nodes whose output reaches nothing (a dead branch):
    varying them cannot change a trial's result."""
    dead = set(graph.unused)
    return [p for p in space if p.startswith("graph.nodes.") and p.split(".")[2] in dead]


def candidate_configs(space: dict[str, Domain], samples: int = 8, seed: int = 0) -> list[dict[str, Any]]:
    """One-field-at-a-time values (every choice, both ends of a range) and ``samples`` full draws."""
    configs: list[dict[str, Any]] = [{}]
    for path, domain in space.items():
        configs.extend({path: value} for value in domain.values())
    rng = random.Random(seed)
    configs.extend({path: d.sample(rng) for path, d in space.items()} for _ in range(samples))
    return configs


def build_trial(spec: Spec, config: dict[str, Any], prepared) -> Any:
    """The spec of one trial and its graph; any failure is a SpecError naming paths and values."""
    from dltoolkit.bundle import graph_for
    from dltoolkit.data import make_augment
    from dltoolkit.train.losses import loss_name
    from dltoolkit.train.optim import OPTIMIZERS, SCHEDULES

    try:
        trial = spec.with_values(config)
        OPTIMIZERS.get(trial.train.optimizer.name)
        SCHEDULES.get(trial.train.schedule.name)
        loss_name(trial)
        graph = graph_for(trial, prepared.preprocessor, prepared.n_outputs)
        make_augment(trial.preprocess.augment, prepared.input_shape)
    except (DLToolkitError, ValueError, KeyError) as e:
        shown = ", ".join(f"{p}={v!r}" for p, v in config.items()) or "the spec's own values"
        text = str(e) if not isinstance(e, UnknownNameError) else e.args[0]
        raise SpecError(
            f"The search space has a configuration that cannot be built: {shown}. {text} "
            "Fix: narrow or correct that entry of search.space."
        ) from e
    return trial, graph


def preflight(spec: Spec, prepared, space: dict[str, Domain], samples: int = 8, seed: int = 0) -> Preflight:
    """Build the graph of each candidate configuration; raise SpecError on the first that fails."""
    unused: list[str] = []
    smallest = largest = None
    configs = candidate_configs(space, samples, seed)
    for config in configs:
        _, graph = build_trial(spec, config, prepared)
        if smallest is None or graph.total_params < smallest.total_params:
            smallest = graph
        if largest is None or graph.total_params > largest.total_params:
            largest = graph
        if not config:  # the spec's own graph
            unused = unused_paths(graph, space)
    assert smallest is not None and largest is not None  # configs always holds the spec's own ({})
    params = (smallest.total_params, largest.total_params)
    return Preflight(len(configs), params, unused, (smallest, largest))
