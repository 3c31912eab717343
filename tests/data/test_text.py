"""Text tokenisation into padded token ids."""

from __future__ import annotations

import json
import pickle
import sys

import numpy as np
import pandas as pd
import pytest

from dltoolkit._extras import MissingExtraError
from dltoolkit.data import Preprocessor, prepare
from dltoolkit.data.datasets import DATASETS
from dltoolkit.data.prepare import split_positions
from dltoolkit.data.text import build_vocab, encode, tokenize
from dltoolkit.errors import DataError
from dltoolkit.spec import PreprocessSpec, Spec, TextSpec


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


# --------------------------------------------------------------------------- subword (BPE) tokenizer
def _sentences_spec(**text) -> Spec:
    return Spec.from_dict(
        {
            "task": {"kind": "binary"},
            "data": {"source": "frame", "split": {"test": 0.25, "val": 0.2, "seed": 0}},
            "preprocess": {"text": {"tokenizer": "bpe", "vocab_size": 120, "max_len": 10} | text},
            "graph": {"nodes": []},
        }
    )


def test_the_bpe_tokenizer_is_fitted_on_the_training_rows_only():
    frame = DATASETS.get("sentences")({"n": 200})
    spec = _sentences_spec()
    train, val, test = split_positions(spec, frame["target"])
    frame.loc[frame.index[test], "text"] = "ж zqxjv " + frame["text"].iloc[test]  # only in test rows
    prepared = prepare(spec, frame)
    pre = prepared.preprocessor
    assert pre.vocab_[:2] == ["<pad>", "<unk>"] and len(pre.vocab_) <= 120
    assert "zqxjv" not in pre.vocab_ and "ж" not in pre.vocab_
    assert (prepared.X_test[:, 0] == 1).all()  # "ж": a character no training row has, <unk>
    assert (prepared.X_train != 1).all()  # every training text is made of known pieces
    refit = Preprocessor(spec.preprocess).fit(frame.iloc[train].drop(columns="target"))
    assert refit.tokenizer_ == pre.tokenizer_  # deterministic: the same rows give the same tokenizer


def test_bpe_splits_an_unseen_word_into_known_pieces_and_restores_from_state():
    frame = pd.DataFrame({"text": ["the plot was not good", "a good film", "the film was bad"] * 4})
    pre = Preprocessor(PreprocessSpec(text={"tokenizer": "bpe", "vocab_size": 60, "max_len": 8})).fit(frame)
    assert "goodplot" not in pre.vocab_
    ids = pre.transform(pd.DataFrame({"text": ["goodplot", None]}))
    assert ids.shape == (2, 8) and ids.dtype == np.int64 and 1 not in ids[0, :2] and ids[0, 1] > 1
    assert ids[1].tolist() == [0] * 8  # a missing text: no tokens
    state = json.loads(json.dumps(pre.to_state()))
    assert state["version"] == 3 and state["tokenizer"]["model"]["type"] == "BPE"
    restored = Preprocessor.from_state(state)
    np.testing.assert_array_equal(restored.transform(frame), pre.transform(frame))
    assert pickle.loads(pickle.dumps(restored)).transform(frame).tolist() == pre.transform(frame).tolist()


def test_bpe_without_the_text_extra_names_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "tokenizers", None)  # what Python does for a module that cannot import
    with pytest.raises(MissingExtraError, match=r"tokenizer: bpe needs the text extra.*dltoolkit\[text\]"):
        Preprocessor(PreprocessSpec(text={"tokenizer": "bpe"})).fit(pd.DataFrame({"text": ["a b"]}))
