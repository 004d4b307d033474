"""Training: tokenisation, corpus blocks, MLM masking, pretraining and GLUE fine-tuning.

>>> from autobert.train import WordPieceTokenizer, load_corpus, PretrainConfig, pretrain
>>> tok = WordPieceTokenizer.from_vocab("vocab.txt")
>>> pretrain(resolve_arch("bert-mini", tok.vocab_size), "corpus/", PretrainConfig(steps=1000), "runs/bert",
...          tokenizer=tok)
>>> finetune_glue("runs/bert", "glue_data/", tok, FinetuneConfig(seeds=(0, 1, 2)), "runs/bert-glue")
"""
from .archs import ARCHS, resolve_arch, small_abz, small_bert
from .corpus import CORPUS_SUFFIXES, CorpusError, corpus_files, load_corpus, split_blocks
from .finetune import FinetuneConfig, MissingTrainSplit, finetune, load_backbone
from .glue_suite import finetune_glue
from .masking import BERT_UNCASED_IDS, IGNORE_INDEX, MaskingIds, as_masking_ids, mask_tokens
from .mlm import MaskedLMLoss, evaluate_mlm, masked_lm_loss, mlm_step
from .pretrain import PretrainConfig, PretrainResult, pretrain
from .schedule import adamw, param_groups, warmup_linear_decay
from .tokenizer import SPECIAL_TOKENS, WordPieceTokenizer, read_vocab

__all__ = [
    # tokenisation
    "SPECIAL_TOKENS", "WordPieceTokenizer", "read_vocab",
    # corpus and masking
    "load_corpus", "split_blocks", "corpus_files", "CORPUS_SUFFIXES", "CorpusError",
    "mask_tokens", "MaskingIds", "as_masking_ids", "BERT_UNCASED_IDS", "IGNORE_INDEX",
    # MLM
    "masked_lm_loss", "MaskedLMLoss", "mlm_step", "evaluate_mlm", "adamw", "param_groups", "warmup_linear_decay",
    # pretraining
    "PretrainConfig", "PretrainResult", "pretrain",
    # fine-tuning
    "FinetuneConfig", "finetune", "finetune_glue", "load_backbone", "MissingTrainSplit",
    # small architectures
    "ARCHS", "resolve_arch", "small_bert", "small_abz",
]
