"""load_task on synthetic GLUE-format folders (all nine tasks + AX, with the real files' quirks),
malformed files, name/split resolution, and the real GLUE files in shared/data when present."""
from collections import Counter
from pathlib import Path

import pytest

from autobert.glue import (CONFIGS, Example, GlueFileNotFoundError, GlueFormatError, find_split_file,
                           get_config, load_task)

REAL = Path(__file__).parents[2].parent / "shared" / "data" / "glue_data"

T = "\t"
MNLI_HEAD = ["index", "promptID", "pairID", "genre", "sentence1_binary_parse", "sentence2_binary_parse",
             "sentence1_parse", "sentence2_parse", "sentence1", "sentence2"]
STSB_HEAD = ["index", "genre", "filename", "year", "old_index", "source1", "source2", "sentence1", "sentence2"]


def _mnli_row(i, s1, s2, labels=()):
    return [str(i), "31193", f"{i}n", "government", "( ( x ) )", "( y )", "(ROOT x)", "(ROOT y)", s1, s2, *labels]


def _tsv(rows, final_newline=True, bom=False, crlf=False):
    nl = "\r\n" if crlf else "\n"
    text = nl.join(T.join(r) for r in rows) + (nl if final_newline else "")
    return ("\ufeff" if bom else "") + text


# folder -> file -> text, mirroring download_glue_data.py output (two data rows per file).
SYNTHETIC = {
    "CoLA": {
        "train.tsv": _tsv([["gj04", "1", "", "Our friends won't buy this analysis."],
                           ["gj04", "0", "*", 'They drank the pub "dry.']]),
        # CoLA dev ends without a final newline in the real data.
        "dev.tsv": _tsv([["gj04", "1", "", "The sailors rode the breeze."],
                         ["cj99", "0", "*", "Him saw the man."]], final_newline=False),
        "test.tsv": _tsv([["index", "sentence"], ["0", "Bill whistled past the house."],
                          ["1", "The car honked its way down the road."]]),
    },
    "SST-2": {
        "train.tsv": _tsv([["sentence", "label"], ["hide new secretions ", "0"], ['a "stray quote ', "1"]]),
        "dev.tsv": _tsv([["sentence", "label"], ["it 's a charming journey . ", "1"], ["bleak ", "0"]]),
        "test.tsv": _tsv([["index", "sentence"], ["0", "uneasy mishmash ."], ["1", "this film 's title ."]]),
    },
    "MRPC": {
        "train.tsv": _tsv([["Quality", "#1 ID", "#2 ID", "#1 String", "#2 String"],
                           ["1", "702876", "702977", 'Amrozi called him "the witness".', "Referring to him."],
                           ["0", "2108705", "2108831", "Yucaipa owned Dominick's.", "Yucaipa bought it."]], bom=True),
        "dev.tsv": _tsv([["Quality", "#1 ID", "#2 ID", "#1 String", "#2 String"],
                         ["1", "1355540", "1355592", "He said the pie.", '"The foodservice pie.'],
                         ["0", "2029631", "2029565", "Magnarelli said.", "His wife said."]], bom=True),
        "test.tsv": _tsv([["index", "#1 ID", "#2 ID", "#1 String", "#2 String"],
                          ["0", "1089874", "1089925", "PCCW's chief.", "Current Chief."],
                          ["1", "3019446", "3019327", "The world's two.", "Domestic sales."]]),
    },
    "STS-B": {
        "train.tsv": _tsv([STSB_HEAD + ["score"],
                           ["0", "main-captions", "MSRvid", "2012test", "0001", "none", "none",
                            "A plane is taking off.", "An air plane is taking off.", "5.000"],
                           ["1", "main-captions", "MSRvid", "2012test", "0004", "none", "none",
                            "A man is playing a flute.", "A man is playing a flute.", "3.800"]]),
        "dev.tsv": _tsv([STSB_HEAD + ["score"],
                         ["0", "main-captions", "MSRvid", "2012test", "0000", "none", "none",
                          "A man with a hard hat.", "A man wearing a hard hat.", "5.000"],
                         ["1", "main-captions", "MSRvid", "2012test", "0002", "none", "none",
                          "A young child.", "A child.", "4.750"]]),
        "test.tsv": _tsv([STSB_HEAD,
                          ["0", "main-captions", "MSRvid", "2012test", "0024", "none", "none",
                           "A girl is styling her hair.", "A girl is brushing her hair."],
                          ["1", "main-captions", "MSRvid", "2012test", "0033", "none", "none",
                           "A group of men.", "A group of boys."]]),
    },
    "QQP": {
        "train.tsv": _tsv([["id", "qid1", "qid2", "question1", "question2", "is_duplicate"],
                           ["133273", "213221", "213222", "How is the life?", "How is life?", "0"],
                           ["402555", "536040", "536041", "How do I control?", "How do I stop?", "1"]]),
        "dev.tsv": _tsv([["id", "qid1", "qid2", "question1", "question2", "is_duplicate"],
                         ["201359", "303345", "303346", "Why are African?", "Why are Africans?", "1"],
                         ["263843", "69383", "380476", "I do not want?", "What is?", "0"]]),
        "test.tsv": _tsv([["id", "question1", "question2"], ["0", "How does?", "Why did?"],
                          ["1", "Should I have?", "Which?"]]),
    },
    "MNLI": {
        "train.tsv": _tsv([MNLI_HEAD + ["label1", "gold_label"],
                           _mnli_row(0, "Conceptually cream.", "Product and geography.", ["neutral", "neutral"]),
                           _mnli_row(1, "you know during.", "You lose the things.", ["entailment", "entailment"])]),
        "dev_matched.tsv": _tsv([MNLI_HEAD + [f"label{i}" for i in range(1, 6)] + ["gold_label"],
                                 _mnli_row(0, "The new rights.", "Everyone loves.", ["neutral"] * 5 + ["neutral"]),
                                 _mnli_row(1, "This site.", "The site.", ["contradiction"] * 6)]),
        "dev_mismatched.tsv": _tsv([MNLI_HEAD + [f"label{i}" for i in range(1, 6)] + ["gold_label"],
                                    _mnli_row(0, "Your contribution.", "Your contributions.", ["entailment"] * 6),
                                    _mnli_row(1, "The answer.", "Not the answer.", ["contradiction"] * 6)]),
        "test_matched.tsv": _tsv([MNLI_HEAD, _mnli_row(0, "Hierbas.", "Hierbas is."),
                                  _mnli_row(1, "The extent.", "Extent is.")]),
        "test_mismatched.tsv": _tsv([MNLI_HEAD, _mnli_row(0, "What have you.", "You have."),
                                     _mnli_row(1, "Homes.", "Houses.")]),
    },
    "QNLI": {
        "train.tsv": _tsv([["index", "question", "sentence", "label"],
                           ["0", "When did?", "The third.", "entailment"], ["1", "Which?", "No.", "not_entailment"]]),
        "dev.tsv": _tsv([["index", "question", "sentence", "label"],
                         ["0", "What came into force?", "As of that day.", "entailment"],
                         ["1", "What is the first city?", "The most.", "not_entailment"]]),
        "test.tsv": _tsv([["index", "question", "sentence"], ["0", "What organization?", "For some."],
                          ["1", "In what?", "The Islamic."]]),
    },
    "RTE": {
        "train.tsv": _tsv([["index", "sentence1", "sentence2", "label"],
                           ["0", "No Weapons.", "Weapons.", "not_entailment"], ["1", "A place.", "A.", "entailment"]]),
        "dev.tsv": _tsv([["index", "sentence1", "sentence2", "label"],
                         ["0", "Dana Reeve.", "Christopher.", "not_entailment"],
                         ["1", "Yet.", "Bacteria.", "entailment"]]),
        "test.tsv": _tsv([["index", "sentence1", "sentence2"], ["0", "Mangla.", "Shukla."],
                          ["1", "Authorities.", "Ha."]]),
    },
    "WNLI": {
        "train.tsv": _tsv([["index", "sentence1", "sentence2", "label"],
                           ["0", "I stuck a pin.", "The carrot.", "1"], ["1", "John couldn't.", "The post.", "0"]]),
        "dev.tsv": _tsv([["index", "sentence1", "sentence2", "label"],
                         ["0", "The drain.", "The hair.", "0"], ["1", "Jane knocked.", "Susan.", "1"]]),
        "test.tsv": _tsv([["index", "sentence1", "sentence2"], ["0", "Maude and Dora.", "Horses."],
                          ["1", "Sam.", "Sam's."]]),
    },
    "diagnostic": {
        "diagnostic.tsv": _tsv([["index", "sentence1", "sentence2"], ["0", "The cat sat.", "The cat did not sit."],
                                ["1", "The cat sat.", "The cat sat."]]),
    },
}

# (config, split) -> expected Example for row 0 and label of row 1.
EXPECTED = {
    ("cola", "train"): (Example("Our friends won't buy this analysis.", None, 1, "0"), 0),
    ("cola", "dev"): (Example("The sailors rode the breeze.", None, 1, "0"), 0),
    ("cola", "test"): (Example("Bill whistled past the house.", None, None, "0"), None),
    ("sst2", "train"): (Example("hide new secretions ", None, 0, "0"), 1),
    ("sst2", "dev"): (Example("it 's a charming journey . ", None, 1, "0"), 0),
    ("sst2", "test"): (Example("uneasy mishmash .", None, None, "0"), None),
    ("mrpc", "train"): (Example('Amrozi called him "the witness".', "Referring to him.", 1, "0"), 0),
    ("mrpc", "dev"): (Example("He said the pie.", '"The foodservice pie.', 1, "0"), 0),
    ("mrpc", "test"): (Example("PCCW's chief.", "Current Chief.", None, "0"), None),
    ("stsb", "train"): (Example("A plane is taking off.", "An air plane is taking off.", 5.0, "0"), 3.8),
    ("stsb", "dev"): (Example("A man with a hard hat.", "A man wearing a hard hat.", 5.0, "0"), 4.75),
    ("stsb", "test"): (Example("A girl is styling her hair.", "A girl is brushing her hair.", None, "0"), None),
    ("qqp", "train"): (Example("How is the life?", "How is life?", 0, "133273"), 1),
    ("qqp", "dev"): (Example("Why are African?", "Why are Africans?", 1, "201359"), 0),
    ("qqp", "test"): (Example("How does?", "Why did?", None, "0"), None),
    ("mnli", "train"): (Example("Conceptually cream.", "Product and geography.", 2, "0"), 1),
    ("mnli", "dev"): (Example("The new rights.", "Everyone loves.", 2, "0"), 0),
    ("mnli_mismatched", "dev"): (Example("Your contribution.", "Your contributions.", 1, "0"), 0),
    ("mnli", "test_matched"): (Example("Hierbas.", "Hierbas is.", None, "0"), None),
    ("mnli_mismatched", "test"): (Example("What have you.", "You have.", None, "0"), None),
    ("qnli", "train"): (Example("When did?", "The third.", 0, "0"), 1),
    ("qnli", "dev"): (Example("What came into force?", "As of that day.", 0, "0"), 1),
    ("qnli", "test"): (Example("What organization?", "For some.", None, "0"), None),
    ("rte", "train"): (Example("No Weapons.", "Weapons.", 1, "0"), 0),
    ("rte", "dev"): (Example("Dana Reeve.", "Christopher.", 1, "0"), 0),
    ("rte", "test"): (Example("Mangla.", "Shukla.", None, "0"), None),
    ("wnli", "train"): (Example("I stuck a pin.", "The carrot.", 1, "0"), 0),
    ("wnli", "dev"): (Example("The drain.", "The hair.", 0, "0"), 1),
    ("wnli", "test"): (Example("Maude and Dora.", "Horses.", None, "0"), None),
    ("ax", "test"): (Example("The cat sat.", "The cat did not sit.", None, "0"), None),
}


def write_glue(root: Path, folders=SYNTHETIC) -> Path:
    for folder, files in folders.items():
        (root / folder).mkdir(parents=True, exist_ok=True)
        for name, text in files.items():
            (root / folder / name).write_bytes(text.encode("utf-8"))
    return root


@pytest.fixture(scope="module")
def glue_root(tmp_path_factory):
    return write_glue(tmp_path_factory.mktemp("glue_data"))


@pytest.mark.parametrize("config,split", sorted(EXPECTED))
def test_synthetic_every_task(glue_root, config, split):
    first, second_label = EXPECTED[(config, split)]
    folder = get_config(config).task.name
    ds = load_task(config, glue_root / folder, split)
    assert len(ds) == 2
    assert ds[0] == first
    assert ds[1].label == second_label
    assert ds.has_labels == (second_label is not None)
    assert list(ds) == ds[:]
    assert ds.texts_a == [e.text_a for e in ds]
    assert (ds.texts_b is None) == (first.text_b is None)
    if get_config(config).task.is_regression:
        assert ds.num_labels == 1 and ds.is_regression
    else:
        assert ds.num_labels == len(ds.label_names)


def test_names_and_splits(glue_root):
    # Folder names, HF names and submission names all work; the glue_data root is accepted too.
    for name in ("SST-2", "sst2", "Sst_2"):
        assert load_task(name, glue_root / "SST-2", "dev")[0].label == 1
    assert load_task("STS-B", glue_root, "validation").split == "dev"
    assert load_task("MNLI-mm", glue_root / "MNLI", "dev").split == "dev_mismatched"
    assert load_task("mnli", glue_root / "MNLI", "dev_mismatched").split == "dev_mismatched"
    assert load_task("mnli_matched", glue_root / "MNLI", "validation_matched").split == "dev_matched"
    assert load_task("mnli", glue_root / "MNLI", "test").split == "test_matched"
    assert load_task("AX", glue_root / "diagnostic", "test").task == "diagnostic"
    assert load_task("diagnostic", glue_root, "test").config == "ax"
    with pytest.raises(KeyError, match="contradicts"):
        load_task("mnli_matched", glue_root / "MNLI", "dev_mismatched")
    with pytest.raises(KeyError, match="no split"):
        load_task("ax", glue_root / "diagnostic", "train")
    with pytest.raises(KeyError, match="unknown GLUE task"):
        load_task("squad", glue_root, "dev")
    assert len(CONFIGS) == 12


def test_ax_file_saved_as_ax_tsv(tmp_path):
    (tmp_path / "AX").mkdir()
    (tmp_path / "AX" / "AX.tsv").write_text(SYNTHETIC["diagnostic"]["diagnostic.tsv"], encoding="utf-8")
    assert len(load_task("ax", tmp_path / "AX", "test")) == 2
    assert find_split_file("ax", tmp_path, "test").name == "AX.tsv"


def test_header_by_name_crlf_and_bom(tmp_path):
    d = tmp_path / "RTE"
    d.mkdir()
    # Columns reordered, CRLF line ends, BOM, spaces around a header name, a \u2028 inside a sentence.
    (d / "dev.tsv").write_text(_tsv([["label", "sentence2", " index", "sentence1"],
                                     ["entailment", "B\u2028still B", "7", 'A "quoted'],
                                     ["not_entailment", "D", "8", "C"]], crlf=True, bom=True), encoding="utf-8")
    ds = load_task("rte", d, "dev")
    assert ds[0] == Example('A "quoted', "B\u2028still B", 0, "7")
    assert ds[1] == Example("C", "D", 1, "8")


def _write(tmp_path, folder, name, text):
    d = tmp_path / folder
    d.mkdir(exist_ok=True)
    p = d / name
    p.write_bytes(text.encode("utf-8") if isinstance(text, str) else text)
    return d, p


@pytest.mark.parametrize("folder,config,split,name,text,line,match", [
    ("RTE", "rte", "dev", "dev.tsv", _tsv([["index", "sentence1", "sentence2", "label"], ["0", "a", "b", "entailment"],
                                           ["1", "a\tx", "b", "entailment"]]), 3, "5 tab-separated field"),
    ("RTE", "rte", "dev", "dev.tsv", _tsv([["index", "sentence1", "sentence2", "label"], ["0", "a", "b", "maybe"]]),
     2, "unknown label 'maybe'"),
    ("STS-B", "stsb", "train", "train.tsv", _tsv([STSB_HEAD + ["score"], ["0"] * 7 + ["a", "b", "4.0"],
                                                 ["1"] * 7 + ["a", "b", "high"]]), 3, "bad float 'high'"),
    ("STS-B", "stsb", "dev", "dev.tsv", _tsv([STSB_HEAD + ["score"], ["0"] * 7 + ["a", "b", "nan"]]), 2, "bad float"),
    ("SST-2", "sst2", "dev", "dev.tsv", _tsv([["it 's good", "1"], ["bad", "0"]]), 1, "header lacks column"),
    ("MNLI", "mnli", "dev", "dev_matched.tsv", _tsv([MNLI_HEAD + ["label1"]]), 1, r"\['gold_label'\]"),
    ("CoLA", "cola", "train", "train.tsv", _tsv([["gj04", "1", "", "ok"], ["gj04", "1", "ok"]]), 2, "3 tab-separated"),
    ("CoLA", "cola", "dev", "dev.tsv", _tsv([["gj04", "1", "", "ok"], [""], ["gj04", "1", "", "ok"]]), 2, "blank line"),
    ("QNLI", "qnli", "dev", "dev.tsv", "index\tquestion\tsentence\tlabel\n0\tq\t\xff\tentailment\n".encode("latin-1"),
     2, "not valid UTF-8"),
    ("QNLI", "qnli", "test", "test.tsv", "", 1, "empty"),
])
def test_malformed_names_path_and_line(tmp_path, folder, config, split, name, text, line, match):
    d, p = _write(tmp_path, folder, name, text)
    with pytest.raises(GlueFormatError, match=match) as err:
        load_task(config, d, split)
    assert str(err.value).startswith(f"{p}:{line}: ")
    assert err.value.line == line and err.value.path == str(p)
    assert isinstance(err.value, ValueError)
    assert "expected" in str(err.value)


def test_non_strict_skips_bad_rows(tmp_path):
    d, _ = _write(tmp_path, "WNLI", "train.tsv", _tsv([["index", "sentence1", "sentence2", "label"],
                                                      ["0", "a", "b", "1"], ["1", "broken"], ["2", "c", "d", "0"]]))
    ds = load_task("wnli", d, "train", strict=False)
    assert [e.guid for e in ds] == ["0", "2"]


def test_missing_folder_and_file(tmp_path):
    with pytest.raises(GlueFileNotFoundError, match="folder not found") as err:
        load_task("cola", tmp_path / "nope", "train")
    assert "train.tsv" in str(err.value) and "test.tsv" in str(err.value)
    (tmp_path / "MNLI").mkdir()
    with pytest.raises(GlueFileNotFoundError) as err:
        load_task("mnli", tmp_path / "MNLI", "dev")
    msg = str(err.value)
    assert "dev_matched.tsv" in msg and "test_mismatched.tsv" in msg and "found []" in msg
    assert isinstance(err.value, FileNotFoundError)


def test_hf_source_absent_or_faked(monkeypatch):
    import sys
    import types

    monkeypatch.setitem(sys.modules, "datasets", None)   # makes `import datasets` fail
    with pytest.raises(ImportError, match="datasets"):
        load_task("rte", None, "dev")

    class Rows(list):
        features = {"label": types.SimpleNamespace(names=["entailment", "neutral", "contradiction"])}

    calls = []

    def load_dataset(ds_id, config, split):
        calls.append((ds_id, config, split))
        return Rows([{"premise": "p", "hypothesis": "h", "label": 2, "idx": 5},
                     {"premise": "q", "hypothesis": "i", "label": -1, "idx": 6}])

    monkeypatch.setitem(sys.modules, "datasets", types.SimpleNamespace(load_dataset=load_dataset))
    ds = load_task("mnli_mismatched", None, "dev")
    assert calls == [("nyu-mll/glue", "mnli", "validation_mismatched")]
    assert ds[0] == Example("p", "h", 0, "5")          # HF contradiction=2 -> GLUE/BERT order 0
    assert ds[1].label is None
    assert ds.source.startswith("hf:")


# ----------------------------------------------------------------------------- real files
REAL_DEV = {"cola": (1043, {1: 721, 0: 322}), "sst2": (872, {1: 444, 0: 428}), "mrpc": (408, {1: 279, 0: 129}),
            "stsb": (1500, None), "qnli": (5463, {0: 2702, 1: 2761}), "rte": (277, {0: 146, 1: 131}),
            "wnli": (71, {0: 40, 1: 31})}


@pytest.mark.parametrize("config", sorted(REAL_DEV))
def test_real_dev_files(config):
    folder = REAL / get_config(config).task.name
    if not folder.is_dir():
        pytest.skip(f"no real GLUE data at {folder}")
    n, balance = REAL_DEV[config]
    ds = load_task(config, folder, "dev")
    assert len(ds) == n
    if balance is None:
        assert all(0.0 <= y <= 5.0 for y in ds.labels)
    else:
        assert Counter(ds.labels) == balance


@pytest.mark.parametrize("config,split,n", [("cola", "train", 8551), ("cola", "test", 1063), ("sst2", "test", 1821),
                                            ("mrpc", "train", 3668), ("mrpc", "test", 1725), ("stsb", "test", 1379),
                                            ("qnli", "test", 5463), ("rte", "test", 3000), ("wnli", "train", 635)])
def test_real_other_files(config, split, n):
    folder = REAL / get_config(config).task.name
    if not folder.is_dir():
        pytest.skip(f"no real GLUE data at {folder}")
    ds = load_task(config, folder, split)
    assert len(ds) == n
    assert ds.has_labels == (split != "test")
    assert len(ds) == get_config(config).task.splits[split].rows
