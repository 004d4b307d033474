"""load_corpus / split_blocks: block layout, folder reading, WikiText clean-up, bad corpora."""
import pytest
import torch

from autobert.train import CorpusError, corpus_files, load_corpus, split_blocks


def test_blocks_are_cls_body_sep_over_one_stream(tmp_path, tiny_tokenizer):
    text = "the cat sat on the mat .\n\n the dog ran under the tree .\n"
    (tmp_path / "c.txt").write_text(text)
    blocks = load_corpus(tmp_path / "c.txt", tiny_tokenizer, 6)
    stream = tiny_tokenizer.convert_tokens_to_ids(tiny_tokenizer.tokenize("the cat sat on the mat .")
                                                  + tiny_tokenizer.tokenize("the dog ran under the tree ."))
    assert blocks.dtype == torch.long and blocks.shape == (len(stream) // 4, 6)
    assert bool((blocks[:, 0] == tiny_tokenizer.cls_token_id).all())
    assert bool((blocks[:, -1] == tiny_tokenizer.sep_token_id).all())
    assert blocks[:, 1:-1].reshape(-1).tolist() == stream[: blocks.shape[0] * 4]  # last partial chunk dropped


def test_folder_reads_corpus_files_only_in_sorted_order(tiny_data, tiny_tokenizer):
    files = corpus_files(tiny_data["corpus"])
    assert [f.name for f in files] == ["a.txt", "b.tokens"]
    blocks = load_corpus(tiny_data["corpus"], tiny_tokenizer, 16)
    capped = load_corpus(tiny_data["corpus"], tiny_tokenizer, 16, max_tokens=140)
    assert capped.shape == (10, 16) and torch.equal(capped, blocks[:10])


def test_wikitext_unk_and_number_separators(tmp_path, tiny_tokenizer):
    (tmp_path / "w.tokens").write_text("the <unk> cat 1 @,@ 000 sat , big @-@ red .\n")
    ids = load_corpus(tmp_path / "w.tokens", tiny_tokenizer, 12)[0].tolist()
    assert ids.count(tiny_tokenizer.unk_token_id) >= 1
    assert "@" not in tiny_tokenizer.decode(ids) and "<" not in tiny_tokenizer.decode(ids)


def test_split_blocks_is_seeded_disjoint_and_ordered():
    blocks = torch.arange(100).view(20, 5)
    train, held = split_blocks(blocks, 0.25, seed=3)
    assert train.shape == (15, 5) and held.shape == (5, 5)
    assert sorted(torch.cat([train, held])[:, 0].tolist()) == list(range(0, 100, 5))
    assert train[:, 0].tolist() == sorted(train[:, 0].tolist())
    again, held2 = split_blocks(blocks, 0.25, seed=3)
    assert torch.equal(held, held2) and not torch.equal(held, split_blocks(blocks, 0.25, seed=4)[1])
    assert split_blocks(blocks, 0.0, seed=0)[1].shape[0] == 0
    with pytest.raises(ValueError, match="holdout_fraction"):
        split_blocks(blocks, 1.0, seed=0)


def test_bad_corpora_give_clear_errors(tmp_path, tiny_tokenizer):
    with pytest.raises(FileNotFoundError, match="corpus not found"):
        load_corpus(tmp_path / "missing", tiny_tokenizer, 8)
    (tmp_path / "empty.txt").write_text("\n   \n\n")
    with pytest.raises(CorpusError, match="no text"):
        load_corpus(tmp_path / "empty.txt", tiny_tokenizer, 8)
    (tmp_path / "short.txt").write_text("the cat\n")
    with pytest.raises(CorpusError, match="fewer than one block"):
        load_corpus(tmp_path / "short.txt", tiny_tokenizer, 8)
    (tmp_path / "folder").mkdir()
    (tmp_path / "folder" / "x.md").write_text("the cat sat\n")
    with pytest.raises(CorpusError, match="holds no"):
        load_corpus(tmp_path / "folder", tiny_tokenizer, 8)
    with pytest.raises(ValueError, match="seq_len"):
        load_corpus(tmp_path / "short.txt", tiny_tokenizer, 2)
