"""Surrogates on a synthetic benchmark with a known ranking: BOSHNAS-style ensemble and the
scikit-learn baselines rank held-out architectures, report uncertainty, and refuse misuse."""
import builtins

import numpy as np
import pytest

from autobert.rank.encoding import arch_features, feature_matrix
from autobert.rank.surrogate import EnsembleConfig, EnsembleSurrogate, make_surrogate, ucb
from autobert.search.rankcorr import kendall_tau
from autobert.model import FlexiLayer, tiny

from synthetic import synthetic_benchmark


@pytest.fixture(scope="module")
def bench():
    return synthetic_benchmark()


@pytest.mark.parametrize("kind", ["ensemble", "gp", "rf"])
def test_surrogates_rank_held_out_architectures(bench, kind):
    train, test = np.arange(40), np.arange(40, len(bench))
    mean, std = make_surrogate(kind, seed=0).fit(bench.features[train], bench.labels[train]).predict(
        bench.features[test])
    assert mean.shape == std.shape == (len(test),) and (std >= 0).all()
    assert kendall_tau(mean, bench.labels[test]) > 0.75


def test_ensemble_is_seeded_and_uncertain_away_from_the_data(bench):
    x, y = bench.features[:40], bench.labels[:40]
    a = EnsembleSurrogate(EnsembleConfig(seed=3)).fit(x, y).predict(bench.features)
    b = EnsembleSurrogate(EnsembleConfig(seed=3)).fit(x, y).predict(bench.features)
    np.testing.assert_array_equal(a[0], b[0])
    model = EnsembleSurrogate().fit(x, y)
    far = x + 10.0 * x.std(0)  # far outside the training features
    assert model.predict(far)[1].mean() > 2 * model.predict(x)[1].mean()


def test_ucb_and_errors(bench):
    np.testing.assert_allclose(ucb(np.array([1.0, 2.0]), np.array([1.0, 0.0]), 2.0), [3.0, 2.0])
    with pytest.raises(RuntimeError, match="fit"):
        EnsembleSurrogate().predict(bench.features)
    with pytest.raises(ValueError, match="k >= 2"):
        EnsembleSurrogate().fit(bench.features[:1], bench.labels[:1])
    with pytest.raises(ValueError, match="members"):
        EnsembleConfig(members=0)
    with pytest.raises(ValueError, match="kind"):
        make_surrogate("svm")


def test_missing_scikit_learn_is_a_clear_error(monkeypatch, bench):
    real_import = builtins.__import__

    def no_sklearn(name, *args, **kwargs):
        if name.startswith("sklearn"):
            raise ImportError("No module named 'sklearn'")
        return real_import(name, *args, **kwargs)
    monkeypatch.setattr(builtins, "__import__", no_sklearn)
    with pytest.raises(ImportError, match=r"autobert\[rank\]"):
        make_surrogate("gp").fit(bench.features[:10], bench.labels[:10])


def test_encoding_describes_the_model():
    a = tiny([FlexiLayer("dsc(9)", hidden=48, heads=3, ffn=(64, 32)), "standard", 5])
    f = arch_features(a, max_layers=4)
    slot = (len(f) - 3) // 4  # 3 globals, then one slot per layer
    assert f[0] == 3 and len(f) == 3 + 4 * slot and feature_matrix([a, tiny()]).shape == (2, 3 + 3 * slot)
    with pytest.raises(ValueError, match="max_layers|holds 2"):
        arch_features(a, max_layers=2)
    same = feature_matrix([tiny([FlexiLayer("sdp")]), tiny([FlexiLayer("sdp", hidden=32)])])
    np.testing.assert_array_equal(same[0], same[1])
    with_proxy = feature_matrix([tiny(), tiny([3])], {"p": [1.0, float("-inf")]})
    assert np.isfinite(with_proxy).all() and with_proxy.shape[1] == feature_matrix([tiny(), tiny([3])]).shape[1] + 1
