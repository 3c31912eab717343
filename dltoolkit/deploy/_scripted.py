"""TorchScript export: the traced folded network, behind scripted encoders for string inputs.

A numeric model is the traced folded module: ``model(features)``. A model with categorical
columns is a scripted :class:`CategoricalInputs` calling the traced network:
``model(features, {"color": ["red", None, ...], ...})``. A text model is a scripted
:class:`TextInputs` that tokenises as :mod:`dltoolkit.data.text` does: ``model(["a text", "another"])``.
TorchScript strings are UTF-8 bytes, so :class:`Tokenizer` decodes code points itself and looks
their class (word, space, other: Python's ``\\w`` and ``\\s``) up in a table of code-point ranges
built from Python's own ``str.isalnum`` / ``str.isspace``; lowercasing uses ``str.lower`` per
character, with its one context rule (a final capital sigma) from a table built the same way.
Each file carries ``dltoolkit.json`` (read it with ``torch.jit.load(path, _extra_files=...)``).
"""

from __future__ import annotations

import functools
import json
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from dltoolkit.deploy._folded import example_inputs
from dltoolkit.deploy._inputs import Block, InputLayout, Tokens, labels
from dltoolkit.deploy.export import ExportError

EXTRA_FILE = "dltoolkit.json"
# a code point's class for the word tokenizer, and next to a capital sigma for lowercasing (the
# scripted methods spell these numbers out: TorchScript reads no module globals)
WORD, SPACE, OTHER = 0, 1, 2
CASED, IGNORABLE = 1, 2
FINAL_SIGMA = "\u03c2"


class CategoryEncoder(nn.Module):
    """One categorical column's strings to its one-hot (or ordinal) codes, as float32 ``(n, width)``."""

    def __init__(self, block: Block) -> None:
        super().__init__()
        self.column = block.column
        self.index = {c: i for i, c in enumerate(block.categories)}
        self.missing = self.index[block.fill] if block.fill is not None else -1
        self.onehot = block.onehot
        self.register_buffer("arange", torch.arange(block.width).unsqueeze(0))

    def forward(self, categories: dict[str, list[str | None]], n: int) -> torch.Tensor:
        if self.column not in categories:
            raise ValueError("missing categorical column " + self.column + " in the dict of string lists")
        values = categories[self.column]
        if len(values) != n:
            raise ValueError("column " + self.column + ": one string per row of features expected")
        codes: list[int] = []
        for value in values:
            if value is None or value == "":
                codes.append(self.missing)
            else:
                codes.append(self.index.get(value, -1))
        code = torch.tensor(codes, dtype=torch.int64).reshape(-1, 1)
        if self.onehot:
            return (code == self.arange).to(torch.float32)
        return code.to(torch.float32)


class CategoricalInputs(nn.Module):
    """``forward(features, categories)``: numeric features and one list of strings per categorical column."""

    def __init__(self, network: nn.Module, layout: InputLayout) -> None:
        super().__init__()
        self.network = network
        self.encoders = nn.ModuleList([CategoryEncoder(b) for b in layout.blocks])

    def forward(self, features: torch.Tensor, categories: dict[str, list[str | None]]) -> torch.Tensor:
        n = features.shape[0]
        blocks = [torch.zeros((n, 0), dtype=torch.float32)]
        for encoder in self.encoders:
            blocks.append(encoder(categories, n))
        return self.network(features, torch.cat(blocks, 1))


class Tokenizer(nn.Module):
    """:func:`dltoolkit.data.text.encode` in TorchScript: texts to int64 token ids ``(n, max_len)``."""

    def __init__(self, tokens: Tokens) -> None:
        super().__init__()
        config = tokens.config
        self.word = config.tokenizer == "word"
        self.lowercase = bool(config.lowercase)
        self.max_len = int(config.max_len)
        self.index = {t: i for i, t in enumerate(tokens.vocab)}
        starts, kinds = ranges(_char_kind)
        self.register_buffer("starts", torch.tensor(starts, dtype=torch.int64))
        self.register_buffer("kinds", torch.tensor(kinds, dtype=torch.int64))
        self.lower = lowered() if self.lowercase else {0: ""}  # a typed, non-empty placeholder
        starts, kinds = ranges(_sigma_kind) if self.lowercase else ([0], [0])
        self.register_buffer("sigma_starts", torch.tensor(starts, dtype=torch.int64))
        self.register_buffer("sigma_kinds", torch.tensor(kinds, dtype=torch.int64))
        self.final_sigma = FINAL_SIGMA

    def chars(self, text: str) -> tuple[list[str], list[int]]:
        """The code points of ``text`` (UTF-8 decoded by hand): their strings and values."""
        out: list[str] = []
        points: list[int] = []
        i, n = 0, len(text)
        while i < n:
            b = ord(text[i])
            size = 1 if b < 0x80 else 4 if b >= 0xF0 else 3 if b >= 0xE0 else 2
            point = b if size == 1 else b & (0xFF >> (size + 1))
            for k in range(1, size):
                point = (point << 6) | (ord(text[i + k]) & 0x3F)
            out.append(text[i : i + size])
            points.append(point)
            i += size
        return out, points

    def classes(self, points: list[int], starts: torch.Tensor, kinds: torch.Tensor) -> list[int]:
        if len(points) == 0:
            return []
        found: list[int] = kinds[torch.searchsorted(starts, torch.tensor(points), right=True) - 1].tolist()
        return found

    def to_lower(self, chars: list[str], points: list[int]) -> str:
        """``str.lower()``: per character, with Python's rule for a final capital sigma."""
        sigma = self.classes(points, self.sigma_starts, self.sigma_kinds)  # CASED, IGNORABLE or 0
        out: list[str] = []
        for i in range(len(chars)):
            p = points[i]
            if p < 0x80:
                out.append(chars[i].lower())
            elif p == 0x3A3 and self.is_final(sigma, i):  # a capital sigma
                out.append(self.final_sigma)
            else:
                out.append(self.lower.get(p, chars[i]))
        return "".join(out)

    def is_final(self, sigma: list[int], i: int) -> bool:
        j = i - 1
        while j >= 0 and sigma[j] == 2:  # IGNORABLE
            j -= 1
        if j < 0 or sigma[j] != 1:  # CASED
            return False
        j = i + 1
        while j < len(sigma) and sigma[j] == 2:
            j += 1
        return j == len(sigma) or sigma[j] != 1

    def tokenize(self, text: str) -> list[str]:
        chars, points = self.chars(text)
        if self.lowercase:
            chars, points = self.chars(self.to_lower(chars, points))
        if not self.word:
            return chars
        kinds = self.classes(points, self.starts, self.kinds)
        tokens: list[str] = []
        i = 0
        while i < len(chars):
            if kinds[i] == 0:  # WORD: \w+
                j = i
                while j < len(chars) and kinds[j] == 0:
                    j += 1
                tokens.append("".join(chars[i:j]))
                i = j
            else:  # [^\w\s]: one character; whitespace is skipped
                if kinds[i] == 2:  # OTHER
                    tokens.append(chars[i])
                i += 1
        return tokens

    def forward(self, texts: list[str]) -> torch.Tensor:
        rows: list[list[int]] = []
        for text in texts:
            ids: list[int] = []
            for token in self.tokenize(text):
                if len(ids) < self.max_len:
                    ids.append(self.index.get(token, 1))
            rows.append(ids + [0] * (self.max_len - len(ids)))
        return torch.tensor(rows, dtype=torch.int64).reshape(-1, self.max_len)


class TextInputs(nn.Module):
    """``forward(texts)``: one string per row, tokenised, then the traced network."""

    def __init__(self, network: nn.Module, layout: InputLayout) -> None:
        super().__init__()
        self.network = network
        self.tokenizers = nn.ModuleList([Tokenizer(t) for t in layout.texts])

    def forward(self, texts: list[str]) -> torch.Tensor:
        ids = [tokenizer(texts) for tokenizer in self.tokenizers]
        return self.network(torch.cat(ids, 1))


# ---------------------------------------------------------------------- Unicode tables
def _char_kind(c: str) -> int:
    """Python's ``re``: ``\\w`` is ``str.isalnum()`` or ``_``; ``\\s`` is ``str.isspace()``."""
    return WORD if c.isalnum() or c == "_" else SPACE if c.isspace() else OTHER


def _sigma_kind(c: str) -> int:
    """How ``str.lower()`` sees ``c`` next to a capital sigma: skipped (case-ignorable), cased, or not."""
    if not ("A" + c + "\u03a3").lower().endswith(FINAL_SIGMA):
        return 0
    return CASED if (c + "\u03a3").lower().endswith(FINAL_SIGMA) else IGNORABLE


@functools.cache
def ranges(kind: Callable[[str], int]) -> tuple[list[int], list[int]]:
    """``kind`` of every code point as ranges: their first code points and kinds."""
    starts: list[int] = []
    kinds: list[int] = []
    for point in range(0x110000):
        k = 0 if 0xD800 <= point < 0xE000 else kind(chr(point))  # surrogates: not in UTF-8 text
        if not kinds or kinds[-1] != k:
            starts.append(point)
            kinds.append(k)
    return starts, kinds


@functools.cache
def lowered() -> dict[int, str]:
    """The non-ASCII characters whose ``str.lower()`` differs, and what it gives."""
    return {p: chr(p).lower() for p in range(0x80, 0x110000) if chr(p).lower() != chr(p)}


# ---------------------------------------------------------------------- writing
def write_torchscript(
    module: nn.Module, layout: InputLayout, rows: Any, path: Path, description: dict[str, Any]
) -> Callable[[Any], np.ndarray]:
    """Trace (and, for string inputs, script around) ``module``; save to ``path``; return a runner."""
    files = {EXTRA_FILE: json.dumps(description)}
    try:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")
            if layout.numeric_only:
                program = torch.jit.trace(module, example_inputs(layout, rows), check_trace=False)
            else:
                program = torch.jit.script(_wrapped(module, layout, rows))
            torch.jit.save(program, str(path), _extra_files=files)
    except Exception as e:
        raise ExportError(f"TorchScript export failed: {type(e).__name__}: {e}") from e
    loaded = torch.jit.load(str(path))

    def run(frame: Any) -> np.ndarray:
        with torch.inference_mode():
            return loaded(*arguments(layout, frame)).numpy()

    return run


def _wrapped(module: nn.Module, layout: InputLayout, rows: Any) -> nn.Module:
    network = torch.jit.trace(module, example_inputs(layout, rows), check_trace=False)
    return TextInputs(network, layout) if layout.texts else CategoricalInputs(network, layout)


def arguments(layout: InputLayout, rows: Any) -> tuple:
    """The scripted module's arguments for raw rows (see the module docstring)."""
    if layout.numeric_only:
        return (torch.from_numpy(layout.features(rows)),)
    if layout.texts:
        return ([str(v) for v in rows[layout.texts[0].column].to_numpy(dtype=object)],)
    categories = {c: [v or None for v in labels(rows[c])] for c in layout.categorical}
    return torch.from_numpy(layout.features(rows)), categories
