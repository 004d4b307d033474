"""AutoBERT architectures as transformers models: AutoConfig/AutoModel* loading of the project's model
folders (bit for bit), the project's loader reading what transformers saves, safetensors and the
tamper check on both paths, the eager/fused attention switch, outputs and losses."""
import json
import random

import pytest
import torch

transformers = pytest.importorskip("transformers", minversion="5")
from transformers import (AutoConfig, AutoModel, AutoModelForMaskedLM,  # noqa: E402
                          AutoModelForSequenceClassification)

from autobert.hf import (AutoBertConfig, AutoBertForMaskedLM, AutoBertForSequenceClassification,  # noqa: E402
                         AutoBertModel)
from autobert.model import (CheckpointError, ForMaskedLM, ForSequenceClassification, SearchSpace,  # noqa: E402
                            from_pretrained, tiny)
from autobert.supernet import Supernet  # noqa: E402

HYBRID = ["standard", 3, "abz_sqrt_softplus_key", "abz_softsign_key_qv"]


def _batch(vocab=97, b=3, n=13, seed=1):
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(5, vocab, (b, n), generator=g)
    mask = torch.ones(b, n, dtype=torch.long)
    mask[1, 9:] = 0
    mask[2, 3:] = 0
    return ids, mask, torch.randint(0, 2, (b, n), generator=g)


def _searched_model(seed: int = 3) -> ForMaskedLM:
    """What the search evaluates: a sampled hybrid architecture (random graphs included) extracted
    from a BIWS supernet with the weights it inherits."""
    base = tiny(["standard"] * 4, dropout=0.0)
    space = SearchSpace(4, kernel_sizes=(3, 7), random_graph_prob=0.5)
    torch.manual_seed(seed)
    supernet = Supernet(base, kernel_sizes=(3, 7), space=space)
    layers = space.sample(random.Random(seed))
    return supernet.extract(layers).eval()


def test_config_round_trip_and_transformers_names(tmp_path):
    arch = tiny(HYBRID)
    config = AutoBertConfig(architecture=arch)
    assert config.arch == arch and config.hidden_size == 32 and config.num_hidden_layers == 4
    assert config.num_attention_heads == 4 and config.max_position_embeddings == 64 and config.vocab_size == 97
    config.save_pretrained(tmp_path)
    again = AutoConfig.from_pretrained(tmp_path)
    assert type(again) is AutoBertConfig and again.arch == arch and again.arch.fingerprint() == arch.fingerprint()
    assert AutoBertConfig().arch.n_layers == 12  # default: BERT-base
    config.vocab_size = 120  # resize_token_embeddings sets it
    assert config.arch.vocab_size == 120
    with pytest.raises(ValueError, match="architecture.*heads"):
        AutoBertConfig(architecture={**arch.to_dict(), "heads": 5})
    with pytest.raises(ValueError, match="format"):
        AutoBertConfig(architecture=arch, format_version=99)


@pytest.mark.parametrize("head", ["masked_lm", "classification"])
def test_project_folder_loads_with_auto_classes_bit_for_bit(tmp_path, head):
    torch.manual_seed(0)
    arch = tiny(HYBRID)
    project = (ForMaskedLM(arch) if head == "masked_lm" else ForSequenceClassification(arch, num_labels=3)).eval()
    project.save_pretrained(tmp_path)
    auto = AutoModelForMaskedLM if head == "masked_lm" else AutoModelForSequenceClassification
    model = auto.from_pretrained(tmp_path)
    assert type(model) is (AutoBertForMaskedLM if head == "masked_lm" else AutoBertForSequenceClassification)
    assert not model.training
    ids, mask, types = _batch()
    with torch.no_grad():
        want = project(ids, mask, types).logits
        assert torch.equal(model(input_ids=ids, attention_mask=mask, token_type_ids=types).logits, want)
        base = AutoModel.from_pretrained(tmp_path)
        assert type(base) is AutoBertModel
        assert torch.equal(base(input_ids=ids, attention_mask=mask, token_type_ids=types).last_hidden_state,
                           project.backbone(ids, mask, types))


def test_searched_model_loads_bit_for_bit(tmp_path):
    model = _searched_model()
    kinds = {type(layer.mixer).__name__ for layer in model.backbone.layers}
    model.save_pretrained(tmp_path)
    ids, mask, _ = _batch()
    ours = from_pretrained(tmp_path)
    theirs = AutoModelForMaskedLM.from_pretrained(tmp_path)
    with torch.no_grad():
        assert torch.equal(theirs(input_ids=ids, attention_mask=mask).logits, ours(ids, mask).logits)
    assert kinds  # the sampled layers (graphs and/or convs) are what was saved
    assert theirs.config.arch == model.config


def test_transformers_save_loads_with_project_loader_and_tamper_check(tmp_path):
    torch.manual_seed(0)
    model = AutoBertForSequenceClassification(AutoBertConfig(architecture=tiny(HYBRID), num_labels=2)).eval()
    model.save_pretrained(tmp_path)
    doc = json.loads((tmp_path / "config.json").read_text())
    assert doc["head"] == {"type": "sequence_classification", "num_labels": 2} and doc["format"] == "autobert"
    ids, mask, _ = _batch()
    ours = from_pretrained(tmp_path, expected=ForSequenceClassification)
    with torch.no_grad():
        assert torch.equal(ours(ids, mask).logits, model(input_ids=ids, attention_mask=mask).logits)
    weights = tmp_path / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-3] ^= 0xFF  # one flipped byte in the tensor data
    weights.write_bytes(bytes(data))
    for load in (lambda: from_pretrained(tmp_path), lambda: AutoModel.from_pretrained(tmp_path)):
        with pytest.raises(CheckpointError, match="sha256"):
            load()


def test_pickle_weights_are_never_read(tmp_path):
    model = AutoBertModel(AutoBertConfig(architecture=tiny()))
    model.config.save_pretrained(tmp_path)
    torch.save(model.state_dict(), tmp_path / "pytorch_model.bin")
    with pytest.raises(OSError, match="safetensors|model.safetensors"):
        AutoModel.from_pretrained(tmp_path)
    with pytest.raises(ValueError, match="safetensors only"):
        AutoModel.from_pretrained(tmp_path, use_safetensors=False)


def test_eager_implementation_runs_the_same_graphs():
    torch.manual_seed(0)
    config = AutoBertConfig(architecture=tiny(HYBRID))
    fused = AutoBertForMaskedLM(config).eval()
    assert fused.config._attn_implementation == "autobert"
    ids, mask, _ = _batch()
    real = mask.bool()
    with torch.no_grad():
        a = fused(input_ids=ids, attention_mask=mask).logits
        fused.set_attn_implementation("eager")
        b = fused(input_ids=ids, attention_mask=mask).logits
        fused.set_attn_implementation("autobert")
        assert torch.equal(fused(input_ids=ids, attention_mask=mask).logits, a)
    assert (a - b)[real].abs().max() < 1e-5
    with pytest.raises(ValueError, match="'autobert' .*or 'eager'.*'sdpa'"):
        fused.set_attn_implementation("sdpa")
    with pytest.raises(ValueError, match="'autobert' .*or 'eager'"):
        AutoBertModel._from_config(config, attn_implementation="sdpa")


def test_outputs_losses_and_hidden_states():
    torch.manual_seed(0)
    arch = tiny(HYBRID, dropout=0.0)
    project = ForSequenceClassification(arch, num_labels=1).eval()  # regression
    model = AutoBertForSequenceClassification(AutoBertConfig(architecture=arch, num_labels=1)).eval()
    model.load_state_dict(project.state_dict())
    ids, mask, _ = _batch()
    labels = torch.tensor([0.5, 1.0, -2.0])
    out = model(input_ids=ids, attention_mask=mask, labels=labels, output_hidden_states=True)
    want = project(ids, mask, labels=labels)
    assert torch.equal(out.loss, want.loss) and torch.equal(out.logits, want.logits)
    assert len(out.hidden_states) == arch.n_layers + 1 and out.hidden_states[0].shape == (3, 13, 32)
    loss, logits = model(input_ids=ids, attention_mask=mask, labels=labels, return_dict=False)[:2]
    assert torch.equal(logits, want.logits)
    mlm = AutoBertForMaskedLM(AutoBertConfig(architecture=arch))
    labels = torch.full_like(ids, -100)
    labels[0, 2] = 7
    out = mlm(input_ids=ids, attention_mask=mask, labels=labels)
    out.loss.backward()
    assert out.logits.shape == (3, 13, 97) and mlm.backbone.embeddings.word.weight.grad is not None
