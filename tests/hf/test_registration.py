"""Registration with transformers when autobert is imported: cheap (transformers is not imported by
autobert), effective whichever is imported first, and never an import failure."""
import subprocess
import sys
import textwrap

import pytest

from autobert.hf.registration import MIN_TRANSFORMERS, _major, transformers_version

NEW = transformers_version() is not None and _major(transformers_version()) >= MIN_TRANSFORMERS
needs_new = pytest.mark.skipif(not NEW, reason=f"needs transformers >= {MIN_TRANSFORMERS}")


def _run(code: str) -> list[str]:
    res = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    return res.stdout.split()


def test_importing_autobert_imports_no_transformers():
    assert _run("""
        import sys, autobert
        print(any(m == "transformers" or m.startswith("transformers.") for m in sys.modules))
    """) == ["False"]


@needs_new
@pytest.mark.parametrize("first", ["autobert", "transformers"])
def test_registered_whichever_comes_first(first):
    imports = ["import autobert", "from transformers import AutoConfig, AutoModel, AutoTokenizer, BertModel"]
    if first == "transformers":
        imports.reverse()
    out = _run("\n".join(imports) + textwrap.dedent("""
        from transformers import AttentionInterface, AttentionMaskInterface
        from transformers.models.auto.configuration_auto import CONFIG_MAPPING
        from transformers.models.auto.modeling_auto import MODEL_MAPPING
        from transformers.models.auto.tokenization_auto import TOKENIZER_MAPPING
        config = CONFIG_MAPPING["autobert"]
        print(config.__name__, MODEL_MAPPING[config].__name__, TOKENIZER_MAPPING[config].__name__,
              "autobert" in AttentionInterface._global_mapping, "autobert" in AttentionMaskInterface._global_mapping)
    """))
    assert out == ["AutoBertConfig", "AutoBertModel", "BertTokenizer", "True", "True"]


@needs_new
def test_a_failing_registration_is_logged_not_raised():
    out = _run("""
        import logging, sys
        import autobert
        logging.basicConfig(level=logging.WARNING, format="%(message)s", stream=sys.stdout)
        def broken():
            raise RuntimeError("boom")
        hook = next(f for f in sys.meta_path if type(f).__name__ == "_AfterImport")
        hook.callbacks["transformers.models.auto.configuration_auto"] = broken
        from transformers import AutoConfig
        print("imported")
    """)
    assert "boom" in " ".join(out) and out[-1] == "imported"


@pytest.mark.skipif(NEW, reason="checks the message given with transformers < 5 or none")
def test_old_transformers_gets_a_clear_import_error():
    import autobert.hf
    with pytest.raises(ImportError, match=f"transformers >= {MIN_TRANSFORMERS}"):
        autobert.hf.AutoBertConfig
