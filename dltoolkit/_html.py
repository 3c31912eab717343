"""HTML for notebook reprs and panels, escaped: names and values from a spec or data never become markup.

A spec's name, a column name, a category or a sweep's config value is user data; shown raw in
JupyterLab, ``<img src=x onerror=...>`` would run script. Every piece of HTML that dltoolkit builds
goes through :func:`esc` (text) or :func:`table` (a DataFrame).

Example:
    >>> esc("<b>x</b>")
    '&lt;b&gt;x&lt;/b&gt;'
"""

from __future__ import annotations

import html
from typing import Any


def esc(value: Any) -> str:
    """``str(value)`` with ``& < > " '`` escaped."""
    return html.escape(str(value), quote=True)


def table(frame: Any, cls: str | None = None, index: bool = False, na_rep: str = "") -> str:
    """A DataFrame as an HTML table with every cell, header and index label escaped."""
    return frame.to_html(
        index=index,
        classes=cls,
        border=0,
        na_rep=na_rep,
        escape=True,
        float_format=lambda v: f"{v:.4g}",
    )
