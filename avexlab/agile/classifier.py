"""A small classifier on frozen embeddings, with an explicit background output.

:class:`AgileClassifier` owns every step between a raw store embedding and a probability: the
standardisation (per-dimension mean and scale, set once at :meth:`~AgileClassifier.fit` from the whole
store's statistics or the training rows), the linear layer (or a one-hidden-layer MLP), the calibration,
and the per-class thresholds. Training and inference both go through :meth:`~AgileClassifier.logits`, so
they cannot normalise differently (a custom classifier that standardised training embeddings but not
inference ones scored pure noise at ~100% confidence).

Outputs: one sigmoid per target class plus one for :data:`~avexlab.agile.labels.BACKGROUND` ("none of
the target classes"); a window may hold several classes. Targets come from the label table
(:func:`training_data`): 1 = positive, 0 = negative, -1 = not labelled (left out of the loss). Classes
are balanced by weighting positives and negatives of each output equally (``class_weight="balanced"``).
The loss is minimised by full-batch L-BFGS from a seeded start: the same labels and seed give the same
classifier.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import polars as pl
import torch
from torch import nn

from avexlab.errors import expected_found
from avexlab.fsutil import atomic_write
from avexlab.threads import torch_threads

from .labels import BACKGROUND, LabelTable
from .store import EmbeddingStore, StoreError

__all__ = ["AgileClassifier", "TrainingData", "cross_val_logits", "training_data"]

CLASSIFIER_VERSION = 1


# ------------------------------------------------------------------------------------ training data
class TrainingData:
    """Labelled windows as arrays: ``rows [n]`` (store rows), ``X [n, D]`` float32, ``Y [n, C + 1]`` int8
    (1 positive, 0 negative, -1 unknown; last column = background), ``classes`` (C names), ``groups [n]``
    (recording ids, for grouped cross-validation)."""

    def __init__(
        self, rows: np.ndarray, X: np.ndarray, Y: np.ndarray, classes: list[str], groups: np.ndarray
    ) -> None:
        self.rows, self.X, self.Y, self.classes, self.groups = rows, X, Y, classes, groups

    @property
    def outputs(self) -> list[str]:
        return [*self.classes, BACKGROUND]

    def __len__(self) -> int:
        return int(self.rows.shape[0])


def training_data(
    store: EmbeddingStore, labels: LabelTable | pl.DataFrame, classes: Sequence[str] | None = None
) -> TrainingData:
    """Targets of every labelled window (current labels: the latest entry per window and label).

    For class ``c``: positive -> 1, negative -> 0. A background window is 0 for every class and 1 for
    the background output; a window positive for any class is 0 for background; otherwise unknown (-1).
    ``classes`` defaults to every label with a positive. A window that is both background and positive
    for a class is a contradiction, and a class with only positives (or only negatives) cannot be
    learned: both raise StoreError.
    """
    cur = labels.current() if isinstance(labels, LabelTable) else labels
    if classes is None:
        classes = sorted(
            cur.filter((pl.col("value") == "positive") & (pl.col("label") != BACKGROUND))["label"]
            .unique()
            .to_list()
        )
    classes = list(classes)
    if BACKGROUND in classes:
        raise StoreError(
            expected_found("classes", f"target classes (not {BACKGROUND!r})", str(classes), "Drop it.")
        )
    if not classes:
        raise StoreError(
            expected_found(
                "labels", "at least one positive window of a class", "none", "Label some examples first."
            )
        )
    cur = cur.filter(pl.col("label").is_in([*classes, BACKGROUND]))
    if not ((cur["value"] == "positive") & (cur["label"] != BACKGROUND)).any():
        raise StoreError(
            expected_found(
                "labels",
                f"at least one positive window of {classes}",
                f"{cur.height} label(s), none a positive of those classes",
                "Label some examples first (search, then label the hits).",
            )
        )
    wids = cur["window_id"].unique(maintain_order=True).to_list()
    rows = store.rows_of(wids)
    pos = {w: i for i, w in enumerate(wids)}
    Y = np.full((len(wids), len(classes) + 1), -1, dtype=np.int8)
    col = {c: j for j, c in enumerate(classes)}
    bg = len(classes)
    is_bg = np.zeros(len(wids), dtype=bool)
    for wid, label, value in cur.select("window_id", "label", "value").iter_rows():
        i = pos[wid]
        if label == BACKGROUND:
            is_bg[i] = value == "positive"
        else:
            Y[i, col[label]] = 1 if value == "positive" else 0
    any_pos = (Y[:, :bg] == 1).any(axis=1)
    clash = np.flatnonzero(is_bg & any_pos)
    if clash.size:
        raise StoreError(
            expected_found(
                "labels",
                "background windows without any positive class",
                f"{clash.size} window(s) labelled both, e.g. {wids[clash[0]]!r}",
                "Append a correction: a negative for the class, or label the window for that class only.",
            )
        )
    Y[is_bg, :bg] = 0
    Y[is_bg, bg] = 1
    Y[any_pos, bg] = 0
    one_sided = [c for j, c in enumerate(classes) if not ((Y[:, j] == 1).any() and (Y[:, j] == 0).any())]
    if one_sided:
        raise StoreError(
            expected_found(
                "labels",
                "positives and negatives (or background windows) for every class",
                f"only one kind for {one_sided}",
                "Label windows without the class too: negatives of it, or background windows (a classifier "
                "that has seen only positives calls everything positive).",
            )
        )
    order = np.argsort(rows, kind="stable")
    rows, Y = rows[order], Y[order]
    groups = store.windows["recording_id"].to_numpy()[rows]
    return TrainingData(rows, store.vectors(rows), Y, classes, groups)


# ------------------------------------------------------------------------------------------- model
def _net(dim: int, outputs: int, hidden: int) -> nn.Module:
    if hidden <= 0:
        return nn.Linear(dim, outputs)
    return nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, outputs))


class AgileClassifier:
    """Standardisation + linear layer (``hidden=0``) or MLP (``hidden`` units) + calibration + thresholds.

    Args:
        hidden: hidden units of an optional MLP (0 = linear).
        l2: weight decay of the loss (``l2 / 2 * ||W||^2`` per output, scaled by the number of labels).
        class_weight: ``"balanced"`` (positives and negatives of each output weigh the same in total) or
            ``None`` (every label weighs 1).
        max_iter: L-BFGS iterations.
        seed: initial weights.

    Attributes after :meth:`fit`: ``classes`` (C), ``outputs`` (C + 1, background last), ``mean_`` and
    ``scale_`` ``[D]``, ``calibration`` (see :class:`~avexlab.agile.calibration.Calibrator`), ``thresholds``
    (class -> probability; 0.5 until calibrated), ``encoder_hash`` of the store it was trained on.
    """

    def __init__(
        self,
        *,
        hidden: int = 0,
        l2: float = 1e-2,
        class_weight: Literal["balanced"] | None = "balanced",
        max_iter: int = 200,
        seed: int = 0,
    ) -> None:
        self.hidden = int(hidden)
        self.l2 = float(l2)
        self.class_weight = class_weight
        self.max_iter = int(max_iter)
        self.seed = int(seed)
        self.classes: list[str] = []
        self.mean_: np.ndarray | None = None
        self.scale_: np.ndarray | None = None
        self.net: nn.Module | None = None
        self.calibration: Any = None
        self.thresholds: dict[str, float] = {}
        self.encoder_hash: str | None = None
        self.info: dict[str, Any] = {}

    @property
    def outputs(self) -> list[str]:
        return [*self.classes, BACKGROUND]

    # ------------------------------------------------------------------------------ normalisation
    def transform(self, X: np.ndarray) -> np.ndarray:
        """Standardise raw store embeddings ``[n, D]`` with the statistics set at fit time. The one place
        normalisation happens, for training and inference alike."""
        if self.mean_ is None or self.scale_ is None:
            raise StoreError(
                expected_found("classifier", "a fitted one", "an unfitted one", "Call fit first.")
            )
        X = np.asarray(X, dtype=np.float32)
        if X.ndim != 2 or X.shape[1] != self.mean_.shape[0]:
            raise StoreError(
                expected_found(
                    "embeddings",
                    f"[n, {self.mean_.shape[0]}]",
                    f"shape {X.shape}",
                    "Use the store's encoder.",
                )
            )
        return ((X - self.mean_) / self.scale_).astype(np.float32)

    def logits(self, X: np.ndarray) -> np.ndarray:
        """Uncalibrated logits ``[n, C + 1]`` of raw store embeddings (standardised here)."""
        if self.net is None:
            raise StoreError(
                expected_found("classifier", "a fitted one", "an unfitted one", "Call fit first.")
            )
        Z = torch.from_numpy(self.transform(X))
        with torch.no_grad():
            return self.net(Z).numpy().astype(np.float32)

    def predict_proba(self, X: np.ndarray, *, calibrated: bool = True) -> np.ndarray:
        """Probabilities ``[n, C + 1]`` (sigmoid of the calibrated logits; background last)."""
        z = self.logits(X)
        if calibrated and self.calibration is not None:
            z = self.calibration.apply(z)
        from scipy.special import expit

        return expit(z.astype(np.float64)).astype(np.float32)

    # ------------------------------------------------------------------------------------- fitting
    def fit(
        self,
        X: np.ndarray,
        Y: np.ndarray,
        classes: Sequence[str],
        *,
        stats: tuple[np.ndarray, np.ndarray] | None = None,
        encoder_hash: str | None = None,
    ) -> AgileClassifier:
        """Fit on raw embeddings ``X [n, D]`` and targets ``Y [n, C + 1]`` (1 / 0 / -1 unknown).

        ``stats``: ``(mean [D], std [D])`` for the standardisation, normally ``store.stats()`` (every
        window of the archive, so that a handful of labels does not set the scale); default: those of ``X``.
        Calibration and thresholds are reset (they belonged to the previous fit).
        """
        X = np.asarray(X, dtype=np.float32)
        Y = np.asarray(Y)
        if Y.shape != (X.shape[0], len(classes) + 1):
            raise StoreError(
                expected_found(
                    "targets", f"[{X.shape[0]}, {len(classes) + 1}]", f"{Y.shape}", "Use training_data()."
                )
            )
        mean, std = stats if stats is not None else (X.mean(0), X.std(0))
        self.mean_ = np.asarray(mean, dtype=np.float32)
        self.scale_ = np.where(np.asarray(std) > 1e-12, np.asarray(std), 1.0).astype(np.float32)
        self.classes = list(classes)
        self.encoder_hash = encoder_hash
        self.calibration = None
        self.thresholds = {c: 0.5 for c in self.classes}
        known = torch.from_numpy(Y >= 0)
        target = torch.from_numpy(np.clip(Y, 0, 1).astype(np.float32))
        weight = known.float()
        if self.class_weight == "balanced":
            n_pos = (target * weight).sum(0)
            n_neg = ((1 - target) * weight).sum(0)
            n = weight.sum(0)
            w_pos = torch.where(n_pos > 0, n / (2 * n_pos.clamp_min(1)), torch.zeros_like(n))
            w_neg = torch.where(n_neg > 0, n / (2 * n_neg.clamp_min(1)), torch.zeros_like(n))
            weight = weight * (target * w_pos + (1 - target) * w_neg)
        elif self.class_weight is not None:
            raise StoreError(
                expected_found("class_weight", "'balanced' or None", repr(self.class_weight), "Pick one.")
            )
        Z = torch.from_numpy(self.transform(X))
        gen = torch.Generator().manual_seed(self.seed)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(int(torch.randint(0, 2**31 - 1, (1,), generator=gen)))
            net = _net(X.shape[1], len(classes) + 1, self.hidden)
        decay = [p for p in net.parameters() if p.ndim >= 2]
        n_lab = max(1.0, float(known.any(1).sum()))
        opt = torch.optim.LBFGS(
            net.parameters(), lr=1.0, max_iter=self.max_iter, history_size=20, line_search_fn="strong_wolfe"
        )

        def objective() -> torch.Tensor:
            z = net(Z)
            bce = nn.functional.binary_cross_entropy_with_logits(z, target, weight=weight, reduction="sum")
            return bce / n_lab + 0.5 * self.l2 * sum((p * p).sum() for p in decay)

        def closure() -> torch.Tensor:
            opt.zero_grad()
            loss = objective()
            loss.backward()
            return loss

        with torch_threads(1):  # tiny problems: one thread is faster, and the result machine-independent
            opt.step(closure)
        with torch.no_grad():
            final = float(objective())
        self.net = net.eval()
        self.info = {
            "n_labelled": int(known.any(1).sum()),
            "loss": final,
            "positives": {o: int((Y[:, j] == 1).sum()) for j, o in enumerate(self.outputs)},
            "negatives": {o: int((Y[:, j] == 0).sum()) for j, o in enumerate(self.outputs)},
        }
        return self

    # ---------------------------------------------------------------------------------- persistence
    def save(self, directory: str | os.PathLike[str]) -> Path:
        """Write ``classifier.json`` (everything but the weights) and ``weights.safetensors``."""
        from safetensors.torch import save_file

        if self.net is None or self.mean_ is None or self.scale_ is None:
            raise StoreError(
                expected_found("classifier", "a fitted one", "an unfitted one", "Call fit first.")
            )
        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        tensors = {f"net.{k}": v.detach().contiguous() for k, v in self.net.state_dict().items()}
        tensors["mean"] = torch.from_numpy(self.mean_)
        tensors["scale"] = torch.from_numpy(self.scale_)
        atomic_write(d / "weights.safetensors", lambda t: save_file(tensors, str(t)))
        meta = {
            "version": CLASSIFIER_VERSION,
            "hidden": self.hidden,
            "l2": self.l2,
            "class_weight": self.class_weight,
            "max_iter": self.max_iter,
            "seed": self.seed,
            "classes": self.classes,
            "encoder_hash": self.encoder_hash,
            "calibration": None if self.calibration is None else self.calibration.to_dict(),
            "thresholds": self.thresholds,
            "info": self.info,
        }
        atomic_write(d / "classifier.json", json.dumps(meta, indent=2))
        return d

    @classmethod
    def load(cls, directory: str | os.PathLike[str]) -> AgileClassifier:
        """Read a classifier written by :meth:`save`."""
        from safetensors.torch import load_file

        from .calibration import Calibrator

        d = Path(directory)
        if not (d / "classifier.json").is_file():
            raise StoreError(
                expected_found(
                    "classifier", f"classifier.json in {d}", "none", "Train one with `avexlab agile train`."
                )
            )
        meta = json.loads((d / "classifier.json").read_text())
        clf = cls(
            hidden=meta["hidden"],
            l2=meta["l2"],
            class_weight=meta["class_weight"],
            max_iter=meta["max_iter"],
            seed=meta["seed"],
        )
        t = load_file(str(d / "weights.safetensors"))
        clf.mean_ = t["mean"].numpy()
        clf.scale_ = t["scale"].numpy()
        clf.classes = list(meta["classes"])
        net = _net(clf.mean_.shape[0], len(clf.classes) + 1, clf.hidden)
        net.load_state_dict({k.removeprefix("net."): v for k, v in t.items() if k.startswith("net.")})
        clf.net = net.eval()
        clf.encoder_hash = meta["encoder_hash"]
        clf.calibration = None if meta["calibration"] is None else Calibrator.from_dict(meta["calibration"])
        clf.thresholds = {k: float(v) for k, v in meta["thresholds"].items()}
        clf.info = meta.get("info", {})
        return clf

    def check_store(self, store: EmbeddingStore) -> None:
        """Refuse a store whose encoder differs from the one this classifier was trained on."""
        if self.encoder_hash is not None and self.encoder_hash != store.encoder_meta["hash"]:
            raise StoreError(
                expected_found(
                    "store for this classifier",
                    f"embeddings of the encoder it was trained on ({self.encoder_hash[:12]})",
                    f"a store of encoder {store.encoder_meta['hash'][:12]}",
                    "Train a classifier on this store (labels carry over: they name windows, not embeddings).",
                )
            )


def cross_val_logits(
    data: TrainingData,
    *,
    folds: int = 5,
    seed: int = 0,
    stats: tuple[np.ndarray, np.ndarray] | None = None,
    **params: Any,
) -> np.ndarray:
    """Out-of-fold logits ``[n, C + 1]`` of the labelled windows: each scored by a classifier trained
    without its recording (folds group whole recordings, so overlapping windows of one recording never
    sit on both sides). These honest scores are what calibration and thresholds are fitted on."""
    from sklearn.model_selection import GroupKFold

    uniq = np.unique(data.groups)
    n_folds = min(folds, len(uniq))
    if n_folds < 2:
        raise StoreError(
            expected_found(
                "labelled windows",
                "windows from at least 2 recordings (folds hold out whole recordings)",
                f"{len(uniq)} recording(s)",
                "Label windows of more recordings.",
            )
        )
    rng = np.random.default_rng(seed)
    perm = {g: i for i, g in enumerate(rng.permutation(uniq))}
    group_ids = np.asarray([perm[g] for g in data.groups])
    out = np.zeros(data.Y.shape, dtype=np.float32)
    for train, test in GroupKFold(n_splits=n_folds).split(data.X, groups=group_ids):
        clf = AgileClassifier(seed=seed, **params).fit(
            data.X[train], data.Y[train], data.classes, stats=stats
        )
        out[test] = clf.logits(data.X[test])
    return out
