"""Adapters from real-data layouts to validated manifests: ``prepare_*`` functions, one per layout.

Each returns a manifest (and an events table where the layout has event annotations) whose paths are
relative to the given audio root. Nothing is copied or decoded: durations and rates come from headers.
"""

from avexlab.data.sources.audiofolder import prepare_audiofolder
from avexlab.data.sources.raven import prepare_raven, read_raven_table
from avexlab.data.sources.sonic_visualiser import prepare_sonic_visualiser, read_sonic_visualiser

__all__ = [
    "prepare_audiofolder",
    "prepare_raven",
    "prepare_sonic_visualiser",
    "read_raven_table",
    "read_sonic_visualiser",
]
