"""Where the ranking tests find their data (importable from the test modules, unlike conftest)."""
from pathlib import Path

FIXTURE = Path(__file__).parent / "data" / "nas-bench-bert-20"   # 20 entries, committed (see its README)
SHARED = Path(__file__).parents[2].parent / "shared" / "data"     # the full data, when present beside the clone
