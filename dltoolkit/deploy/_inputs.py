"""The inputs an exported model takes: which raw columns arrive as numbers, strings or texts.

An :class:`InputLayout` is read off a bundle's (or an ensemble's members') fitted preprocessing:

* ``numeric``: the numeric columns, in input-column order, fed together as one float32
  ``features`` tensor ``(batch, len(numeric))`` with NaN where a value is missing;
* ``blocks``: one :class:`Block` per categorical column (per distinct encoding, for an ensemble
  whose members learnt other categories): the string column, its categories, the imputed value
  and one-hot or ordinal codes. The exported graph computes them from the column's strings and
  feeds their concatenation (``encoded``) to the folded network;
* ``texts``: one :class:`Tokens` per text tokeniser: the column, its configuration and vocabulary.

It also builds the rows an export is verified on (the test rows plus rows with gaps and unseen
categories) and the description written into the exported file. No torch here.

Example:
    >>> layout = InputLayout.of(load("runs/mixed/model"))   # doctest: +SKIP
    >>> layout.numeric, [b.column for b in layout.blocks]   # doctest: +SKIP
    (('a', 'b'), ['color'])
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from dltoolkit.data._rows import _is_missing, _label
from dltoolkit.deploy.export import INPUT_NAME, OUTPUT_NAME, ExportError
from dltoolkit.errors import message

UNSEEN = "unseen-category"  # stem of the values the verification rows use as unseen categories
PROBE_TEXTS = (  # texts the verification of a text model adds: empty, case, punctuation, non-ASCII
    "",
    "  The PLOT wasn't GOOD -- at ALL!!  ",
    "Ünïcode façade: naïve café, 東京 İstanbul ΣΟΦΙΑ_x 42 ½",
    "zzz-unknown-word another_unknown_word 123",
)


@dataclass(frozen=True)
class Block:
    """One categorical column as the exported model encodes it (as ``Preprocessor.transform`` does).

    A value is looked up among ``categories``; a missing one (None, NaN, the empty string) becomes
    ``fill`` first when set; a value still not found gives all zeros (one-hot) or -1 (ordinal).
    """

    column: str
    categories: tuple[str, ...]
    fill: str | None
    onehot: bool
    offset: int  # first position in the ``encoded`` tensor

    @property
    def width(self) -> int:
        return len(self.categories) if self.onehot else 1

    def key(self) -> tuple:
        return (self.column, self.categories, self.fill, self.onehot)

    def codes(self, labels: list[str]) -> np.ndarray:
        """int64 codes of ``labels`` (strings, ``""`` for missing): -1 for unknown."""
        index = {c: i for i, c in enumerate(self.categories)}
        missing = index.get(self.fill, -1) if self.fill is not None else -1
        return np.array([index.get(v, -1) if v != "" else missing for v in labels], dtype=np.int64)


@dataclass(frozen=True)
class Tokens:
    """One text tokeniser: the column, the spec's ``preprocess.text`` settings and the vocabulary."""

    column: str
    config: Any  # dltoolkit.spec.TextSpec
    vocab: tuple[str, ...]
    offset: int  # first position in the token-id tensor

    @property
    def width(self) -> int:
        return self.config.max_len

    def key(self) -> tuple:
        return (self.column, json.dumps(self.config.model_dump(mode="json"), sort_keys=True), self.vocab)


@dataclass(frozen=True)
class InputLayout:
    """The raw inputs of an exported model (see the module docstring)."""

    numeric: tuple[str, ...]
    blocks: tuple[Block, ...]
    texts: tuple[Tokens, ...]

    @classmethod
    def of(cls, model: Any) -> InputLayout:
        """The layout of a Predictor or an Ensemble (its members share their raw columns)."""
        members = getattr(model, "members", None) or [model]
        kinds: dict[str, str] = {}
        blocks: dict[tuple, Block] = {}
        texts: dict[tuple, Tokens] = {}
        for member in members:
            pre = member.preprocessor
            if pre.vocab_ is not None:
                column = pre.feature_columns_[0]
                _set_kind(kinds, column, "text")
                token = Tokens(
                    column, pre.config.text, tuple(pre.vocab_), sum(t.width for t in texts.values())
                )
                texts.setdefault(token.key(), token)
            for plan in pre.columns_:
                _set_kind(kinds, plan["name"], plan["kind"])
                if plan["kind"] == "categorical":
                    block = _block(plan, sum(b.width for b in blocks.values()))
                    blocks.setdefault(block.key(), block)
        numeric = tuple(c for c in model.input_columns if kinds.get(c) == "numeric")
        return cls(numeric, tuple(blocks.values()), tuple(texts.values()))

    # ------------------------------------------------------------------ what kind of export
    @property
    def numeric_only(self) -> bool:
        """Only numeric columns: the export takes one ``features`` tensor, as it always did."""
        return not self.blocks and not self.texts

    @property
    def categorical(self) -> tuple[str, ...]:
        """The categorical columns (one string input each), in input-column order."""
        return tuple(dict.fromkeys(b.column for b in self.blocks))

    def block_for(self, plan: dict[str, Any]) -> Block:
        """The block of a categorical column's fitted plan."""
        return next(b for b in self.blocks if b.key() == _block(plan, 0).key())

    def tokens_for(self, pre: Any) -> Tokens:
        """The tokeniser of a fitted text preprocessor."""
        key = Tokens(pre.feature_columns_[0], pre.config.text, tuple(pre.vocab_), 0).key()
        return next(t for t in self.texts if t.key() == key)

    # ------------------------------------------------------------------ feeding
    def features(self, rows: pd.DataFrame) -> np.ndarray:
        """The ``features`` input: the numeric columns as float32, NaN where missing (a writable copy)."""
        values = rows[list(self.numeric)].to_numpy(dtype=np.float32, na_value=np.nan)
        return np.array(values, dtype=np.float32).reshape(len(rows), -1)

    def encoded(self, rows: pd.DataFrame) -> np.ndarray:
        """The one-hot / ordinal codes of every block, float32 ``(n, sum of widths)``."""
        parts = [np.zeros((len(rows), 0), dtype=np.float32)]
        for block in self.blocks:
            codes = block.codes(labels(rows[block.column]))
            if block.onehot:
                parts.append((codes[:, None] == np.arange(block.width)[None, :]).astype(np.float32))
            else:
                parts.append(codes[:, None].astype(np.float32))
        return np.concatenate(parts, axis=1)

    def token_ids(self, rows: pd.DataFrame) -> np.ndarray:
        """The token ids of every tokeniser, int64 ``(n, sum of max_len)``."""
        from dltoolkit.data.text import encode

        parts = [encode(rows[t.column], list(t.vocab), t.config) for t in self.texts]
        return np.concatenate(parts, axis=1)

    # ------------------------------------------------------------------ verification rows
    def probe_rows(self, rows: pd.DataFrame, nullable: set[str]) -> pd.DataFrame:
        """``rows`` plus rows with missing values and unseen categories (or odd texts) to verify on.

        Only columns in ``nullable`` (whose preprocessing imputes) get missing values.
        """
        if self.numeric_only:
            return rows
        base = rows.head(3).reset_index(drop=True)
        probes = []
        for i in range(len(PROBE_TEXTS) if self.texts else 2):
            probe = base.astype(object).copy()
            for column in self.categorical:
                probe[column] = None if i == 0 else f"{UNSEEN}-{i}"
            for t in self.texts:
                probe[t.column] = PROBE_TEXTS[i]
            for column in self.numeric:
                if i == 0 and column in nullable:
                    probe[column] = np.nan
            probes.append(probe)
        out = pd.concat([rows.astype(object).reset_index(drop=True), *probes], ignore_index=True)
        for column in self.numeric:
            out[column] = pd.to_numeric(out[column])
        return out

    # ------------------------------------------------------------------ description
    def describe(self, model: Any, format: str) -> dict[str, Any]:
        """The inputs and the output, as written into the exported file (ONNX metadata, TorchScript extra file)."""
        inputs = []
        if self.numeric:
            inputs.append(
                {
                    "name": INPUT_NAME,
                    "dtype": "float32",
                    "shape": ["batch", len(self.numeric)],
                    "columns": list(self.numeric),
                    "missing": "NaN (imputed as in training; a column trained without imputation gives NaN)",
                }
            )
        for block in self.blocks:
            if block.column not in [i["name"] for i in inputs]:
                inputs.append(
                    {
                        "name": block.column,
                        "dtype": "string",
                        "shape": ["batch"],
                        "categories": list(block.categories),
                        "missing": "the empty string" + (" or None" if format == "torchscript" else ""),
                        "unseen": "all zeros (one-hot) or -1 (ordinal), as in the bundle",
                    }
                )
        for t in self.texts[:1]:
            inputs.append(
                {
                    "name": t.column,
                    "dtype": "string",
                    "shape": ["batch"],
                    "missing": "refused, as by the bundle",
                }
            )
        classes = list(model.classes) if model.classes is not None else None
        output = {
            "name": OUTPUT_NAME,
            "dtype": "float32" if classes else "float64",
            "shape": ["batch", len(classes)] if classes else ["batch"],
            "meaning": "class probabilities, columns in the order of classes"
            if classes
            else "predictions in the target's original units",
        }
        if classes:
            output["classes"] = classes
        return {"producer": "dltoolkit", "format": format, "inputs": inputs, "output": output}


def labels(series: pd.Series) -> list[str]:
    """A categorical column as the exported model takes it: the category text, ``""`` when missing.

    Values are compared by their text as the bundle compares them (``1.0`` is the category ``"1"``).
    """
    return ["" if _is_missing(v) else _label(v) for v in series.to_numpy(dtype=object)]


def _block(plan: dict[str, Any], offset: int) -> Block:
    categories = tuple(plan["categories"])
    if "" in categories:
        raise ExportError(
            message(
                f"Column {plan['name']!r} has the empty string as a category",
                "''",
                "categories that are not empty strings (the exported model reads '' as a missing value)",
                "Replace the empty strings in the training data (e.g. with 'none') and train again, "
                "or serve the model with `dltoolkit serve`.",
            )
        )
    return Block(plan["name"], categories, plan["fill"], bool(plan["onehot"]), offset)


def _set_kind(kinds: dict[str, str], column: str, kind: str) -> None:
    if kind == "date":
        raise ExportError(
            message(
                f"Export does not support date columns such as {column!r}",
                f"date column {column!r}",
                "numeric, categorical or text input columns",
                "Serve this model with `dltoolkit serve`, or turn the date into numbers before training.",
            )
        )
    if kinds.setdefault(column, kind) != kind:
        raise ExportError(
            message(
                f"Ensemble members read column {column!r} differently",
                f"{kinds[column]} in one member, {kind} in another",
                "one kind per column across the members",
                "Export the members one by one, or train them with the same data.categorical.",
            )
        )
