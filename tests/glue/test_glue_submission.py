"""write_submission / zip_submission: official names, header, label vocabularies, row counts, atomicity."""
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

from autobert.glue import CONFIGS, SUBMISSION_FILES, get_config, load_task, write_submission, zip_submission

REAL = Path(__file__).parents[2].parent / "shared" / "data" / "glue_data"

OFFICIAL = {"CoLA.tsv": 1063, "SST-2.tsv": 1821, "MRPC.tsv": 1725, "STS-B.tsv": 1379, "QQP.tsv": 390965,
            "MNLI-m.tsv": 9796, "MNLI-mm.tsv": 9847, "QNLI.tsv": 5463, "RTE.tsv": 3000, "WNLI.tsv": 146,
            "AX.tsv": 1104}
VOCAB = {"cola": {"0", "1"}, "sst2": {"0", "1"}, "mrpc": {"0", "1"}, "qqp": {"0", "1"}, "wnli": {"0", "1"},
         "mnli_matched": {"contradiction", "entailment", "neutral"},
         "mnli_mismatched": {"contradiction", "entailment", "neutral"},
         "ax": {"contradiction", "entailment", "neutral"},
         "qnli": {"entailment", "not_entailment"}, "rte": {"entailment", "not_entailment"}}
ENTRIES = sorted(VOCAB) + ["stsb"]   # one config per submission file


def _read(path):
    lines = path.read_text(encoding="utf-8").split("\n")
    assert lines[-1] == ""                                   # ends with a newline
    header, rows = lines[0], [ln.split("\t") for ln in lines[1:-1]]
    return header, rows


def test_registry_names_and_counts():
    assert SUBMISSION_FILES == tuple(OFFICIAL)
    assert {get_config(c).submission: get_config(c).test_rows for c in ENTRIES} == OFFICIAL
    assert get_config("mnli").submission == "MNLI-m.tsv"
    assert len({c.submission for c in CONFIGS.values()}) == 11


def test_full_submission_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    for config in ENTRIES:
        n = get_config(config).test_rows
        if config == "stsb":
            preds = rng.normal(2.5, 2.0, n)                  # some outside [0, 5]
        else:
            preds = rng.integers(0, get_config(config).task.num_labels, n)
        path = write_submission(config, preds, tmp_path)
        assert path == tmp_path / get_config(config).submission
        header, rows = _read(path)
        assert header == "index\tprediction"
        assert len(rows) == n
        assert [int(r[0]) for r in rows[:3]] == [0, 1, 2] and int(rows[-1][0]) == n - 1
        values = [r[1] for r in rows]
        if config == "stsb":
            floats = np.array(values, dtype=float)
            assert floats.min() == 0.0 and floats.max() == 5.0
            np.testing.assert_allclose(floats, np.clip(preds, 0, 5), atol=5e-4)
        else:
            assert set(values) == VOCAB[config]
            names = get_config(config).task.label_names
            assert values == [names[i] for i in preds]
    z = zip_submission(tmp_path, tmp_path / "out" / "glue.zip", require_all=True)
    with zipfile.ZipFile(z) as zf:
        assert sorted(zf.namelist()) == sorted(OFFICIAL)
        assert zf.read("RTE.tsv") == (tmp_path / "RTE.tsv").read_bytes()
    assert not list(tmp_path.rglob("*.tmp"))


def test_prediction_forms(tmp_path):
    p = write_submission("MNLI-mm", ["neutral", "entailment"], tmp_path, expected_rows=2)
    assert p.name == "MNLI-mm.tsv" and _read(p)[1] == [["0", "neutral"], ["1", "entailment"]]
    p = write_submission("rte", torch.tensor([1, 0, 1]), tmp_path, expected_rows=None)
    assert [r[1] for r in _read(p)[1]] == ["not_entailment", "entailment", "not_entailment"]
    p = write_submission("stsb", torch.tensor([[1.23456], [-1.0]]), tmp_path, expected_rows=2)
    assert [r[1] for r in _read(p)[1]] == ["1.235", "0.000"]


@pytest.mark.parametrize("task,preds,kwargs,match", [
    ("rte", [0, 1], {}, "2 predictions but the rte test set has 3000"),
    ("ax", [0] * 5, {"expected_rows": 4}, "has 4 rows"),
    ("mnli", [0, 3], {"expected_rows": None}, "not a class index"),
    ("sst2", ["positive"], {"expected_rows": None}, "not a label"),
    ("stsb", [1.0, float("nan")], {"expected_rows": None}, "NaN"),
    ("cola", np.zeros((2, 2)), {"expected_rows": None}, "argmax"),
])
def test_invalid_predictions_write_nothing(tmp_path, task, preds, kwargs, match):
    with pytest.raises(ValueError, match=match):
        write_submission(task, preds, tmp_path, **kwargs)
    assert list(tmp_path.iterdir()) == []


def test_failed_write_keeps_previous_file(tmp_path, monkeypatch):
    good = write_submission("wnli", [0, 1], tmp_path, expected_rows=2)
    before = good.read_bytes()

    def boom(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr("autobert.glue.submission.os.replace", boom)
    with pytest.raises(OSError, match="disk full"):
        write_submission("wnli", [1, 1], tmp_path, expected_rows=2)
    assert good.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["WNLI.tsv"]


def test_zip_checks(tmp_path):
    with pytest.raises(FileNotFoundError, match="no submission files"):
        zip_submission(tmp_path)
    write_submission("cola", [0, 1], tmp_path, expected_rows=2)
    (tmp_path / "notes.txt").write_text("not part of the submission")
    with pytest.raises(FileNotFoundError, match="lacks submission files"):
        zip_submission(tmp_path, require_all=True)
    z = zip_submission(tmp_path)
    assert z == tmp_path / "submission.zip"
    with zipfile.ZipFile(z) as zf:
        assert zf.namelist() == ["CoLA.tsv"]
    (tmp_path / "RTE.tsv").write_text("id\tlabel\n0\tentailment\n")
    with pytest.raises(ValueError, match="RTE.tsv:1"):
        zip_submission(tmp_path)


def test_real_test_split_row_counts(tmp_path):
    """A submission built from the real test files has the official sizes."""
    done = 0
    for config in ("cola", "sst2", "mrpc", "stsb", "qnli", "rte"):
        folder = REAL / get_config(config).task.name
        if not (folder / "test.tsv").is_file():
            continue
        test = load_task(config, folder, "test")
        preds = np.zeros(len(test)) if test.is_regression else np.zeros(len(test), dtype=int)
        write_submission(config, preds, tmp_path)           # official row check passes
        done += 1
    if not done:
        pytest.skip(f"no real GLUE test files under {REAL}")
