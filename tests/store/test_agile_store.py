"""The embedding store: windows, embeddings equal to extract_embeddings, identity checks, append, reading
through memory maps, incomplete builds, torn logs, float16, the shard lock."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import numpy as np
import polars as pl
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from agile_archive import CALLS, HOP_S, RATES, WINDOW_S, write_archive  # noqa: E402

from avexlab.agile.store import EmbeddingStore, StoreError, _locked, build_store  # noqa: E402
from avexlab.audio.io import audio_info  # noqa: E402
from avexlab.data.schema import SCHEMA  # noqa: E402
from avexlab.evaluate.embed import extract_embeddings, resolve_encoder  # noqa: E402

F32 = np.finfo(np.float32).eps


def _as_manifest(windows: pl.DataFrame) -> pl.DataFrame:
    df = windows.select(
        pl.col("window_id").alias("clip_id"),
        "path",
        pl.lit("w").alias("dataset"),
        pl.lit("test").alias("split"),
        pl.lit("soundscape").alias("domain"),
        pl.lit(["x"], dtype=pl.List(pl.String)).alias("labels"),
        "start_s",
        "end_s",
    )
    return df.with_columns(pl.lit(None, dtype=t).alias(c) for c, t in SCHEMA.items() if c not in df.columns)


def test_windows_tile_every_recording_as_sliding_windows_does(
    built_store: EmbeddingStore, archive: Path
) -> None:
    w = built_store.windows
    assert w["row"].to_list() == list(range(w.height))
    assert sorted(w["path"].unique().to_list()) == sorted(CALLS)
    for path in CALLS:
        dur = audio_info(archive / path).duration_s
        starts = w.filter(pl.col("path") == path)["start_s"].to_numpy()
        ends = w.filter(pl.col("path") == path)["end_s"].to_numpy()
        # the last window reaches the end; no window starts after it; each is clipped at the end of the file
        n = int(np.ceil((dur - WINDOW_S) / HOP_S)) + 1
        np.testing.assert_allclose(starts, np.arange(n) * HOP_S, rtol=0, atol=1e-9)
        np.testing.assert_allclose(ends, np.minimum(starts + WINDOW_S, dur), rtol=0, atol=1e-9)
    assert w["window_id"].n_unique() == w.height


def test_store_rows_equal_extract_embeddings_of_the_same_windows(
    built_store: EmbeddingStore, archive: Path
) -> None:
    """The store's definition of a window embedding is the library's: a manifest row [start, end) cropped
    or padded to the window. Batches differ (per unit vs one manifest), so the comparison allows a few
    float32 ulps of the largest value (reduction order), relative to the magnitude."""
    ref = extract_embeddings(
        resolve_encoder("logmel:tiny"),
        _as_manifest(built_store.windows),
        root=archive,
        clip_s=WINDOW_S,
        progress=False,
    ).array()
    got = built_store.vectors(np.arange(len(built_store)))
    assert got.shape == ref.shape == (len(built_store), built_store.dim)
    np.testing.assert_allclose(got, ref, rtol=0, atol=8 * F32 * np.abs(ref).max())
    # the 22.05 kHz stereo file was resampled and mixed down like load_audio does: its rows are there
    assert RATES and built_store.windows.filter(pl.col("path") == "dusk.flac").height > 0


def test_identity_recorded_and_other_encoders_or_parameters_refused(
    built_store: EmbeddingStore, archive: Path
) -> None:
    meta = json.loads((built_store.path / "store.json").read_text())
    assert meta["encoder"]["spec"] == "logmel:tiny" and len(meta["encoder"]["hash"]) == 64
    assert (meta["window_s"], meta["hop_s"], meta["layer"], meta["pooling"]) == (WINDOW_S, HOP_S, -1, "mean")
    with pytest.raises(StoreError, match="weights hash"):
        built_store.check_encoder(resolve_encoder("logmel:base"))
    built_store.check_encoder(built_store.load_encoder())
    with pytest.raises(StoreError, match="weights hash"):
        build_store(archive, built_store.path, "logmel:base", window_s=WINDOW_S, hop_s=HOP_S, progress=False)
    with pytest.raises(StoreError, match="hop_s=0.25"):
        build_store(archive, built_store.path, "logmel:tiny", window_s=WINDOW_S, hop_s=0.25, progress=False)


def test_rerun_adds_nothing_and_a_grown_folder_is_appended(tmp_path: Path, archive: Path) -> None:
    src = tmp_path / "archive"
    shutil.copytree(archive, src)
    first = build_store(src, tmp_path / "s", "logmel:tiny", window_s=WINDOW_S, hop_s=HOP_S, progress=False)
    before = first.vectors(np.arange(len(first)))
    again = build_store(src, tmp_path / "s", "logmel:tiny", window_s=WINDOW_S, hop_s=HOP_S, progress=False)
    assert len(again.segments) == 1 and again.windows.equals(first.windows)
    write_archive(src, seed=5, files={"later/new.wav": [("chirp", 3.0)]})
    grown = build_store(src, tmp_path / "s", "logmel:tiny", window_s=WINDOW_S, hop_s=HOP_S, progress=False)
    assert len(grown.segments) == 2
    new = grown.windows.filter(pl.col("row") >= len(first))
    assert new["path"].unique().to_list() == ["later/new.wav"]
    assert grown.windows.head(len(first)).equals(first.windows)  # old rows keep their numbers
    assert grown.vectors(np.arange(len(first))).tobytes() == before.tobytes()
    alone = build_store(
        src / "later", tmp_path / "alone", "logmel:tiny", window_s=WINDOW_S, hop_s=HOP_S, progress=False
    )
    np.testing.assert_array_equal(grown.vectors(new["row"].to_numpy()), alone.vectors(np.arange(len(alone))))


def test_reads_through_memory_maps_in_chunks(built_store: EmbeddingStore) -> None:
    maps = built_store._shard_maps()
    assert maps and all(isinstance(a, np.memmap) for _, _, a in maps)
    chunks = list(built_store.iter_chunks(chunk_rows=7))
    assert all(c.shape[0] <= 7 for _, c in chunks)
    assert [r for r, _ in chunks] == list(range(0, len(built_store), 7))
    whole = np.concatenate([c for _, c in chunks])
    rows = np.random.default_rng(0).permutation(len(built_store))[:25]
    np.testing.assert_array_equal(built_store.vectors(rows), whole[rows])
    mean, std = built_store.stats()
    np.testing.assert_allclose(
        mean, whole.astype(np.float64).mean(0), rtol=1e-9, atol=1e-9 * np.abs(whole).max()
    )
    np.testing.assert_allclose(
        std, whole.astype(np.float64).std(0), rtol=1e-7, atol=1e-7 * np.abs(whole).max()
    )
    # kept on disk, named by the row count: a reopened store reads the same statistics
    assert (built_store.path / f"stats-{len(built_store)}.npz").is_file()
    again = EmbeddingStore.open(built_store.path).stats()
    assert again[0].tobytes() == mean.tobytes() and again[1].tobytes() == std.tobytes()
    with pytest.raises(StoreError, match="indices in"):
        built_store.vectors([len(built_store)])


def test_lost_commits_make_the_store_incomplete_until_the_same_build_resumes(
    store_copy: Path, archive: Path
) -> None:
    store = EmbeddingStore.open(store_copy)
    ref = store.vectors(np.arange(len(store)))
    log = store.segments[0].log_file(0)
    lines = log.read_bytes().splitlines(keepends=True)
    assert len(lines) == store.segments[0].units.height > 3
    # lose two commits and tear the last line, as a kill between a unit's rows and its log line would
    log.write_bytes(b"".join(lines[:-3]) + lines[-3][: len(lines[-3]) // 2])
    arr = np.load(store.segments[0].shard_file(0), mmap_mode="r+")
    arr[-5:] = 0.0
    arr.flush()
    del arr
    with pytest.raises(StoreError, match="3 unit"):
        EmbeddingStore.open(store_copy)
    again = build_store(archive, store_copy, "logmel:tiny", window_s=WINDOW_S, hop_s=HOP_S, progress=False)
    assert again.vectors(np.arange(len(again))).tobytes() == ref.tobytes()
    assert again.verify() == []
    # each unit has exactly one parsable commit line; the torn one stays, unparsable
    parsed = []
    for line in log.read_bytes().split(b"\n"):
        try:
            parsed.append(json.loads(line)["unit"])
        except ValueError:
            continue
    assert sorted(parsed) == list(range(again.segments[0].units.height))
    # verify() recomputes every unit's hash: a changed row is found
    arr = np.load(store.segments[0].shard_file(0), mmap_mode="r+")
    arr[3, 0] += 1.0
    arr.flush()
    del arr
    problems = EmbeddingStore.open(store_copy).verify()
    assert len(problems) == 1 and "unit 0 " in problems[0] and "hash mismatch" in problems[0]


def test_float16_store_halves_the_bytes_and_rounds_like_numpy(
    tmp_path: Path, archive: Path, built_store: EmbeddingStore
) -> None:
    half = build_store(
        archive,
        tmp_path / "h",
        "logmel:tiny",
        window_s=WINDOW_S,
        hop_s=HOP_S,
        dtype="float16",
        progress=False,
    )
    f32 = built_store.vectors(np.arange(len(built_store)))
    got = half.vectors(np.arange(len(half)))
    assert got.dtype == np.float32
    np.testing.assert_array_equal(got, f32.astype(np.float16).astype(np.float32))
    assert (
        half.segments[0].shard_file(0).stat().st_size
        < built_store.segments[0].shard_file(0).stat().st_size * 0.55
    )


def test_a_second_writer_of_a_shard_is_refused(tmp_path: Path) -> None:
    lock = tmp_path / "shard-000.lock"
    with _locked(lock), pytest.raises(StoreError, match="running build"), _locked(lock):
        pass
    with _locked(lock):  # released: can be taken again
        pass


def test_bad_archives_get_clear_errors(tmp_path: Path) -> None:
    from avexlab.errors import DataNotFoundError

    (tmp_path / "empty").mkdir()
    with pytest.raises(DataNotFoundError, match="audio files"):
        build_store(tmp_path / "empty", tmp_path / "s", "logmel:tiny", progress=False)
    with pytest.raises(DataNotFoundError, match="nothing at"):
        build_store(tmp_path / "nowhere", tmp_path / "s", "logmel:tiny", progress=False)
    with pytest.raises(StoreError, match="store.json"):
        EmbeddingStore.open(tmp_path / "empty")
