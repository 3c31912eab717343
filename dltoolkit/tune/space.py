"""Search spaces: the spec's ``search.space`` parsed into domains addressed by dotted spec paths.

A path is any spec field, graph nodes addressed by name: ``train.optimizer.lr``,
``train.batch_size``, ``graph.nodes.hidden.units``, ``graph.nodes.block.repeat``. A domain is one
of the registered names below with its arguments, exactly as Ray Tune spells them::

    train.optimizer.lr: {loguniform: [0.0001, 0.1]}
    graph.nodes.hidden.units: {choice: [32, 64, 128]}

Parsing and sampling here are plain Python (no Ray import), so the pre-flight check runs before
Ray starts; :meth:`Domain.to_ray` gives the Ray Tune domain when the sweep launches.

Example:
    >>> space = parse_space({"train.optimizer.lr": {"loguniform": [1e-4, 1e-1]}})
    >>> space["train.optimizer.lr"].name, space["train.optimizer.lr"].discrete
    ('loguniform', False)
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from typing import Any

from dltoolkit.errors import SpecError, message
from dltoolkit.registry import Registry

# Paths a trial may change; data and its preprocessing are prepared once per sweep, not per trial.
FIXED_SECTIONS = ("data", "preprocess", "task", "search")
_TUNABLE_PREPROCESS = "preprocess.augment."


@dataclass(frozen=True)
class Domain:
    """One tunable field: a domain name (choice, uniform...) and its arguments."""

    name: str
    args: tuple[Any, ...]

    @property
    def discrete(self) -> bool:
        return self.name in ("choice", "grid")

    def values(self) -> list[Any]:
        """Every value of a discrete domain; the two ends (and the middle) of a continuous one."""
        if self.discrete:
            return list(self.args[0])
        low, high = self.args[0], self.args[1]
        if self.name in ("randint", "lograndint"):
            return sorted({low, (low + high - 1) // 2, high - 1})
        return [low, high]

    def sample(self, rng: random.Random) -> Any:
        return SAMPLERS.get(self.name)(rng, *self.args)

    def to_ray(self) -> Any:
        """The Ray Tune domain (``tune.loguniform(...)``, ``tune.grid_search([...])``...)."""
        from ray import tune

        if self.name == "grid":
            return tune.grid_search(list(self.args[0]))
        if self.name == "choice":
            return tune.choice(list(self.args[0]))
        return getattr(tune, self.name)(*self.args)

    def suggest(self, trial: Any, path: str) -> Any:
        """This domain's value for ``path`` drawn by an Optuna trial (the local engine).

        Ray's integer ranges exclude ``high``; Optuna's include it, hence ``high - 1``.
        """
        if self.discrete:
            return trial.suggest_categorical(path, list(self.args[0]))
        low, high = self.args[0], self.args[1]
        if self.name in ("randint", "lograndint"):
            return trial.suggest_int(path, low, high - 1, log=self.name == "lograndint")
        step = self.args[2] if self.name == "quniform" else None
        return trial.suggest_float(path, low, high, log=self.name == "loguniform", step=step)


SAMPLERS: Registry = Registry("search domain")
SAMPLERS.add("choice", lambda rng, options: rng.choice(list(options)))
SAMPLERS.add("grid", lambda rng, options: rng.choice(list(options)))
SAMPLERS.add("uniform", lambda rng, low, high: rng.uniform(low, high))
SAMPLERS.add("quniform", lambda rng, low, high, q: round(rng.uniform(low, high) / q) * q)
SAMPLERS.add("loguniform", lambda rng, low, high: math.exp(rng.uniform(math.log(low), math.log(high))))
SAMPLERS.add("randint", lambda rng, low, high: rng.randrange(low, high))
SAMPLERS.add("lograndint", lambda rng, low, high: int(math.exp(rng.uniform(math.log(low), math.log(high)))))

_ARITY = {"choice": 1, "grid": 1, "uniform": 2, "loguniform": 2, "randint": 2, "lograndint": 2, "quniform": 3}


def parse_domain(path: str, entry: Any) -> Domain:
    """``{"loguniform": [a, b]}`` -> Domain, checking the name and the arguments."""
    if not isinstance(entry, dict) or len(entry) != 1:
        raise SpecError(
            message(
                f"Invalid search domain for {path!r}",
                entry,
                "one domain with its arguments, e.g. {loguniform: [0.0001, 0.1]} or {choice: [32, 64]}",
            )
        )
    ((name, args),) = entry.items()
    SAMPLERS.get(name)  # unknown -> closest match
    args = tuple(args) if isinstance(args, list | tuple) else (args,)
    if name in ("choice", "grid"):
        args = (
            (list(args),) if not (len(args) == 1 and isinstance(args[0], list | tuple)) else (list(args[0]),)
        )
        if not args[0]:
            raise SpecError(message(f"Empty {name} for {path!r}", [], "at least one value"))
        return Domain(name, args)
    _check_range(path, name, args)
    return Domain(name, args)


def _check_range(path: str, name: str, args: tuple) -> None:
    expected = "[low, high]" if _ARITY[name] == 2 else "[low, high, q]"
    numeric = all(isinstance(a, int | float) and not isinstance(a, bool) for a in args)
    if len(args) != _ARITY[name] or not numeric or not args[0] < args[1]:
        raise SpecError(
            message(f"Invalid {name} range for {path!r}", list(args), f"{expected} numbers with low < high")
        )
    if name.startswith("log") and args[0] <= 0:
        raise SpecError(message(f"Invalid {name} range for {path!r}", list(args), "a positive low end"))
    if "int" in name and not all(isinstance(a, int) for a in args):
        raise SpecError(message(f"Invalid {name} range for {path!r}", list(args), "integers"))


def check_path(path: str) -> None:
    """Reject paths a trial cannot change (data, preprocessing, task: prepared once per sweep)."""
    section = path.split(".", 1)[0]
    if section in FIXED_SECTIONS and not path.startswith(_TUNABLE_PREPROCESS):
        raise SpecError(
            message(
                f"Cannot tune {path!r}",
                path,
                "a path under train., graph. or preprocess.augment.",
                "The data and its preprocessing are prepared once per sweep; run one sweep per choice.",
            )
        )


def parse_space(space: dict[str, Any]) -> dict[str, Domain]:
    """The spec's ``search.space`` as ``{path: Domain}`` (paths are checked against the spec later)."""
    out = {}
    for path, entry in space.items():
        check_path(path)
        out[path] = parse_domain(path, entry)
    return out


def to_ray_space(space: dict[str, Domain]) -> dict[str, Any]:
    """The ``param_space`` of a Ray Tuner: flat dotted paths to Ray domains."""
    return {path: domain.to_ray() for path, domain in space.items()}
