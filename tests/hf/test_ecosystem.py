"""A folder written by `autobert pretrain` in transformers' tools: AutoTokenizer, pipeline
("fill-mask" | "text-classification" | "feature-extraction"), Trainer, and sentence-transformers
(an AutoBERT module with pooling, and a config-built BERT with model_kwargs={"attn_implementation": ...})."""
import json

import pytest
import torch

transformers = pytest.importorskip("transformers", minversion="5")
from transformers import (AutoModelForMaskedLM, AutoModelForSequenceClassification, AutoTokenizer,  # noqa: E402
                          Trainer, TrainingArguments, pipeline)

from autobert.cli import main  # noqa: E402
from autobert.model import from_pretrained, tiny  # noqa: E402

WORDS = "the a cat dog sat ran on under mat tree good bad movie film is was very not and it".split()
HYBRID = ["standard", 3, "abz_sqrt_softplus_key"]


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory):
    """A 3-step `autobert pretrain` run of a hybrid architecture (folder: config.json, model.safetensors, vocab.txt)."""
    root = tmp_path_factory.mktemp("hf_pretrain")
    vocab = root / "vocab.txt"
    vocab.write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", ".", *WORDS]) + "\n")
    corpus = root / "corpus.txt"
    lines = [" ".join(WORDS[(i * 7 + j) % len(WORDS)] for j in range(9)) + " ." for i in range(60)]
    corpus.write_text("\n".join(lines) + "\n")
    arch = root / "arch.json"
    arch.write_text(tiny(HYBRID, vocab_size=32, dropout=0.0).to_json())
    out = root / "run"
    assert main(["pretrain", "--arch", str(arch), "--corpus", str(corpus), "--vocab", str(vocab), "--out", str(out),
                 "--steps", "3", "--batch-size", "4", "--seq-len", "16", "--no-progress"]) == 0
    return out


def test_auto_tokenizer_and_model_match_the_project_loader(pretrained):
    tok = AutoTokenizer.from_pretrained(pretrained)
    batch = tok(["the cat sat on the mat .", "a dog ran"], padding=True, return_tensors="pt")
    model = AutoModelForMaskedLM.from_pretrained(pretrained)
    ours = from_pretrained(pretrained)
    with torch.no_grad():
        assert torch.equal(model(**batch).logits, ours(batch["input_ids"], batch["attention_mask"],
                                                       batch["token_type_ids"]).logits)


def test_pipelines(pretrained, tmp_path):
    fill = pipeline("fill-mask", model=str(pretrained), top_k=3)
    guesses = fill("the cat [MASK] on the mat .")
    scores = [g["score"] for g in guesses]
    assert len(guesses) == 3 and scores == sorted(scores, reverse=True) and all(0 < s < 1 for s in scores)
    features = pipeline("feature-extraction", model=str(pretrained))("the dog ran")
    assert torch.tensor(features).shape[-1] == 32
    classifier = AutoModelForSequenceClassification.from_pretrained(pretrained, num_labels=2)
    classifier.save_pretrained(tmp_path)
    AutoTokenizer.from_pretrained(pretrained).save_pretrained(tmp_path)
    result = pipeline("text-classification", model=str(tmp_path))(["a good film", "a bad movie"])
    assert [r["label"] for r in result] and all(0 <= r["score"] <= 1 for r in result)


def test_trainer_fine_tunes_an_autobert_model(pretrained, tmp_path):
    tok = AutoTokenizer.from_pretrained(pretrained)
    model = AutoModelForSequenceClassification.from_pretrained(pretrained, num_labels=2)
    texts = ["the movie was good", "the film was bad", "a very good film", "not a good movie"] * 4
    enc = tok(texts, padding=True)
    data = [{"input_ids": enc["input_ids"][i], "attention_mask": enc["attention_mask"][i], "labels": i % 2}
            for i in range(len(texts))]
    before = model.classifier.weight.detach().clone()
    args = TrainingArguments(output_dir=str(tmp_path), per_device_train_batch_size=4, max_steps=3, learning_rate=1e-3,
                             report_to=[], save_strategy="no", use_cpu=True, disable_tqdm=True)
    result = Trainer(model=model, args=args, train_dataset=data).train()
    assert result.global_step == 3 and torch.isfinite(torch.tensor(result.training_loss))
    assert not torch.equal(model.classifier.weight, before)
    model.save_pretrained(tmp_path / "final")
    assert json.loads((tmp_path / "final" / "config.json").read_text())["head"]["num_labels"] == 2


def test_sentence_transformers_with_an_autobert_module(pretrained):
    st = pytest.importorskip("sentence_transformers", minversion="6")
    from sentence_transformers.base.modules.transformer import Transformer
    from sentence_transformers.sentence_transformer.modules import Pooling
    model = st.SentenceTransformer(modules=[Transformer(str(pretrained)), Pooling(32, pooling_mode="mean")],
                                   device="cpu")
    emb = model.encode(["the cat sat on the mat .", "a dog"], convert_to_tensor=True)
    assert emb.shape == (2, 32) and torch.isfinite(emb).all()
    # the mean over real tokens of the backbone's hidden states
    tok = AutoTokenizer.from_pretrained(pretrained)
    batch = tok(["a dog"], return_tensors="pt")
    h = from_pretrained(pretrained).backbone(batch["input_ids"], batch["attention_mask"])
    torch.testing.assert_close(emb[1], h[0].mean(0), atol=1e-5, rtol=1e-5)


def test_sentence_transformers_bert_with_model_kwargs(tmp_path):
    st = pytest.importorskip("sentence_transformers", minversion="6")
    from families import build

    from autobert.hf import ATTN_IMPLEMENTATION
    bert = build("bert", "sdpa", vocab_size=len(WORDS) + 6)
    bert.save_pretrained(tmp_path)
    (tmp_path / "vocab.txt").write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", ".", *WORDS]) + "\n")
    texts = ["the cat sat on the mat .", "a dog ran", "good"]
    models = {impl: st.SentenceTransformer(str(tmp_path), device="cpu", model_kwargs={"attn_implementation": impl})
              for impl in ("sdpa", ATTN_IMPLEMENTATION)}
    assert models[ATTN_IMPLEMENTATION][0].model.config._attn_implementation == ATTN_IMPLEMENTATION
    emb = {impl: model.encode(texts, convert_to_tensor=True) for impl, model in models.items()}
    torch.testing.assert_close(emb[ATTN_IMPLEMENTATION], emb["sdpa"], atol=1e-5, rtol=1e-5)
