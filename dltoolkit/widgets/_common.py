"""Small pieces the panels share: figures as PNG bytes, tables as HTML, the message box."""

from __future__ import annotations

import html
import io
import traceback
from typing import Any

import ipywidgets as w

from dltoolkit import _html
from dltoolkit.errors import DLToolkitError


def png(fig: Any) -> bytes:
    """A matplotlib Figure as PNG bytes (Agg canvas, no pyplot)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=80, bbox_inches="tight")
    return buffer.getvalue()


def table_html(frame: Any, cls: str = "dlt-table", index: bool = False, na_rep: str = "") -> str:
    """A DataFrame as a compact HTML table carrying a CSS class the browser tests find (all text
    escaped; ``na_rep`` stands for missing values)."""
    return _html.table(frame, cls, index, na_rep)


def explain(error: BaseException) -> str:
    """The text shown for an error: our own messages as they are, anything else with its type."""
    if isinstance(error, DLToolkitError | ValueError | KeyError | TypeError | OSError):
        text = str(error.args[0]) if isinstance(error, KeyError) and error.args else str(error)
        return text if isinstance(error, DLToolkitError) else f"{type(error).__name__}: {text}"
    last = traceback.format_exception_only(type(error), error)[-1].strip()
    return f"Unexpected error ({last})."


class MessageBox(w.HTML):
    """One line telling the user what happened: an error in red, information in grey."""

    def __init__(self, cls: str = "dlt-message") -> None:
        super().__init__(value="")
        self.add_class(cls)
        self.text = ""
        self.is_error = False

    def error(self, error: BaseException | str) -> None:
        self.text = error if isinstance(error, str) else explain(error)
        self.is_error = True
        self.value = f'<div class="dlt-error" style="color:#b00020;white-space:pre-wrap">{html.escape(self.text)}</div>'

    def info(self, text: str) -> None:
        self.text, self.is_error = text, False
        self.value = f'<div class="dlt-info" style="color:#444">{html.escape(text)}</div>' if text else ""

    def clear(self) -> None:
        self.info("")


def wrap() -> w.Layout:
    """A row that wraps onto the next line when the page is too narrow (JupyterLab at 1024 px)."""
    return w.Layout(flex_flow="row wrap", align_items="flex-start")


def labelled(widget: w.Widget, cls: str) -> w.Widget:
    widget.add_class(cls)
    return widget


class Picture(w.Image):
    """A PNG image widget that stays hidden until it has something to show."""

    def show(self, fig: Any) -> None:
        self.value = png(fig)
        self.layout.display = None


def image(cls: str) -> Picture:
    # never wider than its box: a narrow page (JupyterLab at 1024 px) scales the picture down
    return labelled(Picture(format="png", layout=w.Layout(max_width="min(640px, 100%)", display="none")), cls)


def whole_labels(*widgets: w.Widget) -> None:
    """Give the widgets' descriptions the room they need ("Learning rate", not "Learning r...")."""
    for widget in widgets:
        widget.style.description_width = "initial"
