"""Fine-tuning schedules for backbone nodes: unfreeze after N epochs, as a Lightning callback.

A backbone node with ``freeze: all`` (or a stage) and ``unfreeze_after: N`` trains only the rest of
the graph for N epochs, then every stage of the backbone (fastai's ``fine_tune``: a frozen phase,
then the whole network). The backbone's parameters are in the optimizer from the start, in their
own group at ``train.optimizer.backbone_lr`` (:func:`dltoolkit.train.optim.param_groups`); a frozen
parameter gets no gradient, so unfreezing only has to let gradients flow again.

Example:
    >>> callbacks = finetune_callbacks(graph.compile())   # doctest: +SKIP
"""

from __future__ import annotations

import logging

import pytorch_lightning as pl
from pytorch_lightning.callbacks import BaseFinetuning, Callback
from torch import nn
from torch.optim import Optimizer

from dltoolkit.graph.backbones import Backbone, backbones

log = logging.getLogger(__name__)


class BackboneUnfreeze(BaseFinetuning):
    """Freeze each backbone as its node says before training; unfreeze it after ``unfreeze_after`` epochs.

    Args:
        nodes: the backbones to schedule (each with ``unfreeze_after`` set).
    """

    def __init__(self, nodes: list[Backbone]) -> None:
        super().__init__()
        self.nodes = nodes
        self.unfrozen_at: dict[int, int] = {}  # id(backbone) -> the epoch it was unfrozen at

    def freeze_before_training(self, pl_module: pl.LightningModule) -> None:
        for node in self.nodes:
            node.freeze(node.freeze_spec)

    def finetune_function(self, pl_module: pl.LightningModule, epoch: int, optimizer: Optimizer) -> None:
        # >=: a run resumed after the unfreezing epoch trains the whole backbone too
        for node in self.nodes:
            if node.unfreeze_after is not None and epoch >= node.unfreeze_after and node.frozen:
                node.unfreeze()
                self.unfrozen_at[id(node)] = epoch
                log.info("Unfroze the %s backbone at epoch %d", node.arch, epoch + 1)


def finetune_callbacks(model: nn.Module) -> list[Callback]:
    """The callbacks ``model``'s backbone nodes need (none when no node has ``unfreeze_after``)."""
    scheduled = [b for b in backbones(model) if b.unfreeze_after is not None]
    return [BackboneUnfreeze(scheduled)] if scheduled else []
