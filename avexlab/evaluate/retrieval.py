"""Retrieval ROC AUC (R-auc) and precision@1, as the paper defines them, chunked so that no N x N matrix
is ever held in memory.

Definition (the paper's evaluation protocol): L2-normalise the embeddings; for each query, rank every
OTHER gallery item by cosine similarity; an item is positive when it shares a label with the query; take
the ROC AUC of that ranking (tied similarities get half credit, exactly as ``sklearn.metrics.roc_auc_score``);
average over the queries that have at least one positive AND one negative in the gallery.
Precision@1 is the fraction of those same queries whose most similar other item is a positive (ties at
the top broken by the lowest gallery index).

Modes:
- test-vs-test (``queries=None``): every row is a query and the gallery is every row but itself.
- train-vs-test (``queries=`` a mask or indices, e.g. the test rows): the queries are those rows and the
  gallery is every other row (or ``gallery=`` when given), e.g. cross-year individual ID.

Algorithm, per block of queries: one ``[B, G]`` similarity matmul, then the per-row Mann-Whitney
statistic ``U = sum over positives of (#neg below + 0.5 #neg tied)``, ``AUC = U / (P N)``:

- CPU, float32: counting instead of sorting. Each row's similarities are cut into ~G monotone buckets;
  bucket counts give every positive-negative pair in different buckets exactly; the few pairs that share
  a bucket are resolved by an exact sort of just those items (ties get half credit).
- CUDA, float32: one values-only int64 sort per row with the item's role packed into the low bits.
- float64: a sort with indices and tie groups found on the sorted row.

Memory is ``O(B x G)``. Runs on any torch device.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from numpy.typing import ArrayLike

from avexlab.errors import EvaluationError, expected_found

__all__ = ["encode_labels", "retrieval_roc_auc", "retrieval_scores"]

# Elements of one [B, G] block; about 50 bytes each are live at the peak (sims, sort, indices, counts).
_BLOCK_ELEMENTS_CPU = 1 << 22
_BLOCK_ELEMENTS_CUDA = 1 << 26


def _is_multi(value: Any) -> bool:
    return isinstance(value, list | tuple | set | frozenset | np.ndarray)


def encode_labels(labels: ArrayLike | Sequence[Any]) -> tuple[np.ndarray, bool]:
    """Encode labels for retrieval.

    Args:
        labels: one label per row (``[N]`` ints or strings), or a list of labels per row (multi-label;
            an empty list means "no label": such a row is a negative for every query and is never a
            query itself), or a ``[N, C]`` {0, 1} indicator matrix.

    Returns:
        ``(codes, multi)``: ``[N]`` int64 codes when ``multi`` is False, else a ``[N, C]`` bool matrix.
    """
    if isinstance(labels, np.ndarray) and labels.ndim == 2:
        if not np.isin(labels, (0, 1)).all():
            raise EvaluationError(
                expected_found(
                    "2-D labels", "a {0, 1} indicator matrix", "other values", "Pass a multi-hot matrix."
                )
            )
        return labels.astype(bool), True
    if hasattr(labels, "to_list"):  # polars / pandas series
        labels = labels.to_list()  # type: ignore[union-attr]
    seq = list(labels) if not isinstance(labels, np.ndarray) else labels.tolist()
    if any(_is_multi(v) for v in seq):
        if not all(_is_multi(v) or v is None for v in seq):
            raise EvaluationError(
                expected_found(
                    "labels",
                    "either one label per row or a list of labels per row",
                    "a mix of both",
                    "Wrap single labels in a list for multi-label retrieval.",
                )
            )
        rows = [list(v) if v is not None else [] for v in seq]
        vocab = sorted({x for r in rows for x in r}, key=lambda x: (str(type(x)), x))
        index = {x: i for i, x in enumerate(vocab)}
        out = np.zeros((len(rows), len(vocab)), dtype=bool)
        r_idx = np.fromiter((i for i, r in enumerate(rows) for _ in r), dtype=np.int64)
        c_idx = np.fromiter((index[x] for r in rows for x in r), dtype=np.int64)
        out[r_idx, c_idx] = True
        return out, True
    if any(v is None or (isinstance(v, float) and np.isnan(v)) for v in seq):
        raise EvaluationError(
            expected_found(
                "labels",
                "a label for every row",
                "None/NaN labels",
                "Drop unlabelled rows, or use a list of labels per row (an empty list = no label).",
            )
        )
    _, codes = np.unique(np.asarray(seq), return_inverse=True)
    return codes.astype(np.int64).reshape(-1), False


def _as_index(sel: ArrayLike, n: int, name: str) -> np.ndarray:
    a = np.asarray(sel)
    if a.dtype == bool:
        if a.shape != (n,):
            raise EvaluationError(
                expected_found(name, f"a bool mask of shape ({n},)", f"shape {a.shape}", "One flag per row.")
            )
        return np.flatnonzero(a)
    if a.ndim != 1 or not np.issubdtype(a.dtype, np.integer):
        raise EvaluationError(
            expected_found(name, "a bool mask or 1-D integer indices", f"{a.dtype} {a.shape}", "Fix it.")
        )
    if a.size and (a.min() < 0 or a.max() >= n):
        raise EvaluationError(
            expected_found(name, f"indices in [0, {n})", f"[{a.min()}, {a.max()}]", "Fix the indices.")
        )
    if np.unique(a).size != a.size:
        raise EvaluationError(expected_found(name, "distinct indices", "duplicates", "Remove duplicates."))
    return np.sort(a)


def _tie_credit(sorted_sims: torch.Tensor, neg_sorted: torch.Tensor) -> torch.Tensor:
    """For each position of ascending rows, ``#neg strictly below + 0.5 #neg tied`` (float64 ``[B, G]``)."""
    b, g = sorted_sims.shape
    cneg = torch.cumsum(neg_sorted, dim=1, dtype=torch.float64)  # inclusive count of negatives
    pos_idx = torch.arange(g, device=sorted_sims.device).expand(b, g)
    starts = torch.ones_like(sorted_sims, dtype=torch.bool)
    starts[:, 1:] = sorted_sims[:, 1:] != sorted_sims[:, :-1]
    ends = torch.ones_like(starts)
    ends[:, :-1] = starts[:, 1:]
    first = torch.where(starts, pos_idx, torch.zeros_like(pos_idx)).cummax(dim=1).values
    last_rev = torch.where(ends, g - 1 - pos_idx, torch.zeros_like(pos_idx)).flip(1).cummax(dim=1).values
    last = g - 1 - last_rev.flip(1)
    below = torch.where(first > 0, cneg.gather(1, (first - 1).clamp_min(0)), torch.zeros_like(cneg))
    upto = cneg.gather(1, last)
    return 0.5 * (below + upto)


_NOT_SIGN = 0x7FFFFFFFFFFFFFFF


def _u_one_order(sims64: Any, pos: Any, neg: Any, pos_rank: int, neg_rank: int) -> tuple[Any, Any]:
    """Sum over positives of the negatives sorted before them, and whether each row has a tie group that
    holds both a positive and a negative (the only ties that change the statistic).

    Works on numpy arrays (CPU: numpy's SIMD sort and integer ops are several times faster than torch's
    there) and on torch tensors (CUDA) alike. ``sims64``: the similarities widened to float64 and viewed
    as int64 bits. Inside a tie group items sort by rank: 0 = excluded, then ``pos_rank`` / ``neg_rank``.
    """
    ordered = sims64 ^ ((sims64 >> 63) & _NOT_SIGN)  # int64 order == float order
    rank = pos * pos_rank + neg * neg_rank
    packed = (ordered & ~3) | rank  # the low 2 bits of a widened float32 are zero: order kept
    if isinstance(packed, np.ndarray):
        keys = np.sort(packed, axis=1)
    else:
        keys = torch.sort(packed, dim=1).values
    low = keys & 3
    is_neg = low == neg_rank
    is_pos = low == pos_rank
    u = (is_neg.cumsum(1) * is_pos).sum(1)
    # Within a group the ranks are ordered, so a mixed group has an adjacent (lower rank, higher rank) pair.
    first, second = (is_pos, is_neg) if pos_rank < neg_rank else (is_neg, is_pos)
    mixed = ((keys[:, 1:] >> 2) == (keys[:, :-1] >> 2)) & first[:, :-1] & second[:, 1:]
    return u, mixed.any(1)


def _ordered_u32(s: np.ndarray) -> np.ndarray:
    """float32 -> int64 in ``[0, 2**32)`` with the same order (``-0.0`` must have been made ``+0.0``)."""
    bits = s.view(np.int32).astype(np.int64)
    return np.where(bits < 0, bits ^ 0x7FFFFFFF, bits) + (1 << 31)


def _within_segments(
    seg: np.ndarray, s: np.ndarray, pos: np.ndarray, neg: np.ndarray, pos_first: bool
) -> np.ndarray:
    """For items grouped by ``seg`` (int64 ``[M]``, ``< 2**29``): per item that is positive, the number of
    negatives of its segment sorted before it, when ties put positives first (``pos_first``: counts
    ``<``) or negatives first (counts ``<=``). Returns ``[M']`` counts aligned with the positives in sorted
    order, and their segments."""
    rank = np.where(pos, 1 if pos_first else 2, 0) + np.where(neg, 2 if pos_first else 1, 0)
    key = np.sort((seg << 34) | (_ordered_u32(s) << 2) | rank)
    low = key & 3
    seg_sorted = key >> 34
    is_neg = low == (2 if pos_first else 1)
    is_pos = low == (1 if pos_first else 2)
    cneg = np.cumsum(is_neg)
    starts = np.flatnonzero(np.r_[True, seg_sorted[1:] != seg_sorted[:-1]])
    before = np.r_[0, cneg][starts]  # negatives before each segment
    base = np.repeat(before, np.diff(np.r_[starts, key.size]))
    return (cneg - base)[is_pos], seg_sorted[is_pos]


def _mann_whitney_u_bucketed(
    sims: np.ndarray, pos: np.ndarray, neg: np.ndarray, valid: np.ndarray | None = None
) -> np.ndarray:
    """Per-row Mann-Whitney U (float64 ``[B]``) of float32 similarities ``[B, G]`` by counting.

    Bucket ``k = floor((s - min) * G / (max - min))`` is a monotone function of ``s`` (every step rounds
    monotonically), so an item in a lower bucket has a strictly lower similarity. Pairs in different
    buckets: ``sum_k pos_k * (negatives in buckets below k)``. Pairs in the same bucket (about one item per
    bucket, so few): an exact sort of the items of mixed buckets, counted once with positives first
    (``<``) and once with negatives first (``<=``); their mean gives ties half credit.
    """
    b, g = sims.shape
    nb = max(1, g)
    if b > 1 and b * nb >= 1 << 29:  # segment ids must fit in 29 bits of the packed sort key
        h = b // 2
        return np.concatenate(
            [
                _mann_whitney_u_bucketed(sims[:h], pos[:h], neg[:h]),
                _mann_whitney_u_bucketed(sims[h:], pos[h:], neg[h:]),
            ]
        )
    lo = sims.min(axis=1, keepdims=True)
    hi = sims.max(axis=1, keepdims=True)
    span = hi - lo
    scale = np.divide(np.float32(nb), span, out=np.zeros_like(span), where=span > 0)
    bucket = ((sims - lo) * scale).astype(np.int64)
    np.clip(bucket, 0, nb - 1, out=bucket)  # items outside the valid range are neither pos nor neg
    bucket += (np.arange(b, dtype=np.int64) * nb)[:, None]  # one bucket space per row
    cnt_neg = np.bincount(bucket[neg], minlength=b * nb).reshape(b, nb)
    cnt_pos = np.bincount(bucket[pos], minlength=b * nb).reshape(b, nb)
    below = np.cumsum(cnt_neg, axis=1) - cnt_neg
    u = (cnt_pos * below).sum(axis=1).astype(np.float64)
    mixed = ((cnt_pos > 0) & (cnt_neg > 0)).reshape(-1)
    if mixed.any():
        sel = mixed[bucket] & (pos | neg)
        seg, s_sel, p_sel, n_sel = bucket[sel], sims[sel], pos[sel], neg[sel]
        for pos_first in (True, False):
            counts, segs = _within_segments(seg, s_sel, p_sel, n_sel, pos_first)
            u += 0.5 * np.bincount(segs // nb, weights=counts, minlength=b)
    return u


def _mann_whitney_u_packed(sims: torch.Tensor, pos: torch.Tensor, neg: torch.Tensor) -> torch.Tensor:
    """Per-row Mann-Whitney U (``sum over positives of #neg below + 0.5 #neg tied``), float64 ``[B]``, for
    float32 similarities ``[B, G]``; ``pos``/``neg`` are disjoint bool masks (neither = excluded item).

    Each float32 similarity is widened to float64 (exact: its 29 low mantissa bits are zero), mapped to an
    int64 of the same order, and the item's role is written into the 2 lowest bits, so ONE values-only
    int64 sort per row orders items by similarity and, inside a tie group, by role. With positives
    before negatives this gives ``U_low`` (tied positive-negative pairs count 0); the rows that have such
    ties get a second sort with negatives first, ``U_high`` (tied pairs count 1), and
    ``U = (U_low + U_high) / 2``: half credit for ties, exactly as scikit-learn's ROC AUC.
    """
    if sims.device.type == "cpu":
        s64 = sims.numpy().astype(np.float64).view(np.int64)
        p, n = pos.numpy(), neg.numpy()
    else:
        s64 = sims.to(torch.float64).view(torch.int64)
        p, n = pos, neg
    u_low, mixed = _u_one_order(s64, p, n, 1, 2)
    u = torch.as_tensor(u_low, device=sims.device).to(torch.float64)
    rows = torch.as_tensor(mixed, device=sims.device).nonzero().flatten()
    if rows.numel():
        r = rows.cpu().numpy() if sims.device.type == "cpu" else rows
        u_high, _ = _u_one_order(s64[r], p[r], n[r], 2, 1)
        u[rows] = 0.5 * (u[rows] + torch.as_tensor(u_high, device=sims.device).to(torch.float64))
    return u


def _block_cpu(
    sims: np.ndarray, pos: np.ndarray, valid: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """One block on the CPU (numpy: its bool/int reductions are much faster than torch's there):
    ``(U float64 [B], n_pos [B], n_neg [B], top-1 is positive [B])`` for float32 similarities ``[B, G]``."""
    pos = pos & valid
    neg = valid & ~pos
    n_pos = np.count_nonzero(pos, axis=1)
    n_neg = np.count_nonzero(neg, axis=1)
    u = _mann_whitney_u_bucketed(sims, pos, neg, valid)
    top = np.where(valid, sims, -np.inf).argmax(axis=1)
    hit = pos[np.arange(sims.shape[0]), top]
    return u, n_pos.astype(np.int64), n_neg.astype(np.int64), hit


def _block_torch(
    sims: torch.Tensor, pos: torch.Tensor, valid: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """The same as :func:`_block_cpu` with torch on any device (CUDA, or float64 similarities)."""
    pos = pos & valid
    neg = valid & ~pos
    if sims.dtype == torch.float32:
        u = _mann_whitney_u_packed(sims, pos, neg)
    else:
        sorted_sims, order = torch.sort(sims, dim=1)
        credit = _tie_credit(sorted_sims, neg.gather(1, order))
        u = torch.where(pos.gather(1, order), credit, torch.zeros_like(credit)).sum(dim=1)
    top = sims.masked_fill(~valid, float("-inf")).argmax(dim=1)
    hit = pos.gather(1, top[:, None]).squeeze(1)
    return u, pos.sum(dim=1), neg.sum(dim=1), hit


@torch.no_grad()
def retrieval_scores(
    embeddings: ArrayLike | torch.Tensor,
    labels: ArrayLike | Sequence[Any],
    *,
    queries: ArrayLike | None = None,
    gallery: ArrayLike | None = None,
    chunk_size: int | None = None,
    device: str | torch.device | None = None,
    groups: ArrayLike | Sequence[Any] | None = None,
    per_query: bool = False,
) -> dict[str, Any]:
    """Retrieval ROC AUC, precision@1 and the number of queries they average over.

    Args:
        embeddings: ``[N, D]`` float32 or float64 (similarities are computed in this dtype).
        labels: see :func:`encode_labels` (one per row, a list per row, or a ``[N, C]`` indicator matrix).
        queries: ``None`` (test-vs-test: every row is a query), or a ``[N]`` bool mask / integer indices
            of the query rows (train-vs-test).
        gallery: rows to rank for each query; default every row (test-vs-test) or every non-query row
            (when ``queries`` is given). A query is never ranked against itself.
        chunk_size: queries per block (memory ``~50 x chunk_size x G`` bytes); default from the device
            (about 4 M similarities per block on CPU, 64 M on CUDA).
        device: torch device to compute on (``"cuda"`` for the GPU); default the tensor's device or CPU.
        groups: ``[N]`` group ids (e.g. the recording each window was cut from): gallery rows of the
            query's own group are left out of its ranking, neither positive nor negative, so a query
            cannot score by finding its own recording. Default: only the query itself is left out.

        per_query: also return each query's outcome (for bootstrap intervals over queries).

    Returns:
        ``{"roc_auc": float, "precision_at_1": float, "n_queries": int}``; ``roc_auc`` and
        ``precision_at_1`` are ``nan`` when no query has both a positive and a negative. With
        ``per_query``, also ``"query_roc_auc"`` and ``"query_hit"``: float64 ``[Q]`` in query order, ``nan``
        for a query without both a positive and a negative (not counted in the means).
    """
    x = torch.as_tensor(embeddings)
    if x.ndim != 2 or x.shape[0] < 2:
        raise EvaluationError(
            expected_found("embeddings", "a [N, D] array with N >= 2", f"shape {tuple(x.shape)}", "Fix it.")
        )
    if x.dtype not in (torch.float32, torch.float64):
        x = x.to(torch.float32)
    n = x.shape[0]
    codes, multi = encode_labels(labels)
    if codes.shape[0] != n:
        raise EvaluationError(
            expected_found("labels", f"{n} rows (one per embedding)", f"{codes.shape[0]}", "Align them.")
        )
    dev = torch.device(device) if device is not None else x.device
    x = x.to(dev)
    if not torch.isfinite(x).all():
        raise EvaluationError(
            expected_found("embeddings", "finite values", "NaN or inf", "Check the encoder's outputs.")
        )
    norms = torch.linalg.vector_norm(x, dim=1, keepdim=True)
    if (norms == 0).any():
        raise EvaluationError(
            expected_found(
                "embeddings",
                "non-zero rows (cosine similarity is undefined for a zero vector)",
                f"{int((norms == 0).sum())} zero rows",
                "Check the encoder (a silent input gives a zero embedding for some models).",
            )
        )
    x = x / norms

    group_codes = None
    if groups is not None:
        group_arr = np.asarray(groups, dtype=object)
        if group_arr.shape != (n,) or any(v is None for v in group_arr):
            raise EvaluationError(
                expected_found("groups", f"{n} group ids (one per embedding, none missing)",
                               f"shape {group_arr.shape}", "Pass one id per row, e.g. each clip's recording path.")
            )  # fmt: skip
        group_codes = np.unique(group_arr.astype(str), return_inverse=True)[1].astype(np.int64)
    q_idx = np.arange(n) if queries is None else _as_index(queries, n, "queries")
    if gallery is not None:
        g_idx = _as_index(gallery, n, "gallery")
    elif queries is None:
        g_idx = np.arange(n)
    else:
        g_idx = np.setdiff1d(np.arange(n), q_idx)
    if q_idx.size == 0 or g_idx.size == 0:
        raise EvaluationError(
            expected_found("queries/gallery", "non-empty sets", f"{q_idx.size} / {g_idx.size}", "Fix them.")
        )
    g = g_idx.size
    # Where each query sits in the gallery (-1 if absent): that pair is excluded (never rank self).
    slot = np.full(n, -1, dtype=np.int64)
    slot[g_idx] = np.arange(g)
    q_slot = torch.as_tensor(slot[q_idx], device=dev)

    gal = x[torch.as_tensor(g_idx, device=dev)]
    lab = torch.as_tensor(codes, device=dev)
    lab_g = lab[torch.as_tensor(g_idx, device=dev)]
    if multi:
        lab_g_f = lab_g.to(torch.float32).T.contiguous()  # [C, G]
    else:
        codes_g = codes[g_idx]

    groups_g = None if group_codes is None else group_codes[g_idx]
    if chunk_size is None:
        budget = _BLOCK_ELEMENTS_CUDA if dev.type == "cuda" else _BLOCK_ELEMENTS_CPU
        chunk_size = max(1, min(4096, budget // g))
    per_auc: list[np.ndarray] = []
    per_hit: list[np.ndarray] = []
    auc_sum = torch.zeros((), dtype=torch.float64, device=dev)
    p1_sum = torch.zeros((), dtype=torch.float64, device=dev)
    n_valid = torch.zeros((), dtype=torch.int64, device=dev)
    q_all = torch.as_tensor(q_idx, device=dev)
    for start in range(0, q_idx.size, chunk_size):
        qi = q_all[start : start + chunk_size]
        b = qi.shape[0]
        sims = x[qi] @ gal.T  # [B, G]
        sims = sims + 0.0  # -0.0 -> +0.0 so that signed zeros tie, as they do for sklearn
        if multi:
            pos = (lab[qi].to(torch.float32) @ lab_g_f) > 0
        elif dev.type == "cpu":
            pos = torch.from_numpy(codes[q_idx[start : start + b]][:, None] == codes_g[None, :])
        else:
            pos = lab[qi][:, None] == lab_g[None, :]
        valid = torch.ones_like(pos)
        self_slot = q_slot[start : start + b]
        has_self = self_slot >= 0
        rows = torch.arange(b, device=dev)[has_self]
        valid[rows, self_slot[has_self]] = False
        if group_codes is not None:
            same = group_codes[q_idx[start : start + b]][:, None] == groups_g[None, :]
            valid &= ~torch.from_numpy(same).to(dev)
        if dev.type == "cpu" and sims.dtype == torch.float32:
            u, n_pos, n_neg, hit = (
                torch.from_numpy(a) for a in _block_cpu(sims.numpy(), pos.numpy(), valid.numpy())
            )
        else:
            u, n_pos, n_neg, hit = _block_torch(sims, pos, valid)
        ok = (n_pos > 0) & (n_neg > 0)
        denom = (n_pos * n_neg).to(torch.float64)
        auc = torch.where(ok, u / denom.clamp_min(1.0), torch.zeros_like(u))

        auc_sum += auc.sum()
        p1_sum += (hit & ok).sum().to(torch.float64)
        n_valid += ok.sum()
        if per_query:
            nan = torch.full_like(auc, float("nan"))
            per_auc.append(torch.where(ok, auc, nan).cpu().numpy())
            per_hit.append(torch.where(ok, hit.to(torch.float64), nan).cpu().numpy())
    nq = int(n_valid.item())
    out: dict[str, Any] = {
        "roc_auc": float(auc_sum.item() / nq) if nq else float("nan"),
        "precision_at_1": float(p1_sum.item() / nq) if nq else float("nan"),
        "n_queries": nq,
    }
    if per_query:
        out["query_roc_auc"] = np.concatenate(per_auc) if per_auc else np.zeros(0)
        out["query_hit"] = np.concatenate(per_hit) if per_hit else np.zeros(0)
    return out


def retrieval_roc_auc(
    embeddings: ArrayLike | torch.Tensor,
    labels: ArrayLike | Sequence[Any],
    *,
    queries: ArrayLike | None = None,
    gallery: ArrayLike | None = None,
    chunk_size: int | None = None,
    device: str | torch.device | None = None,
) -> float:
    """The paper's retrieval ROC AUC (mean per-query ROC AUC by cosine similarity); see
    :func:`retrieval_scores` for the arguments. ``embeddings``: ``[N, D]``; returns a float in [0, 1]."""
    return retrieval_scores(
        embeddings, labels, queries=queries, gallery=gallery, chunk_size=chunk_size, device=device
    )["roc_auc"]
