"""The Hugging Face tests. Each module starts with ``pytest.importorskip("transformers", minversion="5")``:
with an older transformers (or none) they skip."""
import pytest
import torch


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Tiny models gain nothing from intra-op threads (and exact comparisons need a fixed count)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
