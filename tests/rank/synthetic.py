"""A synthetic tabular benchmark whose best architecture is known (for surrogate and search tests)."""
import random

import numpy as np

from autobert.model.operation import Operation
from autobert.rank.benchmark import FlexiEncoding, LayerLabels
from autobert.rank.construction import as_trained
from autobert.rank.encoding import feature_matrix
from autobert.rank.tabular import TabularBenchmark

OPS = [Operation.parse(o) for o in ("sdp", "wma", "dft", "dct", "dsc(5)", "dsc(9)")]


def random_encoding(rng: random.Random) -> FlexiEncoding:
    layers = tuple(LayerLabels(rng.choice(OPS), rng.choice((2, 4)), rng.choice((512, 1024)), rng.choice((1, 3)))
                   for _ in range(rng.choice((2, 4))))
    return FlexiEncoding(rng.choice((128, 256)), layers)


def score(enc: FlexiEncoding) -> float:
    """Known label: depth and width first, then FFN sizes (a smooth function of the encoding)."""
    return (4.0 * len(enc.layers) + 3.0 * (enc.hidden == 256)
            + sum(0.5 * (la.ffn_layers == 3) + 0.3 * (la.ffn_dim == 1024) for la in enc.layers))


def synthetic_benchmark(n: int = 120, seed: int = 0) -> TabularBenchmark:
    rng = random.Random(seed)
    encodings = []
    while len(encodings) < n:
        enc = random_encoding(rng)
        if enc not in encodings:
            encodings.append(enc)
    labels = np.array([score(e) for e in encodings])
    features = feature_matrix([as_trained(e, vocab_size=100) for e in encodings])
    return TabularBenchmark(tuple(encodings), labels, features)
