"""Named attention graphs: BERT's, the six AutoBERT-Zero layer graphs, and well-known variants.

``library`` maps name -> Graph (read-only). The AutoBERT-Zero graphs are the paper's searched
layer structures written in this IR's op set: keys pass through softplus / softsign / sqrt
chains before the score, and several layers take Q or Q + K as the value.
"""
from __future__ import annotations

from types import MappingProxyType

from autobert.graph.expr import parse

EXPRESSIONS: dict[str, str] = {
    # BERT: softmax(Q K^T / sqrt(d)) V
    "standard": "matmul(softmax(scale(matmul(Q, transpose(K)))), V)",
    # AutoBERT-Zero layer graphs
    # softmax(Q softplus(K)^T / sqrt(d)) V
    "abz_softplus_key": "matmul(softmax(scale(matmul(Q, transpose(softplus(K))))), V)",
    # softmax(Q softsign(K)^T / sqrt(d)) Q  -- the query doubles as the value
    "abz_softsign_key_qv": "matmul(softmax(scale(matmul(Q, transpose(softsign(K))))), Q)",
    # softmax(Q sqrt(K)^T / sqrt(d)) (Q + K)  -- sum of query and key as the value
    "abz_sqrt_key_qkv": "matmul(softmax(scale(matmul(Q, transpose(sqrt(K))))), add(Q, K))",
    # softmax(Q sqrt(softplus(K))^T / sqrt(d)) V  -- a two-op key chain
    "abz_sqrt_softplus_key": "matmul(softmax(scale(matmul(Q, transpose(sqrt(softplus(K)))))), V)",
    # softmax(sqrt(Q softsign(K)^T / sqrt(d))) V  -- a non-linear score before the softmax
    "abz_sqrt_score": "matmul(softmax(sqrt(scale(matmul(Q, transpose(softsign(K)))))), V)",
    # softmax(Q log(K)^T / sqrt(d)) (Q + K)
    "abz_log_key_qkv": "matmul(softmax(scale(matmul(Q, transpose(log(K))))), add(Q, K))",
    # linear attention: relu(Q) (relu(K)^T V), keys and values contracted over the sequence first
    "linear": "matmul(relu(Q), matmul(transpose(relu(K)), V))",
    # sigmoid attention: sigmoid(Q K^T / sqrt(d)) V, no normalisation over keys
    "sigmoid": "matmul(sigmoid(scale(matmul(Q, transpose(K)))), V)",
    # cosine attention: softmax(cos(Q_i, K_j)) V
    "cosine": "matmul(softmax(cosine(Q, transpose(K))), V)",
    # ReLU^2 scores: relu(Q K^T / sqrt(d))^2 V, no normalisation over keys
    "relu2": "matmul(square(relu(scale(matmul(Q, transpose(K))))), V)",
}

AUTOBERT_ZERO: tuple[str, ...] = tuple(n for n in EXPRESSIONS if n.startswith("abz_"))

library = MappingProxyType({name: parse(expr) for name, expr in EXPRESSIONS.items()})
