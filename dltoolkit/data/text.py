"""Text to token ids: word or character tokens, a frequency vocabulary, padding to a fixed length.

Index 0 is ``<pad>`` and index 1 is ``<unk>``; the rest of the vocabulary holds the most frequent
training tokens (ties broken alphabetically, so the vocabulary is deterministic).

Example:
    >>> from dltoolkit.spec import TextSpec
    >>> vocab = build_vocab(["a good film", "a bad film"], TextSpec(vocab_size=4))
    >>> vocab
    ['<pad>', '<unk>', 'a', 'film']
    >>> encode(["a great film"], vocab, TextSpec(max_len=5)).tolist()
    [[2, 1, 3, 0, 0]]
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable

import numpy as np

from dltoolkit.spec import TextSpec

PAD, UNK = "<pad>", "<unk>"
_WORD = re.compile(r"\w+|[^\w\s]")


def tokenize(text: object, config: TextSpec) -> list[str]:
    """Split one text into tokens (missing values give no tokens)."""
    if text is None or (isinstance(text, float) and np.isnan(text)):
        return []
    text = str(text)
    if config.lowercase:
        text = text.lower()
    return _WORD.findall(text) if config.tokenizer == "word" else list(text)


def build_vocab(texts: Iterable[object], config: TextSpec) -> list[str]:
    """The ``vocab_size`` tokens: ``<pad>``, ``<unk>``, then the most frequent tokens of ``texts``."""
    counts = Counter(token for text in texts for token in tokenize(text, config))
    counts.pop(PAD, None)
    counts.pop(UNK, None)
    ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    return [PAD, UNK] + [token for token, _ in ranked[: config.vocab_size - 2]]


def encode(texts: Iterable[object], vocab: list[str], config: TextSpec) -> np.ndarray:
    """Token ids of each text, cut or padded with 0 to ``max_len``: int64 of shape (n, max_len)."""
    index = {token: i for i, token in enumerate(vocab)}
    rows = []
    for text in texts:
        ids = [index.get(token, 1) for token in tokenize(text, config)][: config.max_len]
        rows.append(ids + [0] * (config.max_len - len(ids)))
    return np.asarray(rows, dtype=np.int64).reshape(-1, config.max_len)
