"""Searchers and schedulers by name: registries of factories over Ray Tune's own classes.

Each factory takes the sweep's :class:`Plan` and returns the Ray object (None: Ray's default).
Ray and Optuna are imported inside the factories, so this module is light.

Example:
    >>> SCHEDULERS.names()
    ['asha', 'fifo', 'hyperband', 'median', 'pbt']
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from dltoolkit.errors import SpecError, message
from dltoolkit.registry import Registry
from dltoolkit.tune.space import Domain

SEARCHERS: Registry = Registry("searcher")
SCHEDULERS: Registry = Registry("scheduler")


@dataclass
class Plan:
    """Everything a sweep's engines need, resolved from the spec and the call's arguments."""

    space: dict[str, Domain]
    metric: str
    mode: str  # "min" or "max"
    samples: int
    search: str
    scheduler: str
    max_epochs: int
    grace_period: int
    max_concurrent: int | None = None
    seed: int | None = 0
    resources: dict[str, float] = field(default_factory=lambda: {"cpu": 1.0, "gpu": 0.0})
    retries: int = 0

    def check(self) -> None:
        """Names through the registries and the combinations Ray cannot run, before Ray starts."""
        SEARCHERS.get(self.search)
        SCHEDULERS.get(self.scheduler)
        grids = [p for p, d in self.space.items() if d.name == "grid"]
        if grids and self.search != "random" and self.search != "grid":
            raise SpecError(
                message(
                    f"Grid domains cannot be used with the {self.search!r} searcher", grids, "choice domains"
                )
            )
        if self.scheduler == "pbt" and self.search not in ("random", "grid"):
            raise SpecError(
                message(
                    "Population Based Training picks its own configurations", self.search, "search: random"
                )
            )
        if self.grace_period > self.max_epochs:
            raise SpecError(
                message(
                    "search.grace_period exceeds the epochs per trial",
                    self.grace_period,
                    f"<= {self.max_epochs}",
                )
            )

    def param_space(self) -> dict[str, Any]:
        """Ray domains by path; grid search turns every choice into a grid."""
        out = {}
        for path, domain in self.space.items():
            if self.search == "grid" and domain.name == "choice":
                domain = Domain("grid", domain.args)
            out[path] = domain.to_ray()
        return out


# --------------------------------------------------------------------------- searchers
@SEARCHERS.register("random")
def _random(plan: Plan) -> Any:
    """Ray's BasicVariantGenerator: random draws (and grid expansion), repeatable by ``search.seed``."""
    from ray.tune.search.basic_variant import BasicVariantGenerator

    return BasicVariantGenerator(max_concurrent=plan.max_concurrent or 0, random_state=plan.seed)


@SEARCHERS.register("grid")
def _grid(plan: Plan) -> Any:
    return _random(plan)  # choices become grid_search in Plan.param_space


@SEARCHERS.register("optuna")
def _optuna(plan: Plan) -> Any:
    from ray.tune.search import ConcurrencyLimiter
    from ray.tune.search.optuna import OptunaSearch

    searcher = OptunaSearch(metric=plan.metric, mode=plan.mode, seed=plan.seed)
    return (
        ConcurrencyLimiter(searcher, max_concurrent=plan.max_concurrent) if plan.max_concurrent else searcher
    )


# --------------------------------------------------------------------------- schedulers
@SCHEDULERS.register("fifo")
def _fifo(plan: Plan) -> Any:
    return None


@SCHEDULERS.register("asha")
def _asha(plan: Plan) -> Any:
    from ray.tune.schedulers import ASHAScheduler

    return ASHAScheduler(max_t=plan.max_epochs, grace_period=plan.grace_period)


@SCHEDULERS.register("hyperband")
def _hyperband(plan: Plan) -> Any:
    from ray.tune.schedulers import HyperBandScheduler

    return HyperBandScheduler(max_t=plan.max_epochs)


@SCHEDULERS.register("median")
def _median(plan: Plan) -> Any:
    from ray.tune.schedulers import MedianStoppingRule

    return MedianStoppingRule(
        time_attr="training_iteration", grace_period=plan.grace_period, min_samples_required=2
    )


@SCHEDULERS.register("pbt")
def _pbt(plan: Plan) -> Any:
    from ray.tune.schedulers import PopulationBasedTraining

    mutations = {p: d.to_ray() for p, d in plan.space.items() if d.name != "grid"}
    return PopulationBasedTraining(
        time_attr="training_iteration",
        perturbation_interval=plan.grace_period,
        hyperparam_mutations=mutations,
    )
