"""The layer registry: each op builds a ``torch.nn.Module`` from its input shapes and attributes.

A builder is ``fn(in_shapes, ctx, **attrs) -> nn.Module``; shapes exclude the batch dimension.
Builders check the rank of their inputs so that a graph that does not fit fails with the node
and both shapes named, before anything trains.

Example:
    >>> layer = LAYERS.get("linear")(in_shapes=[(4,)], ctx={}, units=3)
    >>> layer.out_features
    3
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from dltoolkit.errors import GraphError
from dltoolkit.registry import Registry

Shape = tuple[int, ...]
LAYERS: Registry[Callable[..., nn.Module]] = Registry("layer")


class ShapeMismatch(GraphError):
    """Raised by a builder when its inputs do not have the shape it needs."""


def _rank(shapes: list[Shape], ranks: tuple[int, ...], layout: str) -> Shape:
    if len(shapes) != 1:
        raise ShapeMismatch(f"takes exactly one input; received {len(shapes)} inputs")
    if len(shapes[0]) not in ranks:
        raise ShapeMismatch(
            f"expects an input of shape {layout}; received {shapes[0]}. "
            "Add a reshape/flatten node before it, or set preprocess.shape"
        )
    return shapes[0]


# --------------------------------------------------------------------------- dense & conv
@LAYERS.register("linear")
def linear(in_shapes, ctx, units: int, bias: bool = True) -> nn.Module:
    shape = _rank(in_shapes, (1, 2, 3), "(features,) or (steps, features)")
    return nn.Linear(shape[-1], int(units), bias=bias)


def _conv(cls, rank: int, layout: str):
    def build(in_shapes, ctx, channels: int, kernel_size: int = 3, stride: int = 1, padding: Any = "same"):
        shape = _rank(in_shapes, (rank + 1,), layout)
        if padding == "same" and stride != 1:
            padding = kernel_size // 2
        return cls(shape[0], int(channels), int(kernel_size), stride=int(stride), padding=padding)

    return build


LAYERS.add("conv1d", _conv(nn.Conv1d, 1, "(channels, length)"))
LAYERS.add("conv2d", _conv(nn.Conv2d, 2, "(channels, height, width)"))


def _pool(cls, rank: int, layout: str):
    def build(in_shapes, ctx, kernel_size: int = 2, stride: int | None = None):
        _rank(in_shapes, (rank + 1,), layout)
        return cls(int(kernel_size), stride=stride)

    return build


LAYERS.add("maxpool1d", _pool(nn.MaxPool1d, 1, "(channels, length)"))
LAYERS.add("maxpool2d", _pool(nn.MaxPool2d, 2, "(channels, height, width)"))
LAYERS.add("avgpool1d", _pool(nn.AvgPool1d, 1, "(channels, length)"))
LAYERS.add("avgpool2d", _pool(nn.AvgPool2d, 2, "(channels, height, width)"))


class GlobalPool(nn.Module):
    """Mean or max over every axis but the first (channels), or over time for sequences."""

    def __init__(self, mode: str, axis: str) -> None:
        super().__init__()
        self.mode, self.axis = mode, axis

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        dims = (1,) if self.axis == "sequence" else tuple(range(2, x.dim()))
        return x.mean(dim=dims) if self.mode == "avg" else x.amax(dim=dims)


def _global(mode: str):
    def build(in_shapes, ctx, axis: str = "spatial"):
        if axis not in ("spatial", "sequence"):
            raise ShapeMismatch(
                f"axis must be 'spatial' (channels first) or 'sequence' (steps first); got {axis!r}"
            )
        _rank(in_shapes, (2, 3), "(channels, ...) or (steps, features)")
        return GlobalPool(mode, axis)

    return build


LAYERS.add("global_avg_pool", _global("avg"))
LAYERS.add("global_max_pool", _global("max"))


# --------------------------------------------------------------------------- normalisation & regularisation
@LAYERS.register("batchnorm")
def batchnorm(in_shapes, ctx, momentum: float = 0.1) -> nn.Module:
    shape = _rank(in_shapes, (1, 2, 3), "(features,), (channels, length) or (channels, height, width)")
    cls = nn.BatchNorm2d if len(shape) == 3 else nn.BatchNorm1d
    return cls(shape[0], momentum=momentum)


@LAYERS.register("layernorm")
def layernorm(in_shapes, ctx) -> nn.Module:
    return nn.LayerNorm(_rank(in_shapes, (1, 2, 3), "(..., features)")[-1])


@LAYERS.register("dropout")
def dropout(in_shapes, ctx, p: float = 0.5) -> nn.Module:
    if not 0.0 <= float(p) < 1.0:
        raise ShapeMismatch(f"dropout p must be in [0, 1); got {p}")
    return nn.Dropout(float(p))


# --------------------------------------------------------------------------- activations
for _name, _cls in {
    "relu": nn.ReLU,
    "gelu": nn.GELU,
    "tanh": nn.Tanh,
    "sigmoid": nn.Sigmoid,
    "silu": nn.SiLU,
}.items():
    LAYERS.add(_name, lambda in_shapes, ctx, _cls=_cls: _cls())


@LAYERS.register("leaky_relu")
def leaky_relu(in_shapes, ctx, negative_slope: float = 0.01) -> nn.Module:
    return nn.LeakyReLU(negative_slope)


@LAYERS.register("softmax")
def softmax(in_shapes, ctx, dim: int = -1) -> nn.Module:
    return nn.Softmax(dim=dim)


# --------------------------------------------------------------------------- shape ops
@LAYERS.register("flatten")
def flatten(in_shapes, ctx) -> nn.Module:
    return nn.Flatten()


class Reshape(nn.Module):
    def __init__(self, shape: Shape) -> None:
        super().__init__()
        self.shape = tuple(shape)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.reshape(x.shape[0], *self.shape)


@LAYERS.register("reshape")
def reshape(in_shapes, ctx, shape: list[int]) -> nn.Module:
    (src,) = in_shapes
    if math.prod(src) != math.prod(shape):
        raise ShapeMismatch(f"cannot reshape {tuple(src)} ({math.prod(src)} values) to {tuple(shape)}")
    return Reshape(tuple(shape))


# --------------------------------------------------------------------------- sequences
class Embedding(nn.Module):
    def __init__(self, num: int, dim: int, max_len: int | None) -> None:
        super().__init__()
        self.tokens = nn.Embedding(num, dim, padding_idx=0)
        self.positions = nn.Parameter(torch.zeros(max_len, dim)) if max_len else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.tokens(x.long())
        return out if self.positions is None else out + self.positions[: x.shape[1]]


@LAYERS.register("embedding")
def embedding(in_shapes, ctx, dim: int, vocab_size: int | None = None, positional: bool = False) -> nn.Module:
    (steps,) = _rank(in_shapes, (1,), "(steps,) of token ids")
    num = vocab_size or ctx.get("vocab_size")
    if not num:
        raise ShapeMismatch("needs vocab_size (set it, or tokenise text with preprocess.text)")
    return Embedding(int(num), int(dim), steps if positional else None)


class Recurrent(nn.Module):
    def __init__(self, rnn: nn.Module, return_sequences: bool) -> None:
        super().__init__()
        self.rnn, self.return_sequences = rnn, return_sequences

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out, _ = self.rnn(x)
        return out if self.return_sequences else out[:, -1]


def _recurrent(cls):
    def build(
        in_shapes,
        ctx,
        units: int,
        layers: int = 1,
        bidirectional: bool = False,
        return_sequences: bool = False,
        dropout: float = 0.0,
    ):
        shape = _rank(in_shapes, (2,), "(steps, features)")
        rnn = cls(
            shape[-1],
            int(units),
            num_layers=int(layers),
            batch_first=True,
            bidirectional=bidirectional,
            dropout=dropout if layers > 1 else 0.0,
        )
        return Recurrent(rnn, return_sequences)

    return build


LAYERS.add("lstm", _recurrent(nn.LSTM))
LAYERS.add("gru", _recurrent(nn.GRU))


class SelfAttention(nn.Module):
    def __init__(self, dim: int, heads: int, dropout: float) -> None:
        super().__init__()
        self.attn = nn.MultiheadAttention(dim, heads, dropout=dropout, batch_first=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.attn(x, x, x, need_weights=False)[0]


def _heads_fit(dim: int, heads: int) -> None:
    if dim % int(heads):
        raise ShapeMismatch(f"features ({dim}) must be divisible by heads ({heads}); change one of them")


@LAYERS.register("attention")
def attention(in_shapes, ctx, heads: int = 4, dropout: float = 0.0) -> nn.Module:
    dim = _rank(in_shapes, (2,), "(steps, features)")[-1]
    _heads_fit(dim, heads)
    return SelfAttention(dim, int(heads), dropout)


@LAYERS.register("transformer_encoder")
def transformer_encoder(
    in_shapes,
    ctx,
    heads: int = 4,
    ff: int = 128,
    dropout: float = 0.1,
    layers: int = 1,
    activation: str = "gelu",
) -> nn.Module:
    dim = _rank(in_shapes, (2,), "(steps, features)")[-1]
    _heads_fit(dim, heads)
    layer = nn.TransformerEncoderLayer(
        dim, int(heads), int(ff), dropout, activation=activation, batch_first=True, norm_first=True
    )
    return nn.TransformerEncoder(layer, int(layers), enable_nested_tensor=False)


# --------------------------------------------------------------------------- merges
class Add(nn.Module):
    def forward(self, *xs: torch.Tensor) -> torch.Tensor:
        out = xs[0]
        for x in xs[1:]:
            out = out + x
        return out


class Concat(nn.Module):
    def __init__(self, axis: int) -> None:
        super().__init__()
        self.axis = axis

    def forward(self, *xs: torch.Tensor) -> torch.Tensor:
        return torch.cat(xs, dim=self.axis)


@LAYERS.register("add")
def add(in_shapes, ctx) -> nn.Module:
    if len(in_shapes) < 2 or len(set(map(tuple, in_shapes))) != 1:
        raise ShapeMismatch(
            f"needs two or more inputs of the same shape; received {[tuple(s) for s in in_shapes]}"
        )
    return Add()


@LAYERS.register("concat")
def concat(in_shapes, ctx, axis: int = -1) -> nn.Module:
    rest = {tuple(s[:axis] + s[axis + 1 :]) if axis != -1 else tuple(s[:-1]) for s in map(list, in_shapes)}
    if len(in_shapes) < 2 or len(rest) != 1:
        raise ShapeMismatch(
            f"needs two or more inputs matching on every axis but {axis}; received "
            f"{[tuple(s) for s in in_shapes]}"
        )
    return Concat(axis if axis < 0 else axis + 1)


MERGES = {"add", "concat"}


# --------------------------------------------------------------------------- pretrained backbones
@LAYERS.register("backbone")
def backbone(
    in_shapes,
    ctx,
    arch: str,
    weights: str | None = None,
    freeze: str = "none",
    unfreeze_after: int | None = None,
) -> nn.Module:
    """A torchvision architecture without its classifier: images (3, H, W) to (features,).

    ``weights``: a local state-dict file or a torchvision weights name found in the torch hub cache
    (never downloaded); ``freeze``: all, none, or the last stage to freeze; ``unfreeze_after``: epochs
    before every stage trains. See :mod:`dltoolkit.graph.backbones`.
    """
    from dltoolkit.graph import backbones

    if len(in_shapes) != 1:
        raise ShapeMismatch(f"takes exactly one input; received {len(in_shapes)} inputs")
    return backbones.build(
        tuple(in_shapes[0]), str(arch), weights, str(freeze), unfreeze_after, ctx.get("pretrained", True)
    )
