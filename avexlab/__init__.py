"""avexlab: a notebook-first workbench for animal-vocalization encoders.

Reproduces and extends "What matters for animal vocalization encoding" (AVEX, ICLR 2026).
Heavy submodules (torch models, training) are imported lazily by their own packages.
"""

__version__ = "0.1.0"

from avexlab.errors import AvexlabError  # noqa: E402

__all__ = ["AvexlabError", "__version__"]
