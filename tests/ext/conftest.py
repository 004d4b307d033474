"""Fixtures of the device-layer tests."""
import pytest


@pytest.fixture(scope="module")
def triton_cache_dir(tmp_path_factory):
    """A fresh generated-module cache (AUTOBERT_CACHE_DIR) for one test module."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("AUTOBERT_CACHE_DIR", str(tmp_path_factory.mktemp("triton_cache")))
        yield
