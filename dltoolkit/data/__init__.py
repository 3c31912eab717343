"""Data: bundled datasets, loading, checks against the task, splits and fitted preprocessing.

Example:
    >>> from dltoolkit.spec import Spec
    >>> spec = Spec.from_dict({"task": {"kind": "regression"}, "data": {"source": "seed_linear",
    ...     "split": {"test": 0, "val": 0}}, "graph": {"nodes": []}})
    >>> prepare(spec).X_train.shape
    torch.Size([4, 1])
"""

from dltoolkit.data.augment import make_augment
from dltoolkit.data.datasets import DATASETS
from dltoolkit.data.load import load_raw
from dltoolkit.data.prepare import Prepared, prepare
from dltoolkit.data.preprocess import Preprocessor
from dltoolkit.data.target import TargetEncoder

__all__ = ["DATASETS", "Prepared", "Preprocessor", "TargetEncoder", "load_raw", "make_augment", "prepare"]
