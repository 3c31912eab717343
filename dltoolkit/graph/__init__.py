"""Computation graphs: the layer registry, shape inference, costs, compiling and drawing."""

from dltoolkit.graph.graph import Graph, GraphModule, NodeInfo
from dltoolkit.graph.layers import LAYERS

__all__ = ["Graph", "GraphModule", "NodeInfo", "LAYERS"]
