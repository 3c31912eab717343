"""The two sweep engines' searchers and schedulers by name, and which engine runs a sweep.

``SEARCHERS``/``SCHEDULERS`` are registries of factories over Ray Tune's own classes (the Ray
engine); ``SAMPLERS``/``PRUNERS`` hold the same names over Optuna's classes (the local engine,
:mod:`dltoolkit.tune.local`). Each factory takes the sweep's :class:`Plan` and returns the library
object (None: its default). Ray and Optuna are imported inside the factories, so this module is
light. :func:`choose_engine` applies ``search.engine`` (auto, local, ray).

Example:
    >>> SCHEDULERS.names() == PRUNERS.names()
    True
    >>> SCHEDULERS.names()
    ['asha', 'fifo', 'hyperband', 'median', 'pbt']
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from dltoolkit.errors import SpecError, message
from dltoolkit.registry import Registry
from dltoolkit.tune.space import Domain

SEARCHERS: Registry = Registry("searcher")
SCHEDULERS: Registry = Registry("scheduler")
SAMPLERS: Registry = Registry("searcher")  # the local engine's (Optuna samplers)
PRUNERS: Registry = Registry("scheduler")  # the local engine's (Optuna pruners)


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
    read_with: str = "auto"  # search.read_with: how Ray trials read streamed sources

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

    def trials(self) -> int:
        """Trials in all: ``samples``, times the grid's size with grid search."""
        if self.search != "grid":
            return self.samples
        size = 1
        for domain in self.space.values():
            size *= len(domain.args[0]) if domain.discrete else 1
        return size * self.samples

    def grid(self) -> dict[str, list[Any]]:
        """Grid search's values by path (every domain must be a choice or a grid here)."""
        continuous = [p for p, d in self.space.items() if not d.discrete]
        if continuous:
            raise SpecError(
                message(
                    "Grid search on the local engine needs a finite grid",
                    continuous,
                    "choice or grid domains only",
                    "Make those paths choices, use search: random, or set search.engine: ray "
                    "(which samples them once per grid point).",
                )
            )
        return {p: list(d.args[0]) for p, d in self.space.items()}

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


# --------------------------------------------------------------------------- the local engine (Optuna)
@SAMPLERS.register("random")
def _random_sampler(plan: Plan) -> Any:
    import optuna

    return optuna.samplers.RandomSampler(seed=plan.seed)


@SAMPLERS.register("grid")
def _grid_sampler(plan: Plan) -> Any:
    """Every combination of the choice/grid domains (a continuous domain cannot be gridded here)."""
    import optuna

    class Grid(optuna.samplers.GridSampler):
        def after_trial(self, study: Any, trial: Any, state: Any, values: Any) -> None:
            pass  # Optuna's calls study.stop(), which only works inside optimize(); the engine counts

    return Grid(plan.grid(), seed=plan.seed)


@SAMPLERS.register("optuna")
def _tpe_sampler(plan: Plan) -> Any:
    import optuna

    return optuna.samplers.TPESampler(seed=plan.seed)


@PRUNERS.register("fifo")
def _nop_pruner(plan: Plan) -> Any:
    import optuna

    return optuna.pruners.NopPruner()


@PRUNERS.register("asha")
def _halving_pruner(plan: Plan) -> Any:
    """Asynchronous successive halving, as Ray's ASHA (reduction factor 4, rungs from grace_period)."""
    import optuna

    return optuna.pruners.SuccessiveHalvingPruner(min_resource=plan.grace_period, reduction_factor=4)


@PRUNERS.register("hyperband")
def _hyperband_pruner(plan: Plan) -> Any:
    import optuna

    return optuna.pruners.HyperbandPruner(min_resource=1, max_resource=plan.max_epochs)


@PRUNERS.register("median")
def _median_pruner(plan: Plan) -> Any:
    """Ray's MedianStoppingRule: after grace_period epochs, once two trials have results."""
    import optuna

    return optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=plan.grace_period)


@PRUNERS.register("pbt")
def _no_pbt(plan: Plan) -> Any:
    raise SpecError(
        message(
            "The local engine cannot run Population Based Training",
            "search.scheduler: pbt",
            "fifo, asha, hyperband or median",
            "PBT exchanges weights between running trials: set search.engine: ray (or auto).",
        )
    )


# --------------------------------------------------------------------------- which engine
ENGINES = ("auto", "local", "ray")


@dataclass(frozen=True)
class EngineChoice:
    """The engine a sweep runs on (``local`` or ``ray``) and why, in words."""

    name: str
    reason: str

    def __str__(self) -> str:
        return f"engine: {self.name} ({self.reason})"


def cores() -> int:
    """The CPU cores this process may use (its affinity, not the whole host)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def local_concurrency(plan: Plan) -> int:
    """Trials the local engine runs at once: ``max_concurrent``, else as many as the cores allow."""
    if plan.max_concurrent:
        return min(plan.max_concurrent, plan.trials())
    per_trial = max(plan.resources.get("cpu", 1.0), 1.0)
    return max(1, min(int(cores() // per_trial), plan.trials()))


def ray_needs(
    plan: Plan, address: str | None = None, workers: bool | None = None
) -> list[tuple[str, Any, str]]:
    """The options of this sweep that only Ray can give: (option, value, why) triples."""
    needs: list[tuple[str, Any, str]] = []
    if address:
        needs.append(("address", address, "trials on a Ray cluster"))
    if plan.scheduler == "pbt":
        needs.append(("search.scheduler", "pbt", "PBT exchanges weights between running trials"))
    if plan.resources.get("gpu"):
        needs.append(("search.gpus_per_trial", plan.resources["gpu"], "Ray places GPU trials"))
    if plan.max_concurrent and plan.max_concurrent > cores():
        why = f"more trials at once than the {cores()} cores here"
        needs.append(("search.max_concurrent", plan.max_concurrent, why))
    if workers:
        needs.append(("workers", True, "warm trial workers are Ray actors"))
    if plan.read_with == "ray_data":
        needs.append(("search.read_with", "ray_data", "Ray Data reads the files in Ray tasks"))
    for path, domain in plan.space.items():
        odd = [v for v in domain.args[0] if not isinstance(v, _PLAIN)] if domain.discrete else []
        if odd:  # Optuna stores choices as plain values
            needs.append(
                (f"search.space.{path}", odd[0], "Optuna takes only numbers, strings or null as choices")
            )
    return needs


_PLAIN = (bool, int, float, str, type(None))


def choose_engine(
    plan: Plan, asked: str = "auto", address: str | None = None, workers: bool | None = None
) -> EngineChoice:
    """Apply ``search.engine``: ``auto`` picks local unless an option needs Ray (see :func:`ray_needs`).

    Asking ``local`` for something only Ray gives is a :class:`SpecError` naming the option.

    Example:
        >>> choose_engine(plan_for(spec))                   # doctest: +SKIP
        EngineChoice(name='local', reason='auto: ...')
    """
    if asked not in ENGINES:
        raise SpecError(message("Unknown search.engine", asked, f"one of {list(ENGINES)}"))
    needs = ray_needs(plan, address, workers)
    if asked == "ray":
        return EngineChoice("ray", "search.engine: ray")
    if asked == "local":
        if needs:
            option, value, why = needs[0]
            raise SpecError(
                message(
                    f"The local engine cannot run {option}",
                    value,
                    f"a sweep without it on the local engine ({why})",
                    f"Set search.engine: ray (or auto), or drop {option}.",
                )
            )
        return EngineChoice("local", f"search.engine: local, {local_concurrency(plan)} trial(s) at a time")
    if needs:
        option, value, why = needs[0]
        return EngineChoice("ray", f"auto: {option}={value!r} needs Ray ({why})")
    return EngineChoice(
        "local",
        f"auto: one machine, no Ray address and no option that needs Ray; "
        f"{local_concurrency(plan)} trial(s) at a time on {cores()} core(s)",
    )
