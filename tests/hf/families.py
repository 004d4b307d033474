"""Tiny transformers encoders built from configs (random weights, nothing downloaded), and padded batches."""
from __future__ import annotations

import torch

SIZES = dict(vocab_size=99, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=37,
             max_position_embeddings=80)

# family -> (config class, model class, config overrides): the encoders whose self-attention goes
# through transformers' AttentionInterface.
FAMILIES = {
    "bert": ("BertConfig", "BertModel", {}),
    "bert-d7": ("BertConfig", "BertModel", {"hidden_size": 28}),  # odd head dim
    "roberta": ("RobertaConfig", "RobertaModel", {"pad_token_id": 1}),
    "xlm-roberta": ("XLMRobertaConfig", "XLMRobertaModel", {"pad_token_id": 1}),
    "camembert": ("CamembertConfig", "CamembertModel", {"pad_token_id": 1}),
    "electra": ("ElectraConfig", "ElectraModel", {"embedding_size": 16}),
    "distilbert": ("DistilBertConfig", "DistilBertModel",
                   {"dim": 32, "n_layers": 2, "n_heads": 4, "hidden_dim": 37}),
    "albert": ("AlbertConfig", "AlbertModel", {"embedding_size": 16}),
    "modernbert": ("ModernBertConfig", "ModernBertModel",
                   {"layer_types": ["full_attention"] * 2, "pad_token_id": 0, "bos_token_id": 1,
                    "eos_token_id": 2, "cls_token_id": 1, "sep_token_id": 2}),
}
_RENAMED = {"DistilBertConfig": ("hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size")}


def build(family: str, attn_implementation: str = "sdpa", dtype=torch.float32, seed: int = 0, **overrides):
    """A tiny ``family`` encoder in eval mode, seeded (the same weights for every implementation)."""
    import transformers

    config_name, model_name, extra = FAMILIES[family]
    sizes = {k: v for k, v in SIZES.items() if k not in _RENAMED.get(config_name, ())}
    config = getattr(transformers, config_name)(**{**sizes, **extra, **overrides},
                                                attn_implementation=attn_implementation)
    torch.manual_seed(seed)
    return getattr(transformers, model_name)(config).to(dtype).eval()


def padded_batch(batch: int = 3, n: int = 13, seed: int = 1):
    """input_ids (B, N) and attention_mask (B, N) with rows 1 and 2 padded (0 = padding)."""
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(5, 99, (batch, n), generator=g)
    mask = torch.ones(batch, n, dtype=torch.long)
    mask[1, n - 4:] = 0
    mask[2, 4:] = 0
    ids[mask == 0] = 0
    return ids, mask


def hidden(model, ids, mask, **kwargs) -> torch.Tensor:
    with torch.no_grad():
        return model(input_ids=ids, attention_mask=mask, **kwargs).last_hidden_state

