"""save_pretrained / from_pretrained: identical logits after a round trip; every broken folder is a clear error."""
import json

import pytest
import torch
from safetensors.torch import save_file

from autobert.model import (CheckpointError, CheckpointNotFoundError, ForMaskedLM, ForSequenceClassification,
                            from_pretrained, tiny)

IDS = torch.randint(0, 97, (2, 11), generator=torch.Generator().manual_seed(0))
MASK = torch.tensor([[1] * 11, [1] * 7 + [0] * 4])


@pytest.fixture
def saved(tmp_path):
    model = ForMaskedLM(tiny(["abz_softsign_key_qv", 5, "standard"])).eval()
    model.save_pretrained(tmp_path)
    return model, tmp_path


def test_round_trip_gives_identical_logits(saved):
    model, path = saved
    assert sorted(p.name for p in path.iterdir()) == ["config.json", "model.safetensors"]
    loaded = ForMaskedLM.from_pretrained(path)
    assert loaded.config == model.config and not loaded.training
    assert torch.equal(loaded(IDS, MASK).logits, model(IDS, MASK).logits)
    doc = json.loads((path / "config.json").read_text())
    assert doc["format_version"] == 1 and doc["head"] == {"type": "masked_lm"}


def test_classification_round_trip_and_head_check(tmp_path):
    model = ForSequenceClassification(tiny([3, "linear"]), num_labels=1).eval()
    model.save_pretrained(tmp_path)
    loaded = from_pretrained(tmp_path)
    assert isinstance(loaded, ForSequenceClassification) and loaded.num_labels == 1
    assert torch.equal(loaded(IDS, MASK).logits, model(IDS, MASK).logits)
    with pytest.raises(CheckpointError, match="config.json.*not a ForMaskedLM"):
        ForMaskedLM.from_pretrained(tmp_path)


def test_truncated_weights(saved):
    _, path = saved
    f = path / "model.safetensors"
    data = f.read_bytes()
    f.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="model.safetensors.*corrupt or truncated"):
        from_pretrained(path)
    f.write_bytes(data[:5])
    with pytest.raises(CheckpointError, match="model.safetensors"):
        from_pretrained(path)


def test_tampered_header_and_data(saved):
    _, path = saved
    f = path / "model.safetensors"
    data = bytearray(f.read_bytes())
    header_len = int.from_bytes(data[:8], "little")
    broken = bytearray(data)
    broken[8:8 + header_len] = b"{" * header_len  # header no longer JSON
    f.write_bytes(bytes(broken))
    with pytest.raises(CheckpointError, match="model.safetensors.*corrupt"):
        from_pretrained(path)
    flipped = bytearray(data)
    flipped[-3] ^= 0xFF  # one weight byte changed: caught by the recorded sha256
    f.write_bytes(bytes(flipped))
    with pytest.raises(CheckpointError, match="model.safetensors.*sha256"):
        from_pretrained(path)


def test_mismatched_tensors(saved):
    model, path = saved
    state = {k: v.contiguous() for k, v in model.state_dict().items()}
    f = path / "model.safetensors"
    renamed = dict(state)
    renamed["backbone.layers.0.mixer.v_proj.weight"] = renamed.pop("backbone.layers.0.mixer.q_proj.weight")
    save_file(renamed, str(f))
    with pytest.raises(CheckpointError, match="missing tensors .*q_proj.*unexpected tensors .*v_proj"):
        from_pretrained(path)
    reshaped = dict(state)
    reshaped["decoder_bias"] = torch.zeros(98)
    save_file(reshaped, str(f))
    with pytest.raises(CheckpointError, match="decoder_bias.*shape"):
        from_pretrained(path)


def test_bad_config(saved):
    _, path = saved
    cfg = path / "config.json"
    good = json.loads(cfg.read_text())
    cfg.write_text("{oops")
    with pytest.raises(CheckpointError, match="config.json.*not valid JSON"):
        from_pretrained(path)
    cfg.write_text(json.dumps({**good, "format_version": 7}))
    with pytest.raises(CheckpointError, match="config.json.*format_version"):
        from_pretrained(path)
    cfg.write_text(json.dumps({**good, "architecture": {**good["architecture"], "heads": 5}}))
    with pytest.raises(CheckpointError, match="config.json.*bad architecture.*heads"):
        from_pretrained(path)
    cfg.write_text(json.dumps({**good, "head": {"type": "sequence_classification"}}))
    with pytest.raises(CheckpointError, match="config.json.*num_labels"):
        from_pretrained(path)
    # a valid config for another architecture: the weights no longer fit it
    arch = {**good["architecture"], "layers": good["architecture"]["layers"][:2]}
    cfg.write_text(json.dumps({**good, "architecture": arch}))
    with pytest.raises(CheckpointError, match="model.safetensors.*unexpected tensors"):
        from_pretrained(path)


def test_missing_files(tmp_path):
    with pytest.raises(CheckpointNotFoundError):
        from_pretrained(tmp_path / "nope")
    with pytest.raises(CheckpointNotFoundError, match="config.json"):
        from_pretrained(tmp_path)
    assert issubclass(CheckpointError, ValueError)
