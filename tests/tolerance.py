"""Tolerances derived from floating-point rounding, and an assert that explains a failure.

Not a test module (no ``test_`` prefix). ``tests/conftest.py`` puts this folder on ``sys.path``, so any test
file imports it as ``from tolerance import ...``.

Why: two float computations of the same quantity (ours against the official code's fixture, torchaudio
against our fbank, a padded batch against a clip alone, SDPA against FlexAttention) differ by their rounding
errors, and those depend on the CPU, the library build and the thread count. A tolerance picked to pass on
one machine (``atol=1e-4``) is a coin toss on another when the values' own rounding is of that size. Here a
tolerance is ``sides * k * u * scale``:

* ``u`` is the unit roundoff of the dtype (``2**-24`` for float32, half of ``torch.finfo(...).eps``):
  one correctly rounded operation returns ``x (1 + d)`` with ``|d| <= u``.
* ``scale`` is the magnitude the rounding error is proportional to: ``|reference|`` element by element
  (a relative tolerance) when the compared values come out of a short chain of operations; the row's
  largest ``|value|`` for a layer's output vector (normalised layers make the row the natural unit); an
  explicitly derived magnitude (``sum |a_i b_i|`` of an inner product, ``||x||_2`` of an FFT's input,
  see :func:`log_mel_tol`) otherwise.
* ``k`` counts how many roundings reach one output element along the longest path of the computation
  (``ops``): ``n`` for a length-``n`` inner product or sum, one per elementwise operation, the sum over the
  stages of a chain of layers. Every rounding error is carried to the output with a gain of at most one
  relative to ``scale`` (exactly true for sums and products of the scaled magnitudes; the stated modelling
  assumption for normalised networks). Two error models, and the smaller ``k`` is used:

  - worst case (Higham, *Accuracy and Stability of Numerical Algorithms*, 2nd ed., Lemma 3.1 and eq.
    3.5): ``|error| <= gamma_n * scale`` with ``gamma_n = n u / (1 - n u)``; always holds.
  - probabilistic (Higham & Mary, *A new approach to probabilistic rounding error analysis*, SIAM J. Sci.
    Comput. 41(5), 2019, Thm 2.4 / 3.1): rounding errors independent with mean zero give
    ``|error| <= lambda sqrt(n) u * scale`` with probability at least ``1 - 2 n exp(-lambda^2 / 2)``.
    :data:`LAMBDA` = 8 makes that failure probability ``< 2.6e-14 n`` per element, so a test comparing
    ``10^6`` elements with ``n = 10^4`` roundings each still fails by chance with probability ``< 1e-3``.

* ``sides`` = 2 when both compared values were rounded (two float32 computations: ``|a - b| <=
  |a - exact| + |b - exact|``); 1 when one side is exact to the other's precision (a float64 reference for a
  float32 result).

An FFT of length ``n`` (:func:`fft_bin_error`) follows the same random-walk model stage by stage: each of
``ceil(log2 n)`` butterfly stages adds to every bin an error of at most ``eta ||x||_2`` in the bins' root
mean square (Higham Thm 24.2: ``eta = mu + gamma_4 (sqrt 2 + mu)`` with twiddle error ``mu = u``, and the
remaining stages are unitary up to the factor that Parseval absorbs), so a bin's error is at most
``lambda eta sqrt(ceil(log2 n)) ||x||_2``.

Front ends and encoders of this project: :func:`kaldi_fbank_tol` and :func:`log_mel_tol` bound a log-mel
value's rounding per element from the wave and the reference's own values (a band far below its frame's
energy is ill-conditioned and gets a large tolerance; a loud band a small one); :func:`encoder_tol` counts
the roundings of a whole encoder (:func:`encoder_ops`) for comparisons of two runs on broadband input;
:func:`bf16_rel_tol` is the norm-wise bound of a bfloat16 run against float32. Float64 metrics use
:func:`f64_tol`; short scalar computations :func:`rounding_approx`.

:func:`assert_close_f32` checks ``|actual - expected| <= tol`` element by element and, on failure, names the
worst element (largest ratio error / tolerance): its index, both values, the error, the tolerance there
and the ratio, plus how many elements failed.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

LAMBDA = 8.0  # probabilistic bound: fails with probability < 2 n exp(-LAMBDA^2 / 2) = 2.6e-14 n per element


def unit_roundoff(dtype: torch.dtype | np.dtype | type = torch.float32) -> float:
    """``u``: half the machine epsilon (``2**-24`` for float32, ``2**-53`` for float64)."""
    if isinstance(dtype, torch.dtype):
        return torch.finfo(dtype).eps / 2
    return float(np.finfo(dtype).eps) / 2


def rounding_k(
    ops: float, lam: float = LAMBDA, dtype: torch.dtype | np.dtype | type = torch.float32
) -> float:
    """``k`` for ``ops`` roundings on one path: ``min(gamma_n / u, lambda sqrt(n))`` (module docstring)."""
    if ops <= 0:
        return 0.0
    u = unit_roundoff(dtype)
    worst = ops / (1.0 - ops * u) if ops * u < 1.0 else math.inf
    return min(worst, lam * math.sqrt(ops))


def f32_tol(
    reference: Tensor | np.ndarray | float,
    *,
    ops: float,
    scale: Tensor | np.ndarray | float | None = None,
    sides: int = 2,
    dtype: torch.dtype | np.dtype | type = torch.float32,
    lam: float = LAMBDA,
) -> Tensor:
    """Tolerance ``sides * rounding_k(ops) * u * scale`` shaped like ``reference`` (float64 tensor).

    ``scale`` defaults to ``|reference|`` (a relative tolerance: right when magnitudes vary and each value
    comes out of ``ops`` roundings of terms no larger than itself, e.g. a sum of same-signed terms or a
    product chain). Pass ``scale`` when the error is proportional to something else (an inner product's
    ``sum |a_i b_i|``, a row's largest value: :func:`row_scale`). ``dtype`` is the precision the compared
    values were computed in (float64 for metrics computed in double).
    """
    ref = (
        reference
        if isinstance(reference, Tensor)
        else torch.from_numpy(np.array(reference, dtype=np.float64))
    )
    ref = ref.detach().to("cpu", torch.float64)
    s = ref.abs() if scale is None else torch.as_tensor(scale).detach().to("cpu", torch.float64)
    k = rounding_k(ops, lam, dtype)
    return (sides * k * unit_roundoff(dtype) * s).expand_as(ref).clone()


def f64_tol(
    reference: Tensor | np.ndarray | float,
    *,
    ops: float,
    scale: Tensor | np.ndarray | float | None = None,
    sides: int = 2,
) -> Tensor:
    """:func:`f32_tol` for values computed in float64 (metrics, statistics): ``u = 2**-53``."""
    return f32_tol(reference, ops=ops, scale=scale, sides=sides, dtype=torch.float64)


def rounding_approx(
    expected: float | Sequence[float],
    *,
    ops: float,
    scale: float | None = None,
    dtype: torch.dtype | np.dtype | type = np.float64,
) -> object:
    """``pytest.approx(expected)`` with the absolute tolerance :func:`f32_tol` derives (two sides, ``ops``
    roundings of values up to ``scale``, default ``|expected|``, in ``dtype``): for scalars and short lists
    computed by a few float operations (means, differences, unit conversions)."""
    import pytest

    tol = f32_tol(np.asarray(expected, dtype=np.float64), ops=ops, scale=scale, dtype=dtype)
    return pytest.approx(expected, rel=0, abs=float(tol.max()) if tol.numel() else 0.0)


def row_scale(reference: Tensor, dim: int = -1) -> Tensor:
    """The largest ``|value|`` along ``dim`` (kept as a size-1 axis): the scale of a layer's output vector."""
    return reference.detach().abs().amax(dim=dim, keepdim=True)


def fft_bin_error(n: int, input_norm: Tensor | float, *, lam: float = LAMBDA) -> Tensor:
    """Bound on one bin's rounding error of a float32 length-``n`` FFT whose input has ``||x||_2 = input_norm``.

    ``lambda * eta * sqrt(ceil(log2 n)) * input_norm`` with ``eta = u + gamma_4 (sqrt 2 + u)`` (module
    docstring); the error of the whole spectrum is this times ``sqrt(n)`` in the 2-norm, the bound of Higham
    Thm 24.2 with the stages' errors adding as a random walk.
    """
    u = unit_roundoff(torch.float32)
    gamma4 = 4 * u / (1 - 4 * u)
    eta = u + gamma4 * (math.sqrt(2.0) + u)
    stages = math.ceil(math.log2(n))
    return lam * eta * math.sqrt(stages) * torch.as_tensor(input_norm, dtype=torch.float64)


def triangular_weight_error(right_edge: Tensor, spacing: Tensor | float, *, ops: int = 14) -> Tensor:
    """Bound ``[M]`` on the absolute error of a float32 triangular filter weight ``(c - left) / (centre - left)``.

    For filter ``m`` the coordinates involved (the bin's ``c``, the edges and the centre, in mel or Hz) are at
    most ``right_edge[m]``; each carries a few roundings of its own size, and the differences cancel them into
    an absolute error ``<= ops * u * right_edge / spacing`` (``spacing`` = centre - left edge). ``ops`` = 14:
    5 in the bin's coordinate (divide, log, multiply, and the conversions), 3 in each of the left edge and
    the centre (step, offset, conversion), counted once in the numerator and once (times the weight <= 1) in
    the denominator, plus the subtraction and the division. One implementation; ``sides`` doubles it.
    """
    u = unit_roundoff(torch.float32)
    return (
        ops
        * u
        * torch.as_tensor(right_edge, dtype=torch.float64)
        / torch.as_tensor(spacing, dtype=torch.float64)
    )


def log_mel_tol(
    mel: Tensor,
    frame_norm: Tensor,
    *,
    n_fft: int,
    weight_error: Tensor | float,
    log: bool = True,
    offset: float = 0.0,
    floor: float = 0.0,
    sides: int = 2,
) -> Tensor:
    """Tolerance ``[F, M]`` on a mel power spectrum (``log(max(P, floor) + offset)`` when ``log``, else ``P``).

    ``mel [F, M]`` (frames x mel bins) is the reference's output, from which ``P`` is recovered;
    ``frame_norm [F]`` bounds ``||x||_2`` of each frame as it enters the FFT (after DC removal, pre-emphasis
    and window: :func:`kaldi_frame_norms`); ``weight_error`` (``[M]`` or a number) bounds one filter weight's
    absolute error per implementation (:func:`triangular_weight_error`).

    ``P_m = sum_k w_mk |X_k|^2`` with triangular filters ``w`` in ``[0, 1]`` that overlap as a partition of
    unity (each bin between two neighbouring centres belongs to those two filters, weights summing to one).
    Rounding errors of one implementation:

    * FFT: the bins' errors have root mean square ``e = fft_bin_error(n_fft, ||x||_2) / lambda`` and are
      independent; ``|X + dX|^2 - |X|^2 ~ 2 Re(conj(X) dX)``, so ``dP_m`` is a random-walk sum with root mean
      square ``2 e sqrt(sum_k w_mk^2 |X_k|^2) <= 2 e sqrt(P_m)`` (``w^2 <= w``); its bound is ``lambda`` times
      that.
    * filter weights: ``dP_m <= weight_error_m * Q_m`` with ``Q_m`` the power of the bins under filter ``m``;
      by the partition of unity ``Q_m <= P_{m-1} + 2 P_m + P_{m+1}`` inside the bank; for the first and last
      filter (one side not shared) ``Q_m <=`` the frame's whole spectrum ``n_fft ||x||_2^2`` (Parseval).
    * the filter-bank product: ``n_fft // 2 + 1`` non-negative terms, relative ``rounding_k(n_fft // 2 + 1) u``.
    * the log: ``d log(P + offset) = dP / (P + offset)`` with ``P`` at least ``floor`` (a clamp before the log
      is 1-Lipschitz there), plus 2 roundings of ``|log|`` (the log and its argument).

    Returns ``sides`` times the per-implementation bound, in the units of ``mel``.
    """
    u = unit_roundoff(torch.float32)
    ref = mel.detach().to("cpu", torch.float64)
    power = (ref.exp() - offset) if log else ref
    power = power.clamp_min(max(floor, 0.0))
    norm = frame_norm.detach().to("cpu", torch.float64).reshape(-1, 1)
    d_fft = 2.0 * fft_bin_error(n_fft, norm) * power.sqrt()
    energy = n_fft * norm**2
    q = 2.0 * power
    q[:, 1:] += power[:, :-1]
    q[:, :-1] += power[:, 1:]
    q[:, 0] = energy[:, 0]
    q[:, -1] = energy[:, 0]
    q = torch.minimum(q, energy.expand_as(q))
    d_weights = torch.as_tensor(weight_error, dtype=torch.float64) * q
    d_power = d_fft + d_weights + rounding_k(n_fft // 2 + 1) * u * power
    if not log:
        return sides * (d_power + u * power)
    denom = (power + offset).clamp_min(floor + offset) if floor > 0.0 else power + offset
    return sides * (d_power / denom + 2 * u * ref.abs())


def kaldi_frame_norms(
    wave: Tensor,
    *,
    win: int,
    hop: int,
    gain: float = 1.0,
    remove_dc: bool = True,
    preemphasis: float = 0.97,
) -> Tensor:
    """``||x||_2`` bound ``[F]`` of each Kaldi frame (snip_edges) of ``wave [T]`` as it enters the FFT.

    The frame (times ``gain``, e.g. 32768 for int16-scaled input) minus its mean has a norm no larger than
    the frame's own (a projection); pre-emphasis grows it by at most ``1 + preemphasis`` and a window <= 1
    does not grow it. Computed in float64 from the input, not from either implementation.
    """
    x = wave.detach().to("cpu", torch.float64) * gain
    frames = x.unfold(-1, win, hop)
    if remove_dc:
        frames = frames - frames.mean(dim=-1, keepdim=True)
    return frames.norm(dim=-1) * (1.0 + abs(preemphasis))


def kaldi_fbank_tol(
    wave: Tensor,
    reference: Tensor,
    *,
    sample_frequency: float,
    num_mel_bins: int,
    frame_length: float = 25.0,
    frame_shift: float = 10.0,
    preemphasis_coefficient: float = 0.97,
    remove_dc_offset: bool = True,
    low_freq: float = 20.0,
    high_freq: float = 0.0,
    use_energy: bool = False,
    energy_floor: float = 1.0,
    htk_compat: bool = False,
    use_log_fbank: bool = True,
    gain: float = 1.0,
    sides: int = 2,
) -> Tensor:
    """Tolerance ``[F, C]`` on ``torchaudio.compliance.kaldi.fbank(wave * gain, ...)`` (``dither=0``, power
    spectrum, snip_edges, raw energy; the same argument names) given its output ``reference [F, C]``.

    The mel columns follow :func:`log_mel_tol` with Kaldi's filters (mel coordinates up to the right edge
    ``mel_low + (m + 2) * delta``, spacing ``delta``) and the float32-epsilon floor. The energy column
    (``use_energy``) is ``log(max(sum x^2, eps))`` over the frame after DC removal: ``win`` non-negative terms
    (the mean's own error does not reach it to first order, ``sum (x - mean) = 0``) plus the subtraction and
    the square, relative ``rounding_k(win + 2) u``, which the log turns into an absolute error (a floor before
    the log only shrinks it), plus the log's own 2 roundings.
    """
    sr = float(sample_frequency)
    win = int(sr * frame_length * 0.001)
    hop = int(sr * frame_shift * 0.001)
    n_fft = 1 << (win - 1).bit_length()
    norms = kaldi_frame_norms(
        wave, win=win, hop=hop, gain=gain, remove_dc=remove_dc_offset, preemphasis=preemphasis_coefficient
    )
    ref = reference.detach().to("cpu", torch.float64)
    assert ref.shape[0] == norms.shape[0], (
        f"{ref.shape[0]} frames in the reference, {norms.shape[0]} in the wave"
    )
    hi = high_freq + sr / 2 if high_freq <= 0.0 else high_freq
    mel_low, mel_high = 1127.0 * math.log1p(low_freq / 700.0), 1127.0 * math.log1p(hi / 700.0)
    delta = (mel_high - mel_low) / (num_mel_bins + 1)
    right = mel_low + (torch.arange(num_mel_bins, dtype=torch.float64) + 2.0) * delta
    weights = triangular_weight_error(right, delta)
    eps = torch.finfo(torch.float32).eps
    mel_cols = slice(0, num_mel_bins)
    if use_energy:
        mel_cols = slice(0, num_mel_bins) if htk_compat else slice(1, num_mel_bins + 1)
    tol = torch.empty_like(ref)
    tol[:, mel_cols] = log_mel_tol(
        ref[:, mel_cols],
        norms,
        n_fft=n_fft,
        weight_error=weights,
        log=use_log_fbank,
        floor=eps if use_log_fbank else 0.0,
        sides=sides,
    )
    if use_energy:
        col = num_mel_bins if htk_compat else 0
        u = unit_roundoff(torch.float32)
        rel = rounding_k(win + 2) * u
        tol[:, col] = sides * (rel + 2 * u * ref[:, col].abs())
    return tol


def linear_tol(
    weight: Tensor, x: Tensor, x_tol: Tensor | float, bias: Tensor | None = None, *, sides: int = 2
) -> Tensor:
    """Tolerance on ``y = x @ weight.T + bias`` (``x [..., n]``, ``weight [m, n]``) when ``x`` is known to
    ``x_tol``: the input's tolerance carried through the layer, ``|W| @ x_tol``, plus the layer's own
    inner products of ``n + 1`` terms, ``sides * rounding_k(n + 1) u (|W| @ |x| + |b|)``."""
    w = weight.detach().to("cpu", torch.float64).abs()
    xa = x.detach().to("cpu", torch.float64).abs()
    xt = torch.as_tensor(x_tol, dtype=torch.float64).expand_as(xa)
    scale = xa @ w.T
    if bias is not None:
        scale = scale + bias.detach().to("cpu", torch.float64).abs()
    return xt @ w.T + sides * rounding_k(w.shape[1] + 1) * unit_roundoff(torch.float32) * scale


def pooled_tol(tokens: Tensor, tol: Tensor, dim: int = 0) -> Tensor:
    """Tolerance on the mean or the max of ``tokens`` along ``dim`` when each element is known to ``tol``:
    either moves by at most the largest ``tol`` along ``dim``; the mean adds its own sum of ``n`` terms and
    division (``rounding_k(n + 1) u mean |x|``, two sides)."""
    t = tokens.detach().to("cpu", torch.float64)
    tol = torch.as_tensor(tol, dtype=torch.float64).expand_as(t)
    return tol.amax(dim) + f32_tol(t.abs().mean(dim), ops=t.shape[dim] + 1)


def transformer_ops(*, dim: int, ffn: int, heads: int, tokens: int, layers: int) -> int:
    """Roundings on the longest path to one output element of ``layers`` transformer blocks.

    Per block: the query/key/value projection (``dim``), a score (``dim // heads``), the softmax (its
    ``tokens``-term normaliser and the exp and division), the weighted sum of values (``tokens``), the output
    projection (``dim``), the residual add, a LayerNorm (mean and variance over ``dim``, subtract, divide,
    scale, shift), the FFN (``dim`` then ``ffn``, plus the activation's few operations), the residual add and
    the second LayerNorm. Pre- and post-LN blocks have the same count.
    """
    layer_norm = 2 * dim + 6
    attention = dim + dim // heads + (tokens + 3) + tokens + dim + 1
    feed_forward = dim + 6 + ffn + 1
    return layers * (attention + layer_norm + feed_forward + layer_norm)


def module_ops(model: torch.nn.Module) -> int:
    """Roundings on a path through every Conv/Linear/norm of ``model`` in sequence (an upper bound for a
    feed-forward network; parallel branches are counted as if chained): ``in_channels / groups * kernel``
    per convolution, ``in_features`` per linear layer, 6 per normalisation, 4 per activation."""
    total = 0
    for m in model.modules():
        if isinstance(m, torch.nn.modules.conv._ConvNd):
            total += m.in_channels // m.groups * math.prod(m.kernel_size) + 1
        elif isinstance(m, torch.nn.Linear):
            total += m.in_features + 1
        elif isinstance(m, torch.nn.modules.batchnorm._NormBase | torch.nn.LayerNorm | torch.nn.GroupNorm):
            total += 6
        elif isinstance(
            m, torch.nn.SiLU | torch.nn.GELU | torch.nn.ReLU | torch.nn.Sigmoid | torch.nn.Hardswish
        ):
            total += 4
    return total


# --- this project's encoders ---------------------------------------------------------------------------


def mel_frontend_log_tol(wave: Tensor, log_mel: Tensor, sample_rate: int) -> Tensor:
    """Rounding tolerance ``[M, F]`` on :class:`avexlab.audio.mel.MelFrontend`'s ``log(mel + 1e-6)`` of one clip
    ``wave [T]`` (:func:`log_mel_tol`): frames of the reflect-padded clip (50 ms windows every 10 ms) enter
    the FFT under a Hann window <= 1, so their norm bounds the FFT input. Both sides build the filters with
    torchaudio's ``melscale_fbanks``: identical weights, no weight error (tests/models/test_mel.py checks
    that against torchaudio's ``MelScale``)."""
    n_fft, hop = sample_rate // 20, sample_rate // 100
    padded = torch.nn.functional.pad(wave.double()[None, None], (n_fft // 2, n_fft // 2), mode="reflect")[
        0, 0
    ]
    norms = padded.unfold(0, n_fft, hop).norm(dim=-1)
    return log_mel_tol(log_mel.T, norms, n_fft=n_fft, weight_error=0.0, offset=1e-6).T


def statistics_tol(x: Tensor, tol: Tensor) -> Tensor:
    """Tolerance ``[2 M]`` on per-bin mean and population std over the frames of ``x [M, F]``, given ``tol``
    on ``x``. Moving every element by at most its ``tol`` moves the mean by at most ``mean(tol)`` and the std
    by at most ``max(tol)`` (the std is 1-Lipschitz in the largest change); each side's own rounding: the
    mean's ``F``-term sum and division, relative to ``mean |x|``, and the variance's ``F``-term sum of
    squares (relative; the square root halves it, kept whole here)."""
    x = x.double()
    frames = x.shape[-1]
    mean_tol = tol.mean(-1) + f32_tol(x.abs().mean(-1), ops=frames + 1)
    std_tol = tol.amax(-1) + f32_tol(x.std(-1, correction=0), ops=frames + 3)
    return torch.cat([mean_tol, std_tol])


def _extreme_shift(x: Tensor, tol: Tensor, largest: bool) -> float:
    """Bound on how far the min (max) of ``x`` can move when every element moves by its ``tol``: the largest
    ``tol`` among the elements that could become the extreme."""
    edge = x.max() if largest else x.min()
    cand = (
        (x + tol >= edge - tol.flatten()[x.argmax()])
        if largest
        else (x - tol <= edge + tol.flatten()[x.argmin()])
    )
    return float(tol[cand].max())


def min_max_tol(x: Tensor, tol: Tensor) -> Tensor:
    """Rounding tolerance on ``y = (x - lo) / (hi - lo + 1e-8)`` given ``tol`` on ``x``: ``dy <= (dx + dlo
    + y (dhi + dlo)) / (hi - lo)`` plus the formula's 4 roundings of ``y``. ``dlo`` is large when the clip's
    minimum sits on the spectrum's noise floor (ill-conditioned), so this bound is loose; the log-mel itself
    is compared element by element first."""
    x = x.double()
    d_lo, d_hi = _extreme_shift(x, tol, largest=False), _extreme_shift(x, tol, largest=True)
    span = float(x.max() - x.min())
    y = (x - x.min()) / (span + 1e-8)
    return (tol + d_lo + y * (d_hi + d_lo)) / span + f32_tol(y, ops=4)


def nmi_tol(y: np.ndarray, value: float) -> float:
    """float64 rounding bound on NMI / V-measure computed from a contingency table of ``k x k`` cells for
    ``N`` clips: ``k^2`` terms ``p log(p / (p_i p_j))`` (about 5 roundings each) summed, each at most
    ``3 log N`` in magnitude, then divided by an entropy ``H`` of the labels (``log k`` when balanced), plus
    a few roundings of the value itself: ``f64_tol`` with scale ``3 log N / H + value``."""
    _, counts = np.unique(y, return_counts=True)
    p = counts / counts.sum()
    h = float(-(p * np.log(p)).sum())
    k = counts.size
    return float(f64_tol(value, ops=5 * k * k + 10, scale=3 * np.log(y.size) / h + abs(value)))


def _pairs(n: np.ndarray | float) -> np.ndarray | float:
    return n * (n - 1) / 2


def ari_tol(y: np.ndarray, pred: np.ndarray, value: float) -> float:
    """float64 rounding bound on ARI ``(index - expected) / (max - expected)``: the pair counts are exact
    integers; ``expected = a b / total`` and ``max = (a + b) / 2`` take a few roundings, which the two
    differences turn into errors relative to ``(index + expected) / |max - expected|`` and ``|ARI| (max +
    expected) / |max - expected|``."""
    yc, pc = np.unique(y, return_inverse=True)[1], np.unique(pred, return_inverse=True)[1]
    table = np.zeros((yc.max() + 1, pc.max() + 1))
    np.add.at(table, (yc, pc), 1.0)
    index, a, b = _pairs(table).sum(), _pairs(table.sum(1)).sum(), _pairs(table.sum(0)).sum()
    expected, top = a * b / _pairs(y.size), (a + b) / 2
    scale = (index + expected + abs(value) * (top + expected)) / abs(top - expected)
    return float(f64_tol(value, ops=8, scale=scale))


def ranking_tol(
    sims: np.ndarray, positive: np.ndarray, valid: np.ndarray, cos_tol: float
) -> tuple[float, float]:
    """Tolerances ``(roc_auc, precision_at_1)`` on per-query retrieval scores averaged over the ``valid``
    queries, from float64 similarities ``sims [Q, G]`` (``-inf`` = not ranked) and ``positive [Q, G]``.

    Two implementations may order a (positive, negative) pair differently when their similarities lie within
    ``2 cos_tol`` (each side's cosine is within ``cos_tol`` of the exact one): 1 of the query's ``P N``
    pairs each; and the top-1 when the runner-up is that close (1 of the ``Q`` queries). Plus the float64
    rounding of the averages: an AUC (a sum over at most ``G`` non-negative terms) and the mean over ``Q``.
    """
    flips, tops = [], []
    for q in np.flatnonzero(valid):
        s, p = sims[q], positive[q]
        ranked = np.isfinite(s)
        sp, sn = s[ranked & p], s[ranked & ~p]
        flips.append(float((np.abs(sp[:, None] - sn[None, :]) <= 2 * cos_tol).mean()))
        top = np.sort(s[ranked])[::-1]
        tops.append(float(len(top) > 1 and top[0] - top[1] <= 2 * cos_tol))
    nq = max(len(flips), 1)
    g = sims.shape[1]
    auc_tol = float(np.mean(flips or [0.0])) + float(f64_tol(1.0, ops=g + nq + 6))
    p1_tol = float(np.mean(tops or [0.0])) + float(f64_tol(1.0, ops=nq + 1))
    return auc_tol, p1_tol


def cosine_tol(dim: int, dtype: torch.dtype | np.dtype | type = np.float64) -> float:
    """Bound on one computed cosine of two ``dim``-vectors in ``dtype``: two ``dim``-term sums (the dot
    product, a norm) and a few roundings to normalise, relative to 1 (``|a . b| <= |a| |b|``)."""
    return float(f32_tol(1.0, ops=2 * dim + 4, sides=1, dtype=dtype))


def kaldi_frontend_ops(win: int, n_fft: int) -> int:
    """Roundings on the longest path to one Kaldi log-fbank value: the frame's mean (``win`` terms), DC
    removal, pre-emphasis and window (3), ``ceil(log2 n_fft)`` butterfly stages (4 each: a complex multiply
    and an add), the power (2), the filter product (``n_fft // 2 + 1`` terms), the log (2) and the
    normalisation (3)."""
    return win + 3 + 4 * math.ceil(math.log2(n_fft)) + 2 + (n_fft // 2 + 1) + 2 + 3


def mel_frontend_ops(n_fft: int) -> int:
    """Roundings on the longest path to one value of :class:`avexlab.audio.mel.MelFrontend`'s output: the
    window (1), the FFT stages (4 each), the power (2), the filter product (``n_fft // 2 + 1``), the offset
    and log (2), the min-max (4)."""
    return 1 + 4 * math.ceil(math.log2(n_fft)) + 2 + (n_fft // 2 + 1) + 2 + 4


def encoder_ops(encoder: torch.nn.Module, *, samples: int, layer: int) -> int:
    """Roundings on the longest path from a ``samples``-long clip to one value of layer ``layer``'s output
    ``[T_l, D_l]`` of one of this project's encoders (front end included), for :func:`encoder_tol`.

    Every rounding error is modelled as carried to the output with a gain of at most one relative to the
    output row's largest value: the layers renormalise (LayerNorm, BatchNorm) and the test inputs are
    broadband (every mel band holds a fair share of a frame's energy, so the log and the min-max do not
    amplify). Comparisons whose inputs break that (the official fixtures' chirps, with bands near the
    float32 floor) compare the front end on its own with :func:`kaldi_fbank_tol` and feed the encoder the
    reference's own features instead.
    """
    from avexlab.models.beats import BEATs
    from avexlab.models.eat import EAT
    from avexlab.models.efficientnet import EfficientNetEncoder
    from avexlab.models.logmel import LogMelStatistics

    layer = layer % encoder.num_layers
    cfg = encoder.config
    if isinstance(encoder, BEATs | EAT):
        sr = cfg["sample_rate"]
        win, hop = int(sr * cfg["frame_length_ms"] / 1000), int(sr * cfg["frame_shift_ms"] / 1000)
        n_fft = 1 << (win - 1).bit_length()
        frames = 1 + (samples - win) // hop
        if isinstance(encoder, BEATs):
            p, pd, d = cfg["input_patch_size"], cfg["patch_dim"], cfg["encoder_embed_dim"]
            heads = cfg["encoder_attention_heads"]
            tokens = frames // p * (cfg["num_mel_bins"] // p)
            # patch conv, LayerNorm over the patch channels, projection, positional conv + GELU + add, LN
            ops = p * p + (2 * pd + 6) + (pd if pd != d else 0)
            ops += d // cfg["conv_pos_groups"] * cfg["conv_pos"] + 4 + 1 + (2 * d + 6)
            gate = (d // heads + 4 + 4 + 3) if cfg["gru_rel_pos"] else 0  # relative-bias gate per layer
            ops += (layer + 1) * gate
            ops += transformer_ops(
                dim=d, ffn=cfg["encoder_ffn_embed_dim"], heads=heads, tokens=tokens, layers=layer + 1
            )
        else:
            p, d = cfg["patch_size"], cfg["embed_dim"]
            tokens = -(-frames // p) * (cfg["num_mel_bins"] // p) + 1  # frames padded to whole patches, CLS
            ops = p * p + 2 + (2 * d + 6)  # patch conv, positions, the first LayerNorm
            ops += transformer_ops(
                dim=d, ffn=int(d * cfg["mlp_ratio"]), heads=cfg["num_heads"], tokens=tokens, layers=layer + 1
            )
        return kaldi_frontend_ops(win, n_fft) + ops
    if isinstance(encoder, EfficientNetEncoder | LogMelStatistics):
        front = encoder.frontend
        frames = samples // front.hop_length + 1
        ops = mel_frontend_ops(front.n_fft)
        if isinstance(encoder, LogMelStatistics):
            return ops + frames + 4  # the mean (or the variance's sum) over frames, and the square root
        h, w = front.n_mels, frames
        for stage in list(encoder.features)[: layer + 1]:
            stride = max((m.stride[0] for m in stage.modules() if isinstance(m, torch.nn.Conv2d)), default=1)
            h, w = -(-h // stride), -(-w // stride)
            blocks = sum(
                1 for m in stage.modules() if type(m).__name__ in ("SqueezeExcite", "SqueezeExcitation")
            )
            ops += module_ops(stage) + blocks * h * w  # each squeeze-excitation averages its H x W map
        return ops + h  # the hidden state is the mean over frequency
    from avexlab.models.birdnet import BirdNET

    if isinstance(encoder, BirdNET):
        return birdnet_graph_ops()
    raise TypeError(f"no rounding model for {type(encoder).__name__}")


@functools.cache
def birdnet_graph_ops() -> int:
    """Roundings on any path through the installed BirdNET TFLite graph, bounded by summing over every
    operator of the graph (parallel branches included, so more than any one path): each convolution's or
    fully connected layer's reduction length (the filter's size over its input dimensions), each MEAN's
    reduced size where the graph states it, each FFT's ``4 log2 n`` stages, and one rounding for every other
    operator. The graph is opaque to this project (LiteRT runs it, XNNPACK picks its kernels by batch size),
    so it is read from the model file itself."""
    from ai_edge_litert import schema_py_generated as schema

    from avexlab.models.birdnet import model_files

    path, _, _ = model_files()
    model = schema.ModelT.InitFromPackedBuf(bytearray(Path(path).read_bytes()), 0)
    graph = model.subgraphs[0]
    names = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}
    ops = 0
    for op in graph.operators:
        code = model.operatorCodes[op.opcodeIndex]
        name = names[max(code.builtinCode, code.deprecatedBuiltinCode)]
        shape = [[int(d) for d in graph.tensors[i].shape] for i in op.inputs[:2] if i >= 0]
        if name in ("CONV_2D", "FULLY_CONNECTED"):
            ops += math.prod(shape[1][1:])
        elif name == "DEPTHWISE_CONV_2D":
            ops += math.prod(shape[1][1:3])
        elif name == "MEAN" and all(d > 0 for d in shape[0]):
            ops += math.prod(shape[0][1:])
        elif name == "RFFT2D":
            ops += 4 * math.ceil(math.log2(max(shape[0][-1], 2)))
        else:
            ops += 1
    return ops


def encoder_tol(encoder: torch.nn.Module, reference: Tensor, *, samples: int, layer: int) -> Tensor:
    """Tolerance on layer ``layer``'s output ``reference [..., T_l, D_l]`` for a clip of ``samples`` samples,
    two float32 computations: ``f32_tol`` with :func:`encoder_ops` roundings, scaled per token by its largest
    value."""
    ops = encoder_ops(encoder, samples=samples, layer=layer)
    return f32_tol(reference, ops=ops, scale=row_scale(reference))


def bf16_casts(encoder: torch.nn.Module) -> int:
    """bfloat16 roundings on the longest path through one of this project's encoders under CPU autocast:
    3 per convolution or linear layer (its input, its weight, its output; sums accumulate in float32), 2 per
    attention (scores and weighted values leave the kernel in bfloat16). The front ends stay float32."""
    from avexlab.models.beats import BEATs
    from avexlab.models.eat import EAT
    from avexlab.models.efficientnet import EfficientNetEncoder

    cfg = encoder.config
    if isinstance(encoder, BEATs):  # patch conv, projection, positional conv; q, k/v, out, fc1, fc2, gate
        return 3 * 3 + cfg["encoder_layers"] * (3 * 6 + 2)
    if isinstance(encoder, EAT):  # patch conv; qkv, out, fc1, fc2
        return 3 + cfg["depth"] * (3 * 4 + 2)
    if isinstance(encoder, EfficientNetEncoder):
        return 3 * sum(isinstance(m, torch.nn.modules.conv._ConvNd) for m in encoder.features.modules())
    raise TypeError(f"no bfloat16 model for {type(encoder).__name__}")


def bf16_rel_tol(casts: int) -> float:
    """Norm-wise relative tolerance ``||low - ref|| / ||ref||`` of a bfloat16 (autocast or bf16 weights) result
    against float32, after ``casts`` bfloat16 roundings on each value's path (:func:`bf16_casts`).

    Each rounding is a relative error uniform in ``[-u, u]`` (``u = 2**-8``; root mean square ``u / sqrt 3``),
    independent; a path of ``casts`` of them gives ``u sqrt(casts / 3)`` per value, carried with gain at most
    one; the norm over a vector of many such values concentrates at that root mean square, and
    ``2 sqrt 3`` times it (``2 u sqrt(casts)``) leaves a wide margin for that concentration. A norm-wise
    bound, not per element: the per-element probabilistic bound (``lambda`` = 8) would allow errors of tens of percent
    at this precision and test nothing.
    """
    return 2.0 * unit_roundoff(torch.bfloat16) * math.sqrt(casts)


def _as_f64(x: Tensor | np.ndarray | float | Sequence[float]) -> Tensor:
    if isinstance(x, Tensor):
        return x.detach().to("cpu", torch.float64)
    return torch.from_numpy(np.array(x, dtype=np.float64))  # a copy: polars/numpy views may be read-only


def assert_close_f32(
    actual: Tensor | np.ndarray | float | Sequence[float],
    expected: Tensor | np.ndarray | float | Sequence[float],
    tol: Tensor | np.ndarray | float,
    *,
    what: str = "values",
) -> float:
    """Assert ``|actual - expected| <= tol`` element-wise (same shape, NaN where the other is NaN).

    On failure the message names the worst element (largest error / tolerance): index, actual, expected,
    error, tolerance, ratio, and the number of failing elements. Returns the worst ratio (<= 1), so a test
    can report how close it came.
    """
    a, e = _as_f64(actual), _as_f64(expected)
    assert a.shape == e.shape, f"{what}: shape {tuple(a.shape)} != expected {tuple(e.shape)}"
    t = _as_f64(tol).expand_as(e)
    nan_a, nan_e = torch.isnan(a), torch.isnan(e)
    assert torch.equal(nan_a, nan_e), (
        f"{what}: NaN at {int((nan_a ^ nan_e).sum())} positions of only one side"
    )
    err = (a - e).abs().masked_fill(nan_e, 0.0)
    inf = torch.isinf(e) | torch.isinf(a)
    if inf.any():
        assert torch.equal(a[inf], e[inf]), f"{what}: infinities differ"
        err = err.masked_fill(inf, 0.0)
    ratio = torch.where(err == 0, torch.zeros_like(err), err / t)
    if ratio.numel() == 0:
        return 0.0
    worst = int(ratio.argmax())
    worst_ratio = float(ratio.flatten()[worst])
    if not worst_ratio <= 1.0:
        idx = tuple(int(i) for i in np.unravel_index(worst, tuple(e.shape))) if e.dim() else ()
        n_bad = int((ratio > 1.0).sum())
        raise AssertionError(
            f"{what}: {n_bad} of {e.numel()} elements exceed the rounding tolerance; worst at {idx}: "
            f"actual {float(a.flatten()[worst]):.9g}, expected {float(e.flatten()[worst]):.9g}, "
            f"|error| {float(err.flatten()[worst]):.3g} > tolerance {float(t.flatten()[worst]):.3g} "
            f"(ratio {worst_ratio:.3g})"
        )
    return worst_ratio
