"""The experiment spec: one plain, validated, serialisable description of an experiment.

The API, the command line and the notebook panels all read and write this one object, and a
model bundle carries it. Unknown keys are errors (with the closest valid name), never ignored.

Example:
    >>> spec = Spec.from_dict({"task": {"kind": "regression", "target": "y"},
    ...                        "data": {"source": "seed_linear"},
    ...                        "graph": {"nodes": [{"name": "out", "op": "linear", "units": 1}]}})
    >>> spec.train.optimizer.name
    'adam'
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from dltoolkit._files import atomic_write_text  # noqa: F401  (re-exported: the one atomic writer)
from dltoolkit.errors import SpecError, closest, message


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


# --------------------------------------------------------------------------- task
class TaskSpec(_Section):
    kind: Literal["binary", "multiclass", "regression"]  # what is predicted
    target: str = "target"  # name of the target column
    metrics: list[str] = Field(default_factory=list)  # extra metrics to report (all standard ones are)
    # metric picking the best checkpoint and watched by early stopping; default val_loss. Any
    # logged one: val_loss, val_acc, val_f1, val_precision, val_recall, val_roc_auc (classes);
    # val_mse, val_rmse, val_mae, val_r2 (regression, in the target's units)
    monitor: str | None = None
    class_names: list[str] | None = None  # display names of the classes, in label order
    # loss weight per class: "balanced" (n_rows / (n_classes * rows of the class), from the
    # training split) or {label: weight} (labels as in the target column; others weigh 1)
    class_weights: Literal["balanced"] | dict[str, float] | None = None

    @field_validator("class_weights", mode="before")
    @classmethod
    def _label_keys(cls, value: Any) -> Any:
        # YAML reads the labels 0 and 1 as numbers: the keys are the labels' text, as in class_names
        if isinstance(value, dict):
            return {str(k): v for k, v in value.items()}
        return value

    @field_validator("class_weights")
    @classmethod
    def _positive(cls, value: Any) -> Any:
        if isinstance(value, dict) and any(not w > 0 for w in value.values()):
            raise ValueError(f"weights must be positive numbers, not {value}")
        return value

    @property
    def is_classification(self) -> bool:
        return self.kind != "regression"

    def monitor_metric(self) -> tuple[str, str]:
        """The (metric, mode) that chooses the best checkpoint."""
        name = self.monitor or "val_loss"  # smoother than accuracy on small validation splits
        return name, metric_mode(name)


def metric_mode(name: str) -> str:
    """``"min"`` for a loss or an error (mse, rmse, mae), ``"max"`` for a score (acc, f1, r2...)."""
    return "min" if name.endswith(("loss", "mse", "mae")) else "max"


# --------------------------------------------------------------------------- data
class SplitSpec(_Section):
    test: float = Field(0.2, ge=0.0, lt=1.0)  # fraction held out for the test metrics
    val: float = Field(0.15, ge=0.0, lt=1.0)  # fraction of the rest for validation
    seed: int = 0  # split seed
    stratify: bool = True  # keep class proportions (regression: target-quantile proportions) in each split
    bins: int = Field(5, ge=2)  # regression: quantile bins of the target used to stratify


class DataSpec(_Section):
    # a bundled dataset name, a CSV path, Parquet/CSV table files (a file, a folder of shards or a
    # glob), an image folder or an image manifest (relative paths: to the spec file's folder), or "frame"
    source: str
    # what the source is: auto (a glob, a Parquet file or a folder of Parquet/CSV shards: table files;
    # another folder: images in class subfolders; a CSV/Parquet file with a column of image file
    # paths: a manifest; else a table), table (a bundled dataset, a CSV file or a frame), table_files
    # (one Parquet file, a folder of Parquet or CSV shards, searched recursively, or a glob such as
    # data/part-*.parquet: one table, shards in sorted path order, same columns in each),
    # image_folder (root/<class>/<file>) or image_manifest (a CSV/Parquet file: a path column,
    # relative to the file, and task.target)
    format: Literal["auto", "table", "table_files", "image_folder", "image_manifest"] = "auto"
    # image_manifest: the column of image paths; default: one named path, file, filename, image or filepath
    path_column: str | None = None
    # images: sources whose decoded images (float32, all splits) fit in this many MiB are decoded once
    # and kept in memory when no per-image augmentation is set; others are streamed (decoded in
    # DataLoader worker processes batch by batch, every epoch). table_files: tables whose uncompressed
    # size (Parquet metadata; CSV: bytes on disk) fits are loaded at once; larger ones are streamed
    # (read by row group in DataLoader workers; the preprocessing fitted on the training rows in a
    # streaming pass; only the target column is held in memory). 0: always stream
    in_memory_mb: float = Field(512.0, ge=0.0)
    workers: int | None = Field(
        None, ge=0
    )  # streamed sources: DataLoader worker processes; default min(4, CPUs - 1)
    # the feature columns, in order; default: every column but the target. Numeric columns are
    # scaled, non-numeric ones one-hot encoded, date/time columns (a datetime dtype, or text such
    # as 2021-03-04 in one format) expanded into calendar features (year; month, weekday, day of
    # year and time of day as sin/cos pairs)
    features: list[str] | None = None
    exclude: list[str] = Field(default_factory=list)  # columns to leave out (IDs, leaks of the target)
    categorical: list[str] | None = None  # columns to treat as categories; default: non-numeric ones
    split: SplitSpec = Field(default_factory=SplitSpec)
    options: dict[str, Any] = Field(default_factory=dict)  # arguments of a bundled generator


# --------------------------------------------------------------------------- preprocessing
Scale = Literal["standard", "minmax", "none"]
Impute = Literal["mean", "median", "most_frequent", "none"]


class ColumnSpec(_Section):
    scale: Scale | None = None  # overrides PreprocessSpec.scale for this column
    impute: Impute | None = None
    categorical: bool | None = None


class AugmentSpec(_Section):
    """Random changes to the training inputs (never to validation, test or predict).

    ``shift``, ``flip`` and ``noise`` act on whole batches of model inputs (vectorised, any source).
    The others act on each image of an image source, before normalisation, through
    ``torchvision.transforms.v2`` in the DataLoader workers (such a source is then streamed).
    """

    shift: int = Field(0, ge=0)  # random shift of images in pixels (training only)
    flip: bool = False  # random horizontal flip of images (training only)
    noise: float = Field(0.0, ge=0.0)  # std of Gaussian noise added to the inputs (training only)
    # image sources only, per image:
    vflip: bool = False  # random vertical flip
    rotation: float = Field(0.0, ge=0.0, le=180.0)  # random rotation by up to this many degrees
    color_jitter: float = Field(0.0, ge=0.0, le=1.0)  # brightness, contrast (and saturation) by up to ±this
    # a random crop of this range of the image's area, resized to preprocess.image.size
    # (RandomResizedCrop), instead of the resize and center crop; e.g. [0.5, 1.0]
    crop_scale: tuple[float, float] | None = None
    policy: Literal["none", "trivial", "rand"] = "none"  # TrivialAugmentWide or RandAugment

    @field_validator("crop_scale")
    @classmethod
    def _area_range(cls, value: Any) -> Any:
        if value is not None and not 0.0 < value[0] <= value[1] <= 1.0:
            raise ValueError(f"crop_scale needs 0 < low <= high <= 1, not {list(value)}")
        return value

    def per_image(self) -> bool:
        """True when an augmentation acts on each image (so an image source is streamed)."""
        return bool(self.vflip or self.rotation or self.color_jitter or self.crop_scale) or (
            self.policy != "none"
        )


class ImageSpec(_Section):
    """How each image of an image source becomes the model's ``(channels, height, width)`` input.

    Every image is decoded, converted to ``channels``, resized (``resize`` then a center crop of
    ``size``, or straight to ``size``), scaled to [0, 1] and normalised per channel by ``mean`` and
    ``std``: given here, or fitted on the training split. This deterministic part is saved in the
    model bundle and applied again by predict and serve.
    """

    channels: Literal[1, 3] = 3  # grayscale (1) or RGB (3): every image is converted, whatever its mode
    size: tuple[int, int] = (32, 32)  # (height, width) of the model's input; one number: a square
    # the shorter side resized to this (aspect ratio kept), then a center crop of size; None:
    # resized straight to size (the aspect ratio is not kept)
    resize: int | None = Field(None, ge=1)
    mean: list[float] | None = None  # per channel, in [0, 1] units; None: fitted on the training split
    std: list[float] | None = None  # per channel; given together with mean

    @field_validator("size", mode="before")
    @classmethod
    def _square(cls, value: Any) -> Any:
        return [value, value] if isinstance(value, int) else value

    @field_validator("size")
    @classmethod
    def _positive(cls, value: Any) -> Any:
        if min(value) < 1:
            raise ValueError(f"size needs positive sides, not {list(value)}")
        return value

    @model_validator(mode="after")
    def _statistics(self) -> ImageSpec:
        if (self.mean is None) != (self.std is None):
            raise ValueError("give mean and std together, or neither (both are then fitted)")
        for name, values in (("mean", self.mean), ("std", self.std)):
            if values is not None and len(values) != self.channels:
                raise ValueError(f"{name} needs one value per channel ({self.channels}), not {values}")
        if self.std is not None and min(self.std) <= 0:
            raise ValueError(f"std values must be positive, not {self.std}")
        if self.resize is not None and self.resize < max(self.size):
            raise ValueError(
                f"resize ({self.resize}) must be at least the larger side of size {list(self.size)}"
            )
        return self


class TextSpec(_Section):
    column: str = "text"  # the text column
    # word | char: a vocabulary of the most frequent words or characters; bpe: a subword
    # tokenizer (Hugging Face tokenizers, the text extra) trained on the training split, so an
    # unseen word becomes known pieces instead of <unk>. (No wordpiece: its trainer gives another
    # vocabulary from run to run, huggingface/tokenizers#1794.)
    tokenizer: Literal["word", "char", "bpe"] = "word"
    vocab_size: int = Field(2000, ge=4)  # including <pad> and <unk> (subword: at most this many)
    max_len: int = Field(32, ge=1)  # sequences are padded / cut to this many tokens
    lowercase: bool = True


class PreprocessSpec(_Section):
    scale: Scale = "standard"  # numeric columns
    impute: Impute = "mean"  # numeric missing values (categoricals use the most frequent)
    onehot: bool = True  # one-hot encode categorical columns
    target_scale: Scale = "standard"  # regression targets (predictions are mapped back)
    columns: dict[str, ColumnSpec] = Field(default_factory=dict)  # per-column overrides
    shape: list[int] | None = None  # reshape the features per sample, e.g. [1, 8, 8] or [32, 1]
    augment: AugmentSpec = Field(default_factory=AugmentSpec)
    text: TextSpec | None = None  # tokenise a text column into token ids instead
    image: ImageSpec | None = None  # image sources: decoding, size, normalisation (default ImageSpec())


# --------------------------------------------------------------------------- graph
class NodeSpec(BaseModel):
    """One node: a name, an op from the layer registry, its inputs and the op's attributes.

    Attributes sit beside name/op in YAML (``{name: hidden, op: linear, units: 64}``) and are
    checked against the op's signature when the graph is built.
    """

    model_config = ConfigDict(extra="allow", validate_assignment=True)
    name: str
    op: str
    inputs: list[str] | None = None  # default: the previous node (or the graph input)
    repeat: int = Field(1, ge=1, le=1000)  # stack the op this many times (a repeated block)

    @property
    def attrs(self) -> dict[str, Any]:
        return dict(self.model_extra or {})


class GraphSpec(_Section):
    nodes: list[NodeSpec] = Field(default_factory=list)
    output: str | None = None  # default: the last node
    head: bool = True  # append a linear layer mapping to the task's outputs

    @model_validator(mode="before")
    @classmethod
    def _sequential(cls, value: Any) -> Any:
        # shorthand: {"sequential": [{"op": ...}, ...]} names nodes op_1, op_2...
        if isinstance(value, dict) and "sequential" in value:
            value = dict(value)
            nodes = []
            for i, node in enumerate(value.pop("sequential")):
                node = dict(node) if isinstance(node, dict) else {"op": node}
                node.setdefault("name", f"{node.get('op', 'node')}_{i + 1}")
                nodes.append(node)
            value["nodes"] = nodes
        return value


# --------------------------------------------------------------------------- training
class OptimizerSpec(_Section):
    name: str = "adam"  # sgd, adam, adamw, rmsprop
    lr: float = Field(1e-3, gt=0.0)
    # learning rate of the graph's backbone nodes (pretrained features); default: lr. Fine-tuning
    # usually gives them a tenth of lr or less
    backbone_lr: float | None = Field(None, gt=0.0)
    weight_decay: float = Field(0.0, ge=0.0)
    momentum: float = Field(0.9, ge=0.0, lt=1.0)  # sgd and rmsprop
    nesterov: bool = False  # sgd
    betas: tuple[float, float] = (0.9, 0.999)  # adam, adamw


class ScheduleSpec(_Section):
    name: str = "none"  # none, step, cosine, onecycle, plateau
    warmup_epochs: int = Field(0, ge=0)  # linear warm-up before the schedule
    step_size: int = Field(10, ge=1)  # step: epochs between decays
    gamma: float = Field(0.1, gt=0.0, le=1.0)  # step: decay factor
    factor: float = Field(0.5, gt=0.0, lt=1.0)  # plateau: decay factor
    patience: int = Field(5, ge=0)  # plateau: epochs without improvement
    min_lr: float = Field(0.0, ge=0.0)  # cosine / plateau floor


class TrainSpec(_Section):
    optimizer: OptimizerSpec = Field(default_factory=OptimizerSpec)
    schedule: ScheduleSpec = Field(default_factory=ScheduleSpec)
    batch_size: int = Field(32, ge=1)
    epochs: int = Field(200, ge=1)  # at most; early stopping usually ends training sooner
    steps_per_execution: int = Field(8, ge=1)  # optimizer steps per Lightning step (cuts loop overhead)
    loss: Literal["auto", "cross_entropy", "bce", "mse", "huber"] = "auto"
    label_smoothing: float = Field(0.0, ge=0.0, lt=1.0)  # classification
    early_stopping: int | None = Field(20, ge=1)  # patience in epochs on task.monitor; None: off
    grad_clip: float | None = Field(None, gt=0.0)  # clip the gradient norm to this
    seed: int = 0
    threads: int | None = Field(1, ge=1)  # torch threads (1 is fastest for small models)
    # where training runs: cpu (the default: small models train fastest there), gpu (one CUDA
    # GPU; an error where PyTorch sees none) or auto (gpu when CUDA is available, else cpu); cuda
    # is another name for gpu
    accelerator: Literal["auto", "cpu", "gpu", "cuda"] = "cpu"
    # numeric precision of training: 32 (float32), bf16-mixed (the forward pass in bfloat16
    # autocast; runs on CPU and on recent GPUs) or 16-mixed (float16 autocast with gradient
    # scaling; needs a CUDA GPU). The weights stay float32, so a saved model predicts in float32
    precision: Literal["32", "bf16-mixed", "16-mixed"] = "32"

    @field_validator("precision", mode="before")
    @classmethod
    def _precision_text(cls, value: Any) -> Any:
        # YAML reads precision: 32 as a number; Lightning's own names for it are accepted too
        if isinstance(value, int) and not isinstance(value, bool):
            return str(value)
        return {"32-true": "32", "bf16": "bf16-mixed", "16": "16-mixed"}.get(value, value)


# --------------------------------------------------------------------------- search
class SearchSpec(_Section):
    """A hyperparameter sweep: which fields vary (``space``) and how trials are chosen and stopped.

    ``space`` maps a dotted spec path to one Ray Tune domain, e.g.
    ``{"train.optimizer.lr": {"loguniform": [1e-4, 1e-1]}, "graph.nodes.hidden.units": {"choice": [32, 64]}}``;
    graph nodes are addressed by name (``graph.nodes.<name>.<attribute>``, ``...<name>.repeat``).
    """

    space: dict[str, dict[str, Any]] = Field(default_factory=dict)  # path -> {loguniform: [a, b]}
    metric: str | None = None  # default: the task's monitor metric
    mode: Literal["min", "max"] | None = None  # default: from the metric's name (loss: min)
    samples: int = Field(8, ge=1)  # trials (with grid search: repeats of the whole grid)
    search: str = "random"  # random, grid, optuna
    scheduler: str = "fifo"  # fifo, asha, hyperband, median, pbt
    max_concurrent: int | None = Field(None, ge=1)  # trials running at once; default: as resources allow
    grace_period: int = Field(2, ge=1)  # epochs before a trial may be stopped (PBT: between perturbations)
    max_epochs: int | None = Field(
        None, ge=1
    )  # epochs per trial (the schedulers' max_t); default train.epochs
    cpus_per_trial: float = Field(1.0, gt=0.0)  # Ray resources reserved by each trial
    gpus_per_trial: float = Field(0.0, ge=0.0)
    retries: int = Field(0, ge=0)  # times a failed trial is restarted from its last checkpoint
    reuse_actors: bool = True  # run later trials in finished trials' workers (saves seconds per trial)
    seed: int | None = 0  # seed of the searcher (None: a fresh one each sweep)
    # where trials run: local (Optuna, threads in this process), ray (Ray Tune), or auto: local
    # unless an address is given or an option needs Ray (pbt, gpus_per_trial, more concurrent
    # trials than cores); see dltoolkit.tune.engines.choose_engine
    engine: Literal["auto", "local", "ray"] = "auto"
    # how a Ray sweep's trials read a streamed source (table files, image files): ray_data (Ray Data
    # tasks on the cluster's nodes read and transform the files, streamed to the trial), files (the
    # trial's own DataLoader workers), or auto: ray_data when the sweep runs on a cluster by address,
    # files on a local Ray. In-memory data and the local engine read no files in trials
    read_with: Literal["auto", "ray_data", "files"] = "auto"


# --------------------------------------------------------------------------- tracking
class TrackSpec(_Section):
    """Experiment tracking: runs and sweeps also log to MLflow and/or TensorBoard (off by default).

    A tracking server that cannot be reached gives one warning and the run goes on untracked;
    see :mod:`dltoolkit.track`.
    """

    # MLflow: a tracking URI (a server's http(s)://host:port, or sqlite:///path/mlflow.db), a
    # folder or .db file (a local SQLite store there), or true (sqlite:///<runs folder>/mlflow.db,
    # the runs folder being the one that holds the run's output folder); false or unset: off
    mlflow: bool | str | None = None
    # TensorBoard event files of the per-epoch metrics: a folder, or true (<runs folder>/tensorboard),
    # one sub-folder per run (per trial under a sweep's folder); false or unset: off
    tensorboard: bool | str | None = None
    experiment: str | None = None  # the MLflow experiment the runs go into; default: the spec's name

    @property
    def enabled(self) -> bool:
        return bool(self.mlflow) or bool(self.tensorboard)


# --------------------------------------------------------------------------- the spec
class Spec(_Section):
    name: str = "experiment"
    description: str = ""
    task: TaskSpec
    data: DataSpec
    preprocess: PreprocessSpec = Field(default_factory=PreprocessSpec)
    graph: GraphSpec
    train: TrainSpec = Field(default_factory=TrainSpec)
    search: SearchSpec = Field(default_factory=SearchSpec)
    track: TrackSpec = Field(default_factory=TrackSpec)

    # ---- construction
    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Spec:
        """Validate a plain dict; raise SpecError naming every bad field."""
        if not isinstance(data, dict):
            raise SpecError(message("Invalid spec", type(data).__name__, "a mapping of sections"))
        try:
            return cls.model_validate(data)
        except ValidationError as e:
            raise SpecError(_explain(e)) from None

    @classmethod
    def from_yaml(cls, text: str) -> Spec:
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as e:
            raise SpecError(f"The spec is not valid YAML: {e}") from e
        return cls.from_dict(data)

    @classmethod
    def load(cls, path: str | os.PathLike) -> Spec:
        """Read a YAML or JSON spec file.

        A relative file or folder path in ``data.source`` is taken relative to the spec file's folder (so a
        spec and its CSV move together), and stored as that absolute path. A path that exists
        only relative to the working directory is kept as written (specs saved by older runs);
        bundled dataset names, ``frame`` and absolute paths are unchanged.
        """
        path = Path(path)
        if not path.is_file():
            raise SpecError(message("Spec file not found", str(path), "an existing .yaml or .json file"))
        spec = cls.from_yaml(path.read_text())
        source = _source_beside(spec.data.source, path.parent)
        return spec if source == spec.data.source else spec.with_values({"data.source": source})

    # ---- serialisation
    def to_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude_unset=False)

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    def save(self, path: str | os.PathLike) -> Path:
        """Write YAML (or JSON for a .json path) atomically."""
        path = Path(path)
        text = self.to_json() if path.suffix == ".json" else self.to_yaml()
        atomic_write_text(path, text)
        return path

    # ---- editing
    def with_values(self, values: dict[str, Any]) -> Spec:
        """A new spec with dotted paths replaced, e.g. ``{"train.optimizer.lr": 0.01}``.

        Graph nodes are addressed by name: ``graph.nodes.hidden.units``.
        """
        data = self.to_dict()
        for path, value in values.items():
            set_path(data, path, value)
        return Spec.from_dict(data)

    def get_value(self, path: str) -> Any:
        return get_path(self.to_dict(), path)


# --------------------------------------------------------------------------- helpers
def _walk(data: Any, parts: list[str], path: str, create: bool) -> Any:
    node = data
    for i, part in enumerate(parts):
        if isinstance(node, list):
            named = [n for n in node if isinstance(n, dict) and n.get("name") == part]
            if not named:
                names = [n.get("name") for n in node if isinstance(n, dict)]
                hint = closest(part, [str(n) for n in names if n is not None])
                raise SpecError(
                    message(
                        f"No node named {part!r} in {path!r}",
                        part,
                        f"one of {names}",
                        f"Did you mean {hint!r}?" if hint else None,
                    )
                )
            node = named[0]
        elif isinstance(node, dict):
            if part not in node:
                if create and i == len(parts) - 1:
                    return node
                if create and node.get("op") is not None:  # a node attribute not yet set
                    return node
                hint = closest(part, list(node))
                raise SpecError(
                    message(
                        f"Unknown key {part!r} in {path!r}",
                        part,
                        f"one of {sorted(node)}",
                        f"Did you mean {hint!r}?" if hint else None,
                    )
                )
            node = node[part]
        else:
            raise SpecError(message(f"Cannot descend into {path!r} at {part!r}", node, "a section"))
    return node


def _source_beside(source: str, folder: Path) -> str:
    """``data.source`` resolved against ``folder`` when it is a relative file path (see Spec.load)."""
    candidate = Path(source).expanduser()
    if any(c in source for c in "*?[") and not candidate.is_absolute():  # a glob of table files
        import glob

        beside = str(folder.resolve() / candidate)
        return beside if glob.glob(beside) or not glob.glob(str(candidate)) else source
    looks_like_file = candidate.suffix != "" or len(candidate.parts) > 1
    if candidate.is_absolute() or source == "frame" or not looks_like_file and not (folder / source).exists():
        return source
    resolved = (folder / candidate).resolve()
    if resolved.exists() or not candidate.exists():
        return str(resolved)
    return source  # found only from the working directory: as before


def get_path(data: dict[str, Any], path: str) -> Any:
    """Read a dotted path from a spec dict (graph nodes addressed by name)."""
    return _walk(data, path.split("."), path, create=False)


def set_path(data: dict[str, Any], path: str, value: Any) -> None:
    """Set a dotted path in a spec dict in place (graph nodes addressed by name)."""
    parts = path.split(".")
    parent = _walk(data, parts[:-1], path, create=False) if len(parts) > 1 else data
    if isinstance(parent, dict) and parts[-1] not in parent and "op" not in parent:
        _walk(parent, parts[-1:], path, create=False)  # raises with a hint
    if isinstance(parent, dict) and isinstance(parent.get(parts[-1]), dict) and isinstance(value, dict):
        parent[parts[-1]].update(value)
    else:
        parent[parts[-1]] = value


def flatten(data: Any, prefix: str = "") -> dict[str, Any]:
    """A spec dict as ``{"train.optimizer.lr": 0.003, ...}``: the dotted paths ``with_values`` takes
    (graph nodes keyed by their names); other lists and empty sections are kept whole as values.

    Example:
        >>> flatten({"train": {"optimizer": {"lr": 0.01}}, "graph": {"nodes": [{"name": "h", "op": "linear"}]}})
        {'train.optimizer.lr': 0.01, 'graph.nodes.h.name': 'h', 'graph.nodes.h.op': 'linear'}
    """
    named = isinstance(data, list) and data and all(isinstance(v, dict) and "name" in v for v in data)
    if (isinstance(data, dict) and data) or named:
        items = data.items() if isinstance(data, dict) else ((v["name"], v) for v in data)
        out: dict[str, Any] = {}
        for key, value in items:
            out |= flatten(value, f"{prefix}{key}.")
        return out
    return {prefix[:-1]: data} if prefix else {}


def parse_value(text: str) -> Any:
    """Parse a ``--set key=value`` value as YAML (numbers, lists, booleans, strings)."""
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


def _explain(error: ValidationError) -> str:
    lines = []
    for err in error.errors():
        loc = ".".join(str(p) for p in err["loc"])
        if err["type"] == "extra_forbidden":
            section = _section_at(err["loc"][:-1])
            valid = sorted(section.model_fields) if section else []
            hint = closest(str(err["loc"][-1]), valid)
            fix = f"Did you mean {hint!r}?" if hint else "Remove it."
            lines.append(message(f"Unknown option {loc!r}", err["input"], f"one of {valid}", fix))
        elif err["type"] == "missing":
            lines.append(f"Missing required option {loc!r}: add it to the spec.")
        else:
            lines.append(message(f"Invalid value for {loc!r}", err.get("input"), err["msg"].lower()))
    return "Invalid spec:\n  " + "\n  ".join(lines)


def _section_at(loc: tuple) -> type[BaseModel] | None:
    model: type[BaseModel] | None = Spec
    for part in loc:
        if model is None or not isinstance(part, str) or part not in model.model_fields:
            return None if not isinstance(part, int) else model
        annotation = model.model_fields[part].annotation
        model = next(
            (a for a in _candidates(annotation) if isinstance(a, type) and issubclass(a, BaseModel)), None
        )
    return model


def _candidates(annotation: Any) -> list[Any]:
    args = getattr(annotation, "__args__", None)
    out = [annotation]
    for a in args or ():
        out.extend(_candidates(a))
    return out
