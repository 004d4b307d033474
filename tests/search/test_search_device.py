"""The search's device choice: config/CLI field, supernet and children on it, a clear error for CUDA
without CUDA before any work, and the GPUs Ray evaluators reserve."""
import json

import pytest
import torch

from conftest import TINY_MLM
from autobert.cli import main
from autobert.graph import library
from autobert.model import AttentionLayer, ConvLayer
from autobert.search import SearchConfig, SearchStore, run_search
from autobert.search.device import resolve_device, worker_device
from autobert.search.runner import _biws_evaluator, gpus_per_worker


def _mlm(tiny_corpus, **changes):
    corpus, vocab = tiny_corpus
    return SearchConfig.preset("tiny", corpus=corpus, vocab=vocab, **TINY_MLM, **changes)


def test_device_field_is_validated_and_defaults_to_auto(tiny_corpus):
    assert _mlm(tiny_corpus).device == "auto"
    assert _mlm(tiny_corpus, device="cuda:1").device == "cuda:1"
    for bad in ("gpu", "cuda:x", "", 3, "CPU"):
        with pytest.raises(ValueError, match="SearchConfig.device must be 'auto', 'cpu', 'cuda' or 'cuda:N'"):
            _mlm(tiny_corpus, device=bad)
    with pytest.raises(ValueError, match="gpus_per_worker must be a number >= 0"):
        _mlm(tiny_corpus, gpus_per_worker=-0.5)


def test_auto_follows_cuda_availability(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device("auto") == torch.device("cpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert resolve_device("auto") == torch.device("cuda")


@pytest.mark.parametrize("device", ["cpu", "auto"])
def test_supernet_and_children_live_on_the_chosen_device(tiny_corpus, device):
    threads = torch.get_num_threads()
    try:
        ev = _biws_evaluator(_mlm(tiny_corpus, device=device))
    finally:
        torch.set_num_threads(threads)
    expected = resolve_device(device)
    assert ev.device == expected
    assert {t.device for t in [*ev.supernet.parameters(), *ev.supernet.buffers()]} == {expected}
    ev.warm_up(steps=2)
    seen = []
    train_child = ev.train_child

    def spy(model, steps, seed, optimizer=None):
        seen.extend({p.device for p in model.parameters()})
        return train_child(model, steps, seed, optimizer)

    ev.train_child = spy
    loss, _ = ev(ev.base.replace(layers=(AttentionLayer(library["standard"]), ConvLayer(3))))
    assert seen and set(seen) == {expected} and torch.isfinite(torch.tensor(loss))


def test_cuda_without_cuda_fails_before_any_work(tiny_corpus, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    run = tmp_path / "run"
    with pytest.raises(ValueError, match=r"SearchConfig.device is 'cuda'.*no usable CUDA device"):
        run_search(run, _mlm(tiny_corpus, device="cuda"))
    assert not run.exists()  # nothing written, no warm-up started
    corpus, vocab = tiny_corpus
    code = main(["search", "--out", str(run), "--corpus", corpus, "--vocab", vocab, "--device", "cuda:0",
                 "--no-progress", "--no-report"])
    assert code == 2 and not run.exists()
    assert "SearchConfig.device is 'cuda:0'" in capsys.readouterr().err


def test_resume_on_a_machine_without_the_run_device_fails_clearly(tmp_path, monkeypatch):
    config = SearchConfig(fitness="toy", budget=3, model={"n_layers": 2}, device="cpu",
                          evolution={"population_size": 2, "sample_size": 1})
    run_search(tmp_path / "run", config)
    doc = json.loads((tmp_path / "run" / "config.json").read_text())
    (tmp_path / "run" / "config.json").write_text(json.dumps({**doc, "device": "cuda"}))
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ValueError, match="no usable CUDA device"):
        run_search(tmp_path / "run", resume=True, budget=5)
    with SearchStore(tmp_path / "run" / "search.sqlite") as store:
        assert store.count("done") == 3  # untouched


def test_cli_device_flags_reach_the_config(tmp_path):
    run = tmp_path / "run"
    assert main(["search", "--out", str(run), "--fitness", "toy", "--budget", "2", "--device", "cpu",
                 "--gpus-per-worker", "0.25", "--no-progress", "--no-report"]) == 0
    doc = json.loads((run / "config.json").read_text())
    assert (doc["device"], doc["gpus_per_worker"]) == ("cpu", 0.25)


def test_ray_evaluators_reserve_gpus_by_device(tiny_corpus, monkeypatch):
    assert gpus_per_worker(_mlm(tiny_corpus, device="cpu")) == 0.0
    assert gpus_per_worker(_mlm(tiny_corpus, device="cpu", gpus_per_worker=0.5)) == 0.5
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert gpus_per_worker(_mlm(tiny_corpus, device="auto")) == 1.0
    assert worker_device(0) == torch.device("cpu")  # a worker without a GPU reservation stays on the CPU


@pytest.mark.slow
def test_ray_workers_reserve_fractional_gpus_and_are_pinned(tmp_path):
    """A local Ray instance that declares one (logical) GPU: two evaluators at 0.5 GPU each share it."""
    ray = pytest.importorskip("ray")
    from autobert.search.executor import RayExecutor
    from autobert.search.toy import OpCountFitness
    from autobert.model import tiny
    ray.init(address="local", num_cpus=2, num_gpus=1, include_dashboard=False, log_to_driver=False)
    try:
        ex = RayExecutor(OpCountFitness, workers=2, gpus_per_worker=0.5)
        arch = tiny().to_json()
        ex.submit(0, arch)
        ex.submit(1, arch)
        outcomes = []
        while ex.in_flight:
            outcomes += ex.wait()
        assert sorted(k for k, _ in outcomes) == [0, 1]
        assert all(o.status == "done" and o.metrics["gpu_ids"] == ["0"] for _, o in outcomes)
        ex.close()
    finally:
        ray.shutdown()


@pytest.mark.gpu
def test_tiny_search_runs_on_the_gpu(tiny_corpus, tmp_path):
    summary = run_search(tmp_path / "run", _mlm(tiny_corpus, device="cuda", budget=4))
    assert summary.done == 4
    ev = _biws_evaluator(SearchConfig.load(tmp_path / "run" / "config.json"))
    assert ev.device.type == "cuda" and next(ev.supernet.parameters()).is_cuda
