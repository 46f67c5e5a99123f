"""Probes on frozen embeddings with a scikit-learn-like interface: the paper's linear probe and an MLP.

The recipe follows the paper's reference code (``avex`` 1.4.0, ``evaluation/finetune.py``,
``train_and_eval_offline``): AdamW (lr 1e-3, weight decay 0.01), batch 32, shuffled each epoch; the
learning rate warms up linearly per EPOCH for 5 epochs (``lr * e / 5`` in epoch ``e``), then follows a
per-step cosine from ``lr`` down to ``0.01 lr`` over the remaining steps; cross-entropy for single-label,
BCE-with-logits for multi-label. The validation score (accuracy, or the paper's mAP for multi-label) is
computed after every epoch and the weights of the best epoch (strictly better than every earlier one) are
restored at the end and used on test. The reference feeds the RAW embeddings to the probe (no
standardisation); ``standardize=True`` is available but off by default. The defaults of the classes are
this recipe exactly.

Small training sets: 30 epochs of batch 32 are 30 optimiser steps per 32 clips, so a split of 120 clips
gets 120 steps and the probe is far from converged (log-mel statistics on the quick world's
syn-beans-clf: accuracy .32 with this recipe, .50 standardised over 400 steps, .61 for scikit-learn's
converged logistic regression). ``min_steps`` raises the
number of epochs to ``ceil(min_steps / steps_per_epoch)`` when that is larger (``epochs_`` records the
number run); with ``min_steps=500`` the recipe is unchanged for every training split of 513+ clips.

One deliberate difference: the reference starts its "best" at 0.0, so a probe whose validation score is
0 in every epoch keeps the LAST epoch's weights; here the first epoch always counts, so the best epoch
is always a real one (identical whenever any epoch scores above 0).
"""

from __future__ import annotations

import abc
import copy
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from numpy.typing import ArrayLike
from torch import nn

from avexlab.errors import EvaluationError, expected_found
from avexlab.threads import torch_threads

from .metrics import accuracy, mean_average_precision

__all__ = ["LinearProbe", "MLPProbe", "fit_linear_probes"]


def _as_features(x: ArrayLike | torch.Tensor, name: str) -> np.ndarray:
    a = x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)
    if a.ndim != 2 or a.shape[0] == 0:
        raise EvaluationError(
            expected_found(
                name, "a [N, D] float array with N >= 1", f"shape {a.shape}", "Pass one row per clip."
            )
        )
    if not np.isfinite(a).all():
        raise EvaluationError(expected_found(name, "finite values", "NaN or inf", "Check the embeddings."))
    return a.astype(np.float32, copy=False)


class _Probe(abc.ABC):
    """Shared training loop; subclasses build the module in :meth:`_build`."""

    def __init__(
        self,
        *,
        epochs: int = 30,
        lr: float = 1e-3,
        weight_decay: float = 0.01,
        batch_size: int = 32,
        warmup_epochs: int = 5,
        min_lr_ratio: float = 0.01,
        min_steps: int = 0,
        multi_label: bool | None = None,
        n_classes: int | None = None,
        standardize: bool = False,
        device: str | torch.device = "cpu",
        random_state: int = 0,
    ) -> None:
        self.epochs = epochs
        self.lr = lr
        self.weight_decay = weight_decay
        self.batch_size = batch_size
        self.warmup_epochs = warmup_epochs
        self.min_lr_ratio = min_lr_ratio
        self.min_steps = min_steps
        self.multi_label = multi_label
        self.n_classes = n_classes
        self.standardize = standardize
        self.device = device
        self.random_state = random_state

    # ----------------------------------------------------------------- hooks
    @abc.abstractmethod
    def _build(self, d_in: int, d_out: int) -> nn.Module:
        """The probe network mapping ``[N, d_in]`` embeddings to ``[N, d_out]`` logits."""

    # ----------------------------------------------------------------- labels
    def _encode_targets(self, y: Any, fitting: bool) -> np.ndarray:
        """Single-label: ``[N]`` int64 indices into ``classes_``. Multi-label: ``[N, C]`` float32."""
        if fitting:
            multi = self.multi_label
            if multi is None:
                if isinstance(y, np.ndarray):
                    multi = y.ndim == 2
                else:
                    seq = list(y)
                    multi = bool(seq) and isinstance(seq[0], list | tuple | set | np.ndarray)
            self.multi_label_ = bool(multi)
        if not self.multi_label_:
            y_arr = np.asarray(y)
            if y_arr.ndim != 1:
                raise EvaluationError(
                    expected_found("y", "[N] class labels", f"shape {y_arr.shape}", "Use multi_label=True.")
                )
            if fitting:
                self.classes_ = np.unique(y_arr)
                if self.n_classes is not None and self.n_classes != self.classes_.size:
                    raise EvaluationError(
                        expected_found(
                            "training labels",
                            f"{self.n_classes} classes (n_classes)",
                            f"{self.classes_.size}",
                            "Give every class at least one training clip, or fix n_classes.",
                        )
                    )
            idx = np.searchsorted(self.classes_, y_arr)
            idx = np.clip(idx, 0, self.classes_.size - 1)
            unknown = self.classes_[idx] != y_arr
            if unknown.any():
                raise EvaluationError(
                    expected_found(
                        "labels",
                        f"labels from the probe's label space ({self.classes_.size} classes seen in fit)",
                        f"{int(unknown.sum())} clips with unseen labels, e.g. {y_arr[unknown][:3].tolist()}",
                        "Evaluate on a split with the same label space as the training split.",
                    )
                )
            return idx.astype(np.int64)
        if isinstance(y, np.ndarray) and y.ndim == 2:
            mh = y
            if not np.isin(mh, (0, 1)).all():
                raise EvaluationError(
                    expected_found("y", "a {0, 1} multi-hot matrix", "other values", "Fix.")
                )
        else:
            rows = [list(r) for r in y]
            c = self.n_classes if self.n_classes is not None else (self.n_outputs_ if not fitting else None)
            if c is None:
                c = 1 + max((max(r) for r in rows if r), default=0)
            mh = np.zeros((len(rows), c), dtype=np.float32)
            for i, r in enumerate(rows):  # building the target matrix, not a batch path
                if r and (min(r) < 0 or max(r) >= c):
                    raise EvaluationError(
                        expected_found("y", f"class indices in [0, {c})", f"{r} in row {i}", "Set n_classes.")
                    )
                mh[i, r] = 1.0
        if not fitting and mh.shape[1] != self.n_outputs_:
            raise EvaluationError(
                expected_found(
                    "multi-hot labels",
                    f"{self.n_outputs_} classes (the probe's label space)",
                    f"{mh.shape[1]}",
                    "Use the label space the probe was fitted with.",
                )
            )
        return mh.astype(np.float32)

    # ----------------------------------------------------------------- fit
    def fit(
        self,
        X: ArrayLike,
        y: ArrayLike | Sequence[Sequence[int]],
        X_val: ArrayLike | None = None,
        y_val: ArrayLike | Sequence[Sequence[int]] | None = None,
    ) -> _Probe:
        """Train on ``X`` ``[N, D]`` float embeddings and ``y`` (``[N]`` labels; or, multi-label, a
        ``[N, C]`` multi-hot matrix or a list of class-index lists). With ``X_val``/``y_val`` the best
        validation epoch is restored; without them the last epoch is kept. Returns ``self``."""
        x = _as_features(X, "X")
        t = self._encode_targets(y, fitting=True)
        if t.shape[0] != x.shape[0]:
            raise EvaluationError(
                expected_found("y", f"{x.shape[0]} rows", f"{t.shape[0]}", "Align X and y.")
            )
        self.n_features_in_ = x.shape[1]
        self.n_outputs_ = int(t.shape[1]) if self.multi_label_ else int(self.classes_.size)
        if self.standardize:
            self.mean_ = x.mean(axis=0)
            self.scale_ = x.std(axis=0)
            self.scale_[self.scale_ == 0] = 1.0
        xv: np.ndarray | None = None
        tv: np.ndarray | None = None
        if X_val is not None and y_val is not None:
            xv = self._prep(X_val, "X_val")
            tv = self._encode_targets(y_val, fitting=False)

        dev = torch.device(self.device)
        # Module init and dropout draw from torch's global generator: seed it inside a forked RNG state so
        # that fit is deterministic by random_state and leaves the caller's RNG untouched.
        # One torch thread: the result must not depend on the core count (or on how many evaluation
        # processes share it); a probe's batches are far too small for intra-op threads to pay off.
        with torch.random.fork_rng(devices=[dev] if dev.type == "cuda" else []), torch_threads(1):
            torch.manual_seed(self.random_state)
            self._train(x, t, xv, tv, dev)
        return self

    def _train(
        self, x: np.ndarray, t: np.ndarray, xv: np.ndarray | None, tv: np.ndarray | None, dev: torch.device
    ) -> None:
        has_val = xv is not None and tv is not None
        gen = torch.Generator().manual_seed(self.random_state)
        self.model_ = self._build(x.shape[1], self.n_outputs_).to(dev)
        xt = torch.as_tensor(self._scale(x), device=dev)
        yt = torch.as_tensor(t, device=dev)
        opt = torch.optim.AdamW(self.model_.parameters(), lr=self.lr, weight_decay=self.weight_decay)
        loss_fn: nn.Module = nn.BCEWithLogitsLoss() if self.multi_label_ else nn.CrossEntropyLoss()
        n = x.shape[0]
        steps_per_epoch = math.ceil(n / self.batch_size)
        if self.epochs < 1 or self.min_steps < 0:
            raise EvaluationError(
                expected_found(
                    "probe length",
                    "epochs >= 1 and min_steps >= 0",
                    f"epochs={self.epochs}, min_steps={self.min_steps}",
                    "Fix the probe's arguments.",
                )
            )
        epochs = max(self.epochs, math.ceil(self.min_steps / steps_per_epoch))
        self.epochs_ = epochs
        cosine_steps = max(1, (epochs - self.warmup_epochs) * steps_per_epoch)
        step = 0
        best = -math.inf
        self.history_: list[dict[str, float]] = []
        self.best_epoch_ = epochs
        best_state = None
        for epoch in range(1, epochs + 1):
            self.model_.train()
            perm = torch.randperm(n, generator=gen).to(dev)
            total = 0.0
            for start in range(0, n, self.batch_size):
                if epoch <= self.warmup_epochs:
                    lr = self.lr * epoch / self.warmup_epochs
                else:
                    frac = min(step, cosine_steps) / cosine_steps
                    lo = self.lr * self.min_lr_ratio
                    lr = lo + 0.5 * (self.lr - lo) * (1.0 + math.cos(math.pi * frac))
                    step += 1
                for group in opt.param_groups:
                    group["lr"] = lr
                idx = perm[start : start + self.batch_size]
                loss = loss_fn(self.model_(xt[idx]), yt[idx])
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                total += float(loss.detach()) * idx.numel()
            record = {"epoch": float(epoch), "train_loss": total / n}
            if has_val:
                val = self._score_encoded(xv, tv)
                record["val_score"] = val
                if val > best:
                    best = val
                    self.best_epoch_ = epoch
                    best_state = copy.deepcopy(self.model_.state_dict())
            self.history_.append(record)
        if best_state is not None:
            self.model_.load_state_dict(best_state)
        self.best_val_score_ = best if has_val else float("nan")
        self.model_.eval()

    # ----------------------------------------------------------------- inference
    def _scale(self, x: np.ndarray) -> np.ndarray:
        return (x - self.mean_) / self.scale_ if self.standardize else x

    def _prep(self, X: ArrayLike, name: str) -> np.ndarray:
        x = _as_features(X, name)
        if x.shape[1] != self.n_features_in_:
            raise EvaluationError(
                expected_found(
                    name,
                    f"{self.n_features_in_} features (as in fit)",
                    f"{x.shape[1]}",
                    "Use embeddings from the same encoder, layer and pooling as the training set.",
                )
            )
        return x

    @torch.no_grad()
    def _logits(self, x: np.ndarray) -> np.ndarray:
        self.model_.eval()
        dev = next(self.model_.parameters()).device
        with torch_threads(1):
            out = self.model_(torch.as_tensor(self._scale(x), device=dev))
        return out.float().cpu().numpy()

    def _score_encoded(self, x: np.ndarray, t: np.ndarray) -> float:
        logits = self._logits(x)
        if self.multi_label_:
            return mean_average_precision(logits, t.astype(bool))
        return accuracy(t, logits.argmax(axis=1))

    def encode_targets(self, y: ArrayLike | Sequence[Sequence[int]]) -> np.ndarray:
        """Targets in the probe's label space: ``[N]`` indices into ``classes_`` (single-label) or a
        ``[N, C]`` float32 multi-hot matrix. Raises :class:`EvaluationError` for labels outside it."""
        self._check_fitted()
        return self._encode_targets(y, fitting=False)

    def _check_fitted(self) -> None:
        if not hasattr(self, "model_"):
            raise EvaluationError(
                expected_found("probe", "a fitted probe", "an unfitted one", "Call fit(X, y, X_val, y_val).")
            )

    def decision_function(self, X: ArrayLike) -> np.ndarray:
        """Logits ``[N, C]`` float32."""
        self._check_fitted()
        return self._logits(self._prep(X, "X"))

    def predict_proba(self, X: ArrayLike) -> np.ndarray:
        """``[N, C]``: softmax (single-label, columns in ``classes_`` order) or per-class sigmoid."""
        logits = torch.as_tensor(self.decision_function(X), dtype=torch.float64)
        p = torch.sigmoid(logits) if self.multi_label_ else torch.softmax(logits, dim=1)
        return p.numpy()

    def predict(self, X: ArrayLike) -> np.ndarray:
        """Single-label: ``[N]`` labels from ``classes_`` (argmax). Multi-label: ``[N, C]`` bool where the
        sigmoid is >= 0.5."""
        logits = self.decision_function(X)
        if self.multi_label_:
            return logits >= 0.0
        return self.classes_[logits.argmax(axis=1)]

    def score(self, X: ArrayLike, y: ArrayLike | Sequence[Sequence[int]]) -> float:
        """Accuracy (single-label) or the paper's mAP over all classes (multi-label)."""
        self._check_fitted()
        return self._score_encoded(self._prep(X, "X"), self._encode_targets(y, fitting=False))


class LinearProbe(_Probe):
    """The paper's linear probe: one ``nn.Linear(D, C)`` on frozen embeddings. See the module docstring
    for the training recipe; every hyper-parameter is a keyword of ``__init__`` (nothing is built until
    :meth:`fit`). Attributes after fit: ``classes_`` (single-label), ``n_outputs_``, ``epochs_``, ``best_epoch_``,
    ``best_val_score_``, ``history_``, ``model_``."""

    def _build(self, d_in: int, d_out: int) -> nn.Module:
        return nn.Linear(d_in, d_out)


class MLPProbe(_Probe):
    """A small MLP probe: ``Linear -> ReLU -> Dropout`` per hidden layer, then ``Linear(., C)``. Same
    recipe and interface as :class:`LinearProbe`; ``hidden_dims`` and ``dropout`` are the extra keywords."""

    def __init__(self, *, hidden_dims: Sequence[int] = (256,), dropout: float = 0.0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.hidden_dims = hidden_dims
        self.dropout = dropout

    def _build(self, d_in: int, d_out: int) -> nn.Module:
        layers: list[nn.Module] = []
        for h in self.hidden_dims:
            layers += [nn.Linear(d_in, h), nn.ReLU(), nn.Dropout(self.dropout)]
            d_in = h
        layers.append(nn.Linear(d_in, d_out))
        return nn.Sequential(*layers)


def fit_linear_probes(
    X: ArrayLike,
    y: ArrayLike | Sequence[Sequence[int]],
    X_val: ArrayLike,
    y_val: ArrayLike | Sequence[Sequence[int]],
    seeds: Sequence[int],
    **kwargs: Any,
) -> list[LinearProbe]:
    """``[LinearProbe(random_state=s, **kwargs).fit(X, y, X_val, y_val) for s in seeds]``, trained together.

    The probes of several seeds see the same data and recipe; only their initialisation and batch order
    differ. Stacked into one ``[S, D, C]`` weight tensor they take one batched step per optimiser step
    instead of S small ones (the step overhead dominates a probe's cost). Each seed's initialisation,
    batch order, loss, AdamW update, validation score and best epoch are its own, as in a separate fit;
    the only difference is the order of float sums in the batched matrix products (float32 rounding).
    One seed is fitted the ordinary way."""
    seeds = [int(s) for s in seeds]
    probes = [LinearProbe(random_state=s, **kwargs) for s in seeds]
    if len(probes) == 1:
        return [probes[0].fit(X, y, X_val, y_val)]
    head = probes[0]
    x = _as_features(X, "X")
    t = head._encode_targets(y, fitting=True)
    if t.shape[0] != x.shape[0]:
        raise EvaluationError(expected_found("y", f"{x.shape[0]} rows", f"{t.shape[0]}", "Align X and y."))
    head.n_features_in_ = x.shape[1]
    head.n_outputs_ = int(t.shape[1]) if head.multi_label_ else int(head.classes_.size)
    if head.standardize:
        head.mean_ = x.mean(axis=0)
        head.scale_ = x.std(axis=0)
        head.scale_[head.scale_ == 0] = 1.0
    xv = head._prep(X_val, "X_val")
    tv = head._encode_targets(y_val, fitting=False)
    for p in probes[1:]:
        for attr in ("multi_label_", "n_features_in_", "n_outputs_", "classes_", "mean_", "scale_"):
            if hasattr(head, attr):
                setattr(p, attr, getattr(head, attr))
    dev = torch.device(head.device)
    with torch.random.fork_rng(devices=[dev] if dev.type == "cuda" else []), torch_threads(1):
        _train_stacked(probes, head._scale(x), t, head._scale(xv), tv, dev)
    return probes


def _train_stacked(
    probes: list[LinearProbe], x: np.ndarray, t: np.ndarray, xv: np.ndarray, tv: np.ndarray, dev: torch.device
) -> None:
    """The training loop of :meth:`_Probe._train` for ``len(probes)`` linear probes at once."""
    head = probes[0]
    s_count, (n, d), c = len(probes), x.shape, head.n_outputs_
    inits = []
    for p in probes:  # each seed's nn.Linear initialisation, drawn as a separate fit draws it
        torch.manual_seed(p.random_state)
        inits.append(nn.Linear(d, c))
    weight = nn.Parameter(torch.stack([m.weight.detach().T for m in inits]).to(dev))  # [S, D, C]
    bias = nn.Parameter(torch.stack([m.bias.detach() for m in inits]).to(dev))  # [S, C]
    gens = [torch.Generator().manual_seed(p.random_state) for p in probes]
    xt = torch.as_tensor(x, device=dev)
    yt = torch.as_tensor(t, device=dev)
    opt = torch.optim.AdamW([weight, bias], lr=head.lr, weight_decay=head.weight_decay)
    steps_per_epoch = math.ceil(n / head.batch_size)
    if head.epochs < 1 or head.min_steps < 0:
        raise EvaluationError(
            expected_found(
                "probe length", "epochs >= 1 and min_steps >= 0",
                f"epochs={head.epochs}, min_steps={head.min_steps}", "Fix the probe's arguments.",
            )
        )  # fmt: skip
    epochs = max(head.epochs, math.ceil(head.min_steps / steps_per_epoch))
    cosine_steps = max(1, (epochs - head.warmup_epochs) * steps_per_epoch)
    xv_t = torch.as_tensor(xv, device=dev)
    step = 0
    best = [-math.inf] * s_count
    best_state: list[tuple[torch.Tensor, torch.Tensor] | None] = [None] * s_count
    histories: list[list[dict[str, float]]] = [[] for _ in probes]
    best_epoch = [epochs] * s_count
    for epoch in range(1, epochs + 1):
        perms = torch.stack([torch.randperm(n, generator=g) for g in gens]).to(dev)  # [S, N]
        totals = torch.zeros(s_count, dtype=torch.float64)
        for start in range(0, n, head.batch_size):
            if epoch <= head.warmup_epochs:
                lr = head.lr * epoch / head.warmup_epochs
            else:
                frac = min(step, cosine_steps) / cosine_steps
                lo = head.lr * head.min_lr_ratio
                lr = lo + 0.5 * (head.lr - lo) * (1.0 + math.cos(math.pi * frac))
                step += 1
            for group in opt.param_groups:
                group["lr"] = lr
            idx = perms[:, start : start + head.batch_size]  # [S, b]
            logits = torch.baddbmm(bias[:, None, :], xt[idx], weight)  # [S, b, C]
            if head.multi_label_:
                per = nn.functional.binary_cross_entropy_with_logits(logits, yt[idx], reduction="none")
                losses = per.mean(dim=(1, 2))
            else:
                per = nn.functional.cross_entropy(logits.transpose(1, 2), yt[idx], reduction="none")
                losses = per.mean(dim=1)
            opt.zero_grad(set_to_none=True)
            losses.sum().backward()  # each seed's loss reaches only its own slice
            opt.step()
            totals += losses.detach().double().cpu() * idx.shape[1]
        with torch.no_grad():
            val_logits = torch.baddbmm(bias[:, None, :], xv_t.expand(s_count, -1, -1), weight).cpu().numpy()
        for i in range(s_count):
            score = (
                mean_average_precision(val_logits[i], tv.astype(bool))
                if head.multi_label_
                else accuracy(tv, val_logits[i].argmax(axis=1))
            )
            histories[i].append(
                {"epoch": float(epoch), "train_loss": float(totals[i]) / n, "val_score": score}
            )
            if score > best[i]:
                best[i], best_epoch[i] = score, epoch
                best_state[i] = (weight.detach()[i].clone(), bias.detach()[i].clone())
    for i, p in enumerate(probes):
        w, b = best_state[i] if best_state[i] is not None else (weight.detach()[i], bias.detach()[i])
        model = nn.Linear(d, c).to(dev)
        with torch.no_grad():
            model.weight.copy_(w.T)
            model.bias.copy_(b)
        p.model_ = model.eval()
        p.epochs_, p.best_epoch_, p.best_val_score_, p.history_ = epochs, best_epoch[i], best[i], histories[i]
