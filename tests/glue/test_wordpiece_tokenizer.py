"""WordPieceTokenizer: known bert-base-uncased ids, pairs, truncation, padding, folder loading, errors."""
import json
from pathlib import Path

import pytest
import torch

from autobert.train import WordPieceTokenizer, read_vocab

VOCAB = Path(__file__).parents[2].parent / "shared" / "data" / "vocab" / "bert-base-uncased-vocab.txt"

# A tiny vocabulary so that most tests run without the shared data.
TINY = ["[PAD]", "[unused0]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "hello", "world", "the", "cat",
        "sat", "on", "mat", "un", "##aff", "##able", "!", ",", "a", "b", "c", "d", "e"]


@pytest.fixture(scope="module")
def tiny_tok(tmp_path_factory):
    path = tmp_path_factory.mktemp("vocab") / "vocab.txt"
    path.write_text("\n".join(TINY) + "\n", encoding="utf-8")
    return WordPieceTokenizer.from_vocab(path)


@pytest.fixture(scope="module")
def bert_tok():
    if not VOCAB.is_file():
        pytest.skip(f"no BERT vocab at {VOCAB}")
    return WordPieceTokenizer.from_vocab(VOCAB)


def test_known_bert_ids(bert_tok):
    assert (bert_tok.pad_token_id, bert_tok.unk_token_id, bert_tok.cls_token_id,
            bert_tok.sep_token_id, bert_tok.mask_token_id) == (0, 100, 101, 102, 103)
    assert bert_tok.vocab_size == 30522
    out = bert_tok(["hello world"])
    assert out["input_ids"].tolist() == [[101, 7592, 2088, 102]]
    assert out["input_ids"].dtype == torch.long
    assert out["token_type_ids"].tolist() == [[0, 0, 0, 0]]
    assert out["attention_mask"].tolist() == [[1, 1, 1, 1]]
    # Lowercasing, accent stripping and punctuation splitting of the uncased pipeline.
    assert bert_tok(["Hello WORLD!"])["input_ids"].tolist() == [[101, 7592, 2088, 999, 102]]
    assert bert_tok.tokenize("Héllo") == ["hello"]
    # A literal [MASK] is the mask token, not three pieces.
    assert bert_tok("hello [MASK]")["input_ids"].tolist() == [[101, 7592, 103, 102]]


def test_bert_pair_and_decode(bert_tok):
    out = bert_tok(["hello world"], ["hello"])
    assert out["input_ids"].tolist() == [[101, 7592, 2088, 102, 7592, 102]]
    assert out["token_type_ids"].tolist() == [[0, 0, 0, 0, 1, 1]]
    assert bert_tok.decode(out["input_ids"][0]) == "hello world hello"


def test_pair_types_and_padding(tiny_tok):
    out = tiny_tok(["hello world", "the cat sat on the mat"], ["cat", "hello"])
    ids, types, mask = out["input_ids"], out["token_type_ids"], out["attention_mask"]
    assert ids.shape == types.shape == mask.shape == (2, 10)
    cls, sep, pad = tiny_tok.cls_token_id, tiny_tok.sep_token_id, tiny_tok.pad_token_id
    assert ids[0].tolist() == [cls, 6, 7, sep, 9, sep, pad, pad, pad, pad]
    assert types[0].tolist() == [0, 0, 0, 0, 1, 1, 0, 0, 0, 0]
    assert mask[0].tolist() == [1] * 6 + [0] * 4
    assert mask[1].tolist() == [1] * 10


def test_truncation_longest_first(tiny_tok):
    a, b = "a b c d e", "the cat sat on the mat hello world"      # 5 and 8 pieces
    out = tiny_tok([a], [b], max_length=9)                          # 6 content slots
    ids = out["input_ids"][0].tolist()
    assert len(ids) == 9
    sep = tiny_tok.sep_token_id
    first_sep = ids.index(sep)
    n_a, n_b = first_sep - 1, len(ids) - first_sep - 2
    assert n_a + n_b == 6 and abs(n_a - n_b) <= 1                   # trimmed from the longer side
    single = tiny_tok(["the cat sat on the mat"], max_length=4)["input_ids"][0].tolist()
    assert single == [tiny_tok.cls_token_id, 8, 9, sep]


def test_padding_modes_and_specials_mask(tiny_tok):
    out = tiny_tok(["hello", "hello world"], max_length=8, padding="max_length",
                   return_special_tokens_mask=True)
    assert out["input_ids"].shape == (2, 8)
    assert out["special_tokens_mask"][0].tolist() == [1, 0, 1, 1, 1, 1, 1, 1]
    out = tiny_tok(["hello"], pad_to_multiple_of=8)
    assert out["input_ids"].shape == (1, 8)
    assert tiny_tok([])["input_ids"].shape == (0, 0)


def test_unknown_and_wordpiece(tiny_tok):
    assert tiny_tok.tokenize("unaffable zebra") == ["un", "##aff", "##able", "[UNK]"]
    assert tiny_tok.convert_tokens_to_ids(["cat", "nope"]) == [9, tiny_tok.unk_token_id]


def test_bad_arguments(tiny_tok):
    with pytest.raises(ValueError, match="texts_b"):
        tiny_tok(["a", "b"], ["c"])
    with pytest.raises(TypeError, match=r"texts_a\[1\]"):
        tiny_tok(["a", None])
    with pytest.raises(ValueError, match="padding"):
        tiny_tok(["a"], padding="yes")
    with pytest.raises(ValueError, match="max_length"):
        tiny_tok(["a"], ["b"], max_length=2)


def test_vocab_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="vocab file not found"):
        WordPieceTokenizer.from_vocab(tmp_path / "missing.txt")
    empty = tmp_path / "empty.txt"
    empty.write_text("")
    with pytest.raises(ValueError, match="empty"):
        WordPieceTokenizer.from_vocab(empty)
    nospecial = tmp_path / "nospecial.txt"
    nospecial.write_text("hello\nworld\n")
    with pytest.raises(ValueError, match=r"\[PAD\]"):
        read_vocab(nospecial)


def test_from_pretrained_folder(tmp_path, tiny_tok):
    folder = tmp_path / "hf"
    folder.mkdir()
    with pytest.raises(FileNotFoundError, match="neither tokenizer.json nor vocab.txt"):
        WordPieceTokenizer.from_pretrained(folder)
    (folder / "vocab.txt").write_text("\n".join(TINY) + "\n", encoding="utf-8")
    (folder / "tokenizer_config.json").write_text(json.dumps({"do_lower_case": True}))
    from_vocab_dir = WordPieceTokenizer.from_file(folder)
    assert from_vocab_dir("Hello cat")["input_ids"].tolist() == tiny_tok("hello cat")["input_ids"].tolist()
    # tokenizer.json (what HF's save_pretrained writes) wins over vocab.txt.
    tiny_tok._tok.save(str(folder / "tokenizer.json"))
    loaded = WordPieceTokenizer.from_pretrained(folder)
    assert loaded.source.endswith("tokenizer.json")
    pair = (["the cat"], ["sat on the mat"])
    for key in ("input_ids", "token_type_ids", "attention_mask"):
        assert torch.equal(loaded(*pair)[key], tiny_tok(*pair)[key])
