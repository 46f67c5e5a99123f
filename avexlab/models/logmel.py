"""The non-learned baseline encoder: log-mel statistics, so every results table shows what learning added.

One token per clip: the mean and the standard deviation over time of ``log(mel + 1e-6)`` in each mel bin
(the reference EfficientNet frontend's log-mel before its min-max), ``[B, 1, 2 * n_mels]``. Padded
samples are ignored, so a clip gives the same features alone or inside a padded batch. The encoder has
no parameters (nothing to train or save beyond its config); it follows the Encoder contract so that the
embedding, probing, retrieval and clustering code needs no special case.
"""

from __future__ import annotations

from torch import Tensor

from avexlab.audio.mel import MelFrontend

from .base import Encoder, EncoderOutput
from .registry import register_encoder


@register_encoder(
    "logmel",
    presets={
        "tiny": {"sample_rate": 16000, "n_mels": 64},
        "base": {"sample_rate": 16000, "n_mels": 128},
    },
)
class LogMelStatistics(Encoder):
    """Per-bin mean and std of the log-mel over a clip's valid frames: ``embed_dim = 2 * n_mels``.

    Args:
        sample_rate: input rate in Hz (16000, 32000, 48000; 50 ms windows, 10 ms hop, mel up to Nyquist).
        n_mels: mel bins (128 = the reference frontend; ``tiny`` uses 64).
    """

    def __init__(self, sample_rate: int = 16000, n_mels: int = 128) -> None:
        super().__init__()
        self.config = {"sample_rate": int(sample_rate), "n_mels": int(n_mels)}
        self.sample_rate = int(sample_rate)
        self.frontend = MelFrontend(sample_rate, n_mels)
        self.embed_dim = 2 * int(n_mels)
        self.num_layers = 1

    def forward(self, wave: Tensor, padding_mask: Tensor | None = None) -> EncoderOutput:
        """``wave`` ``[B, T]`` float32 at ``sample_rate`` Hz (+ trailing ``padding_mask`` ``[B, T]`` bool).

        Returns one token per clip, ``tokens`` ``[B, 1, 2 * n_mels]`` (means first, then population standard
        deviations); the token is never padding, so ``padding_mask`` is None.
        """
        stats = self.frontend.statistics(wave, padding_mask)[:, None, :]
        return EncoderOutput(tokens=stats, hidden_states=[stats], padding_mask=None)
