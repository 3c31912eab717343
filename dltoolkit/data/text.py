"""Text to token ids: word or character tokens, a frequency vocabulary, padding to a fixed length;
or a byte-pair-encoding subword tokenizer (Hugging Face ``tokenizers``) trained on the training rows.

Index 0 is ``<pad>`` and index 1 is ``<unk>``; the rest of the vocabulary holds the most frequent
training tokens (ties broken alphabetically, so the vocabulary is deterministic), or the subwords
the tokenizer learned.

Example:
    >>> from dltoolkit.spec import TextSpec
    >>> vocab = build_vocab(["a good film", "a bad film"], TextSpec(vocab_size=4))
    >>> vocab
    ['<pad>', '<unk>', 'a', 'film']
    >>> encode(["a great film"], vocab, TextSpec(max_len=5)).tolist()
    [[2, 1, 3, 0, 0]]
"""

from __future__ import annotations

import json
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


# --------------------------------------------------------------------------- subword tokenizers
# BPE only: WordPiece's trainer numbers its "##" pieces in hash-map order, so the same rows give
# another vocabulary from run to run (huggingface/tokenizers#1794); BPE's is the same every time.
SUBWORD = ("bpe",)


def is_subword(config: TextSpec) -> bool:
    """True when ``config`` asks for a trained subword tokenizer (``bpe``)."""
    return config.tokenizer in SUBWORD


def _texts(texts: Iterable[object]) -> list[str]:
    return [_text(t) for t in texts]


def _text(t: object) -> str:
    return "" if t is None or (isinstance(t, float) and np.isnan(t)) else str(t)


def train_subword(texts: Iterable[object], config: TextSpec) -> dict:
    """A BPE tokenizer trained on ``texts`` (the training rows, read once in order: a generator
    streams them), as its JSON object.

    ``<pad>`` is id 0 and ``<unk>`` id 1, as in the word vocabulary; text is NFKC-normalised (and
    lowercased with ``lowercase``) and split on whitespace and punctuation before the subword model.
    The JSON is Hugging Face's ``tokenizer.json`` format: ``Tokenizer.from_str(json.dumps(...))``
    reads it back anywhere.
    """
    from dltoolkit._extras import require

    require("text", f"preprocess.text.tokenizer: {config.tokenizer}")
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, trainers

    tokenizer = Tokenizer(models.BPE(unk_token=UNK))
    trainer = trainers.BpeTrainer(
        vocab_size=config.vocab_size, special_tokens=[PAD, UNK], show_progress=False
    )
    steps = [normalizers.NFKC()] + ([normalizers.Lowercase()] if config.lowercase else [])
    tokenizer.normalizer = normalizers.Sequence(steps)
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer.train_from_iterator((_text(t) for t in texts), trainer=trainer)
    return json.loads(tokenizer.to_str())


def subword_vocab(state: dict) -> list[str]:
    """The trained tokenizer's tokens in id order (``<pad>``, ``<unk>``, then the learned ones)."""
    vocab = load_subword(state).get_vocab()
    return sorted(vocab, key=vocab.__getitem__)


def load_subword(state: dict):
    """The ``tokenizers.Tokenizer`` of a JSON object written by :func:`train_subword`."""
    from dltoolkit._extras import require

    require("text", "a model whose text is read by a subword tokenizer")
    from tokenizers import Tokenizer

    return Tokenizer.from_str(json.dumps(state))


def encode_subword(texts: Iterable[object], tokenizer, config: TextSpec) -> np.ndarray:
    """Token ids of each text (a ``tokenizers.Tokenizer``), cut or padded with 0 to ``max_len``."""
    rows = []
    for encoding in tokenizer.encode_batch(_texts(texts), add_special_tokens=False):
        ids = encoding.ids[: config.max_len]
        rows.append(ids + [0] * (config.max_len - len(ids)))
    return np.asarray(rows, dtype=np.int64).reshape(-1, config.max_len)
