"""Image sources: an ImageFolder tree or a manifest of files, decoded in DataLoader workers.

* :mod:`~dltoolkit.data.images.source`: which files, with which targets (nothing decoded);
* :mod:`~dltoolkit.data.images.transform`: decoding and the ``torchvision.transforms.v2`` pipeline,
  the fitted :class:`ImagePreprocessor` a bundle carries;
* :mod:`~dltoolkit.data.images.stream`: the dataset decoded in worker processes, the first pass
  that checks every file and fits the normalisation;
* :mod:`~dltoolkit.data.images.prepare`: the splits, in memory or streamed;
* :mod:`~dltoolkit.data.images.predictor`: predictions from paths, folders or decoded arrays;
* :mod:`~dltoolkit.data.images.samples`: a small labelled image folder written from scikit-learn's digits.

Nothing here imports torchvision until a transform is built.
"""
