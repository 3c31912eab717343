"""Figure helpers: figures without pyplot (so no global state) and atomic PNG writes."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from dltoolkit._files import atomic_path
from dltoolkit.errors import DataError, message

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure


def new_axes(ncols: int = 1, *, figsize: tuple[float, float] = (5.5, 4.0), **kw: Any) -> list[Axes]:
    """A fresh :class:`matplotlib.figure.Figure` (not registered with pyplot) and its axes in one row."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize, layout="constrained")
    grid: np.ndarray = fig.subplots(1, ncols, squeeze=False, **kw)  # squeeze=False: always 2-D, of Axes
    return list(grid[0])


def figure_of(ax: Axes) -> Figure:
    """The :class:`~matplotlib.figure.Figure` ``ax`` draws into (the root one for an Axes in a subfigure)."""
    from matplotlib.figure import Figure

    fig = ax.figure
    return fig if isinstance(fig, Figure) else fig.figure


def given_axes(ax: object, n_max: int) -> list[Axes]:
    """Normalise ``plot``'s ``ax`` argument (one Axes or a sequence of up to ``n_max``) to a list."""
    axes: list[Any]
    try:
        axes = [ax] if hasattr(ax, "plot") else list(ax)  # type: ignore[call-overload]
    except TypeError:
        axes = []
    if not 1 <= len(axes) <= n_max or not all(hasattr(a, "plot") for a in axes):
        raise DataError(
            message("plot(ax=...) got an unusable value", ax, f"one matplotlib Axes or up to {n_max}")
        )
    return axes


def save_png(fig: Figure, path: Path, dpi: int = 100) -> Path:
    """Write ``fig`` to ``path`` as PNG atomically (temp file beside it, then rename), then clear it."""
    try:
        with atomic_path(path) as tmp, open(tmp, "wb") as f:
            fig.savefig(f, format="png", dpi=dpi)
    finally:
        fig.clear()
    return path
