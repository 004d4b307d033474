"""``SklearnSurrogate``: scikit-learn baselines with uncertainty (Gaussian process or random forest).

scikit-learn is an optional dependency (``pip install autobert[rank]``); only constructing one of
these needs it, and a missing install is a clear ImportError naming the extra.
"""
from __future__ import annotations

import warnings

import numpy as np

KINDS = ("gp", "rf")


def _sklearn():
    try:
        import sklearn.ensemble
        import sklearn.exceptions
        import sklearn.gaussian_process
        return sklearn
    except ImportError:
        raise ImportError("the scikit-learn surrogates need scikit-learn: pip install 'autobert[rank]'") from None


class SklearnSurrogate:
    """fit(X, y) then predict(X) -> (mean, std). ``kind``: "gp" (RBF + white noise on standardised
    features, normalised targets; one length scale, since a few dozen labels cannot fit one per
    feature) or "rf" (random forest; std = spread of the trees' predictions)."""

    def __init__(self, kind: str = "gp", seed: int = 0, trees: int = 200):
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
        self.kind, self.seed, self.trees = kind, seed, trees
        self.model = None

    def _make(self, n_features: int):
        sk = _sklearn()
        if self.kind == "rf":
            return sk.ensemble.RandomForestRegressor(n_estimators=self.trees, min_samples_leaf=2,
                                                     random_state=self.seed)
        k = sk.gaussian_process.kernels
        kernel = k.ConstantKernel(1.0) * k.RBF(length_scale=float(np.sqrt(n_features))) + k.WhiteKernel(0.1)
        return sk.gaussian_process.GaussianProcessRegressor(kernel=kernel, normalize_y=True, random_state=self.seed,
                                                            n_restarts_optimizer=2)

    def fit(self, x: np.ndarray, y: np.ndarray) -> "SklearnSurrogate":
        x = np.asarray(x, float)
        self.mean_, self.std_ = x.mean(0), np.maximum(x.std(0), 1e-8)
        with warnings.catch_warnings():
            # Hyperparameters at a bound are expected with a few dozen labels; the fit is still usable.
            warnings.simplefilter("ignore", _sklearn().exceptions.ConvergenceWarning)
            self.model = self._make(x.shape[1]).fit((x - self.mean_) / self.std_, np.asarray(y, float))
        return self

    def predict(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if self.model is None:
            raise RuntimeError("fit the surrogate before predicting")
        z = (np.asarray(x, float) - self.mean_) / self.std_
        if self.kind == "gp":
            mean, std = self.model.predict(z, return_std=True)
            return mean, std
        per_tree = np.stack([t.predict(z) for t in self.model.estimators_])
        return per_tree.mean(0), per_tree.std(0)
