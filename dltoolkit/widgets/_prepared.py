"""Prepared data for the current spec, cached on the sections that change it (task, data, preprocess)."""

from __future__ import annotations

import json
import threading
from typing import Any

from dltoolkit.data import Prepared, prepare
from dltoolkit.spec import Spec

_lock = threading.Lock()
_cache: dict[tuple[str, int], Prepared] = {}


def data_key(spec: Spec, data: Any) -> tuple[str, int]:
    sections = spec.to_dict()
    return json.dumps([sections["task"], sections["data"], sections["preprocess"]], sort_keys=True), id(data)


def prepared(spec: Spec, data: Any = None) -> Prepared:
    """``prepare(spec, data)``, reused while the data-related sections stay the same."""
    key = data_key(spec, data)
    with _lock:
        hit = _cache.get(key)
    if hit is not None:
        return hit
    result = prepare(spec, data)
    with _lock:
        if len(_cache) > 8:
            _cache.clear()
        _cache[key] = result
    return result


def build_graph(spec: Spec, data: Any = None):
    """The shape-inferred Graph of ``spec`` (raises GraphError/SpecError/DataError with a clear message)."""
    from dltoolkit.bundle import graph_for

    ready = prepared(spec, data)
    return graph_for(spec, ready.preprocessor, ready.n_outputs)
