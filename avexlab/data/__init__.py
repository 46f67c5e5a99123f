"""Data: manifest schema and validation, label spaces and splits, taxonomy, real-data sources, the paper's
dataset registry and the torch dataset. See ``data_manifests/README.md`` for the on-disk layout."""

from avexlab.data.dataset import ManifestDataset, Skipped, collate
from avexlab.data.labels import LabelSpace, assign_splits
from avexlab.data.manifest import (
    manifest_hash,
    read_manifest,
    validate_manifest,
    validate_manifest_file,
    write_events,
    write_manifest,
)

__all__ = [
    "LabelSpace",
    "ManifestDataset",
    "Skipped",
    "assign_splits",
    "collate",
    "manifest_hash",
    "read_manifest",
    "validate_manifest",
    "validate_manifest_file",
    "write_events",
    "write_manifest",
]
