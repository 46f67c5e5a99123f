"""save_encoder / load_encoder: avexlab's format, official formats by content, and every failure named."""

from __future__ import annotations

import argparse
import json
import shutil

import pytest
import torch
import torchvision

from avexlab import __version__
from avexlab.errors import CheckpointError, ConfigError, DataNotFoundError
from avexlab.models import build_encoder, load_encoder, save_encoder
from avexlab.models.checkpoints import CONFIG_FILE, WEIGHTS_FILE, file_sha256
from avexlab.models.efficientnet import EfficientNetEncoder, torchvision_to_timm


def _perturb_batchnorm(model: torch.nn.Module) -> None:
    g = torch.Generator().manual_seed(0)
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.copy_(torch.rand(m.running_mean.shape, generator=g) * 0.2 - 0.1)
            m.running_var.copy_(torch.rand(m.running_var.shape, generator=g) + 0.5)


@pytest.fixture()
def tiny() -> EfficientNetEncoder:
    torch.manual_seed(11)
    enc = build_encoder("efficientnet", "tiny")
    _perturb_batchnorm(enc)
    return enc.eval()


@pytest.fixture(scope="module")
def b0_state() -> dict[str, torch.Tensor]:
    torch.manual_seed(21)
    model = torchvision.models.efficientnet_b0(weights=None, num_classes=7)
    _perturb_batchnorm(model)
    return model.state_dict()


@pytest.fixture(scope="module")
def wave() -> torch.Tensor:
    return torch.randn(2, 12000, generator=torch.Generator().manual_seed(3))


def test_round_trip_from_directory_weights_or_json(tmp_path, tiny, wave):
    out = save_encoder(tiny, tmp_path / "run")
    record = json.loads((out / CONFIG_FILE).read_text())
    assert record["name"] == "efficientnet" and record["config"] == tiny.config
    assert record["avexlab_version"] == __version__
    assert record["weights_sha256"] == file_sha256(out / WEIGHTS_FILE)
    assert sorted(p.name for p in out.iterdir()) == [WEIGHTS_FILE, CONFIG_FILE]  # no temp files left
    expected = tiny.embed(wave)
    for target in (out, out / WEIGHTS_FILE, out / CONFIG_FILE):
        loaded = load_encoder(target)
        assert type(loaded) is EfficientNetEncoder and not loaded.training
        torch.testing.assert_close(loaded.embed(wave), expected, atol=0, rtol=0)
    # the safetensors file alone carries the architecture in its header
    lone = tmp_path / "elsewhere" / "weights.safetensors"
    lone.parent.mkdir()
    shutil.copy(out / WEIGHTS_FILE, lone)
    torch.testing.assert_close(load_encoder(lone).embed(wave), expected, atol=0, rtol=0)


def test_overwrite_and_encoder_without_parameters(tmp_path, wave):
    enc = build_encoder("logmel", "tiny")
    save_encoder(enc, tmp_path)
    first = file_sha256(tmp_path / WEIGHTS_FILE)
    save_encoder(build_encoder("logmel", "base"), tmp_path)
    loaded = load_encoder(tmp_path)
    assert loaded.config == {"sample_rate": 16000, "n_mels": 128}
    assert file_sha256(tmp_path / WEIGHTS_FILE) != first
    assert loaded.embed(wave).shape == (2, 256)


def test_hash_mismatch_and_truncation_are_named(tmp_path, tiny):
    save_encoder(tiny, tmp_path)
    weights = tmp_path / WEIGHTS_FILE
    data = bytearray(weights.read_bytes())
    data[-5] ^= 0xFF  # flip bits inside the last tensor
    weights.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match=rf"{WEIGHTS_FILE}: expected SHA-256"):
        load_encoder(tmp_path)
    truncated = tmp_path / "cut.safetensors"
    truncated.write_bytes(bytes(data[: len(data) // 2]))
    with pytest.raises(CheckpointError, match="cut.safetensors.*(truncated|corrupt)"):
        load_encoder(truncated)
    header_cut = tmp_path / "header.safetensors"
    header_cut.write_bytes(bytes(data[:40]))
    with pytest.raises(CheckpointError, match="header.safetensors.*truncated"):
        load_encoder(header_cut)


def test_missing_weights_are_named_and_a_grid_run_says_how_to_get_them(tmp_path, tiny):
    save_encoder(tiny, tmp_path)
    (tmp_path / WEIGHTS_FILE).unlink()
    with pytest.raises(CheckpointError, match=r"does not exist\. Copy the whole checkpoint directory\.$"):
        load_encoder(tmp_path)
    (tmp_path / "config.yaml").write_text("recipe: sl\n")  # a training run's folder, kept without weights
    with pytest.raises(CheckpointError, match=r"run `avexlab grid` with that folder's profile and seeds"):
        load_encoder(tmp_path)


def test_not_a_checkpoint(tmp_path):
    noise = tmp_path / "noise.bin"
    noise.write_bytes(
        bytes(torch.randint(1, 127, (4096,), generator=torch.Generator().manual_seed(0)).tolist())
    )
    with pytest.raises(CheckpointError, match="noise.bin: expected a checkpoint"):
        load_encoder(noise)
    text = tmp_path / "notes.txt"
    text.write_text("these are not weights\n")
    with pytest.raises(CheckpointError, match="notes.txt"):
        load_encoder(text)
    bad_json = tmp_path / "encoder.json"
    bad_json.write_text('{"format": "something-else"}')
    with pytest.raises(CheckpointError, match="encoder.json"):
        load_encoder(bad_json)
    with pytest.raises(DataNotFoundError, match="nothing at"):
        load_encoder(tmp_path / "missing.pt")
    empty = tmp_path / "emptydir"
    empty.mkdir()
    with pytest.raises(CheckpointError, match="emptydir.*checkpoint directory"):
        load_encoder(empty)


def test_torchvision_and_timm_state_dicts_load_as_efficientnet(tmp_path, b0_state, wave):
    reference = EfficientNetEncoder(num_classes=7).eval()
    reference.load_state_dict(b0_state)
    expected = reference.embed(wave)
    torch.save(b0_state, tmp_path / "tv.pth")
    torch.save({"state_dict": torchvision_to_timm(b0_state), "epoch": 3}, tmp_path / "timm.pth.tar")
    from safetensors.torch import save_file

    save_file({k: v.contiguous() for k, v in b0_state.items()}, tmp_path / "tv.safetensors")
    for name in ("tv.pth", "timm.pth.tar", "tv.safetensors"):
        enc = load_encoder(tmp_path / name)
        assert isinstance(enc, EfficientNetEncoder) and enc.config["num_classes"] == 7
        torch.testing.assert_close(enc.embed(wave), expected, atol=0, rtol=0)


def test_other_architecture_missing_keys_and_wrong_size(tmp_path, b0_state, tiny):
    torch.save(torchvision.models.resnet18(weights=None).state_dict(), tmp_path / "resnet.pt")
    with pytest.raises(CheckpointError, match="resnet.pt.*another architecture"):
        load_encoder(tmp_path / "resnet.pt")
    partial = dict(b0_state)
    del partial["features.3.1.block.1.0.weight"]
    torch.save(partial, tmp_path / "partial.pt")
    with pytest.raises(
        CheckpointError, match=r"partial.pt.*1 missing key\(s\): features.3.1.block.1.0.weight"
    ):
        load_encoder(tmp_path / "partial.pt")
    torch.save({**b0_state, "features.8.2.weight": torch.ones(3)}, tmp_path / "extra.pt")
    with pytest.raises(CheckpointError, match=r"extra.pt.*1 unexpected key\(s\): features.8.2.weight"):
        load_encoder(tmp_path / "extra.pt")
    # encoder.json describes tiny but the weights are base-sized
    save_encoder(tiny, tmp_path / "run")
    base = build_encoder("efficientnet", "base")
    from safetensors.torch import save_file

    weights = tmp_path / "run" / WEIGHTS_FILE
    save_file({k: v.contiguous() for k, v in base.state_dict().items()}, weights)
    record = json.loads((tmp_path / "run" / CONFIG_FILE).read_text())
    record["weights_sha256"] = file_sha256(weights)
    (tmp_path / "run" / CONFIG_FILE).write_text(json.dumps(record))
    with pytest.raises(
        CheckpointError, match=r"checkpoint.safetensors: the weights do not fit.*(missing|shape)"
    ):
        load_encoder(tmp_path / "run")
    record["name"] = "no-such-encoder"
    (tmp_path / "run" / CONFIG_FILE).write_text(json.dumps(record))
    with pytest.raises(CheckpointError, match="no-such-encoder"):
        load_encoder(tmp_path / "run")


def test_pickled_classes_refused_unless_opted_in(tmp_path, b0_state, wave):
    path = tmp_path / "with_args.pt"
    torch.save({"state_dict": b0_state, "args": argparse.Namespace(lr=0.1)}, path)
    with pytest.raises(
        CheckpointError, match=r"with_args.pt: the file pickles argparse.Namespace.*allow_pickle=True"
    ):
        load_encoder(path)
    with pytest.warns(UserWarning, match="arbitrary code"):
        enc = load_encoder(path, allow_pickle=True)
    assert isinstance(enc, EfficientNetEncoder)
    cut = tmp_path / "cut.pt"
    cut.write_bytes(path.read_bytes()[:1000])
    with pytest.raises(CheckpointError, match="cut.pt: not a readable torch checkpoint.*truncated"):
        load_encoder(cut)


@pytest.mark.parametrize(
    ("module", "ckpt"),
    [
        ("beats", {"cfg": {"encoder_layers": 2}, "model": {"w": torch.zeros(1)}}),
        ("eat", {"cfg": {"model": {"depth": 2}, "task": {}}, "model": {"w": torch.zeros(1)}}),
    ],
)
def test_official_checkpoints_dispatch_to_their_architecture(tmp_path, monkeypatch, module, ckpt):
    """Routing only: the architectures' own tests check that these functions reproduce the official code."""
    mod = pytest.importorskip(f"avexlab.models.{module}")
    calls = []
    made = build_encoder("logmel", "tiny")

    def record(obj, source=""):
        calls.append((obj, source))
        return made

    monkeypatch.setattr(mod, "from_official_checkpoint", record)
    path = tmp_path / f"{module}.pt"
    torch.save(ckpt, path)
    assert load_encoder(path) is made
    assert calls[0][1] == str(path) and calls[0][0]["cfg"] == ckpt["cfg"]


def test_hugging_face_port_dispatches_to_eat(tmp_path, monkeypatch):
    mod = pytest.importorskip("avexlab.models.eat")
    calls = []
    made = build_encoder("logmel", "tiny")

    def record(state_dict, config, source=""):
        calls.append((state_dict, config, source))
        return made

    monkeypatch.setattr(mod, "from_hf_state_dict", record)
    from safetensors.torch import save_file

    save_file({"model.blocks.0.w": torch.ones(2)}, tmp_path / "model.safetensors")
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "eat", "depth": 2}))
    for target in (tmp_path, tmp_path / "model.safetensors", tmp_path / "config.json"):
        assert load_encoder(target) is made
    state, config, source = calls[-1]
    assert (
        list(state) == ["model.blocks.0.w"] and config["depth"] == 2 and source.endswith("model.safetensors")
    )


@pytest.fixture()
def readers(monkeypatch):
    """The checkpoint-reader registry, with whatever a test registers removed afterwards."""
    from avexlab.models import registry

    registry.checkpoint_readers("path")  # import every architecture (they register their readers) first
    monkeypatch.setattr(registry, "_READERS", dict(registry._READERS))
    return registry


def test_a_new_format_registers_in_a_few_lines(tmp_path, readers, wave):
    """What an architecture module does for its own format (e.g. a TFLite file): a path reader here."""
    path = tmp_path / "model.bird"
    path.write_bytes(b"BIRD" + json.dumps({"n_mels": 32}).encode())
    with pytest.raises(CheckpointError, match=r"model.bird: expected a checkpoint.*EAT Hugging Face port"):
        load_encoder(path)

    def is_bird(p):
        return p.is_file() and p.read_bytes()[:4] == b"BIRD"

    def load_bird(p):
        return build_encoder("logmel", "tiny", **json.loads(p.read_bytes()[4:]))

    count = len(readers.checkpoint_readers("path"))
    for _ in range(2):  # registering the same function again (a reloaded module) replaces it
        readers.register_checkpoint_reader("a .bird file", recognise=is_bird, reads="path")(load_bird)
    assert len(readers.checkpoint_readers("path")) == count + 1
    enc = load_encoder(path)
    assert enc.name == "logmel" and enc.config["n_mels"] == 32 and not enc.training
    assert enc.embed(wave).shape == (2, 64)
    other = tmp_path / "other.bin"
    other.write_bytes(b"BIRC....")
    with pytest.raises(CheckpointError, match=r"other.bin: expected a checkpoint.*a \.bird file"):
        load_encoder(other)


def test_a_file_two_readers_recognise_is_refused(tmp_path, readers, b0_state):
    path = tmp_path / "tv.pth"
    torch.save(b0_state, path)

    @readers.register_checkpoint_reader("any dict", recognise=lambda obj: isinstance(obj, dict))
    def load_any_dict(obj, p):
        return build_encoder("logmel", "tiny")

    with pytest.raises(
        CheckpointError, match=r"tv.pth: expected one checkpoint reader.*found 2: EfficientNet-B0.*; any dict"
    ):
        load_encoder(path)
    with pytest.raises(ConfigError, match="reads='path' or 'object'"):
        readers.register_checkpoint_reader("x", recognise=bool, reads="file")
