"""Audio: read/write in seconds, crop/pad/window with padding masks (``io``); frontends live beside it.

torchaudio is imported only when resampling is needed, so ``import avexlab.audio`` stays light.
"""

from avexlab.audio.io import (
    audio_info,
    crop_or_pad,
    load_audio,
    register_uri_scheme,
    save_audio,
    sliding_windows,
)

__all__ = [
    "audio_info",
    "crop_or_pad",
    "load_audio",
    "register_uri_scheme",
    "save_audio",
    "sliding_windows",
]
