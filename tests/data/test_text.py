"""Text tokenisation into padded token ids."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from dltoolkit.data import Preprocessor
from dltoolkit.data.text import build_vocab, encode, tokenize
from dltoolkit.errors import DataError
from dltoolkit.spec import PreprocessSpec, TextSpec


def test_word_and_char_tokenizers():
    assert tokenize("Not GOOD, really!", TextSpec()) == ["not", "good", ",", "really", "!"]
    assert tokenize("Ab c", TextSpec(tokenizer="char", lowercase=False)) == ["A", "b", " ", "c"]
    assert tokenize(np.nan, TextSpec()) == []


def test_vocab_keeps_most_frequent_with_pad_and_unk():
    vocab = build_vocab(["b a a", "c b a", "d"], TextSpec(vocab_size=4))
    assert vocab == ["<pad>", "<unk>", "a", "b"]


def test_encode_pads_cuts_and_marks_unknown():
    vocab = ["<pad>", "<unk>", "a", "b"]
    ids = encode(["a b z", "a b a b a"], vocab, TextSpec(max_len=4))
    assert ids.tolist() == [[2, 3, 1, 0], [2, 3, 2, 3]]
    assert ids.dtype == np.int64


def test_text_preprocessor_shape_dtype_and_state():
    frame = pd.DataFrame({"text": ["a good film", "not a good film", "bad"], "other": [1, 2, 3]})
    pre = Preprocessor(PreprocessSpec(text={"max_len": 6})).fit(frame)
    out = pre.transform(frame)
    assert out.shape == (3, 6) and out.dtype == np.int64
    assert pre.input_shape == (6,) and pre.feature_columns_ == ["text"] and pre.linear_params() is None
    restored = Preprocessor.from_state(json.loads(json.dumps(pre.to_state())))
    np.testing.assert_array_equal(restored.transform(frame), out)


def test_missing_text_column():
    with pytest.raises(DataError, match=r"preprocess.text.column: received 'txt'.*Did you mean 'text'"):
        Preprocessor(PreprocessSpec(text={"column": "txt"})).fit(pd.DataFrame({"text": ["a"]}))
