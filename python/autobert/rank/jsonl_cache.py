"""``JsonlCache``: finished results by name (an architecture fingerprint, a search repeat), appended to
a JSON-lines file as they come, so a run killed at any point resumes from the file.

Every finished result is one complete line (a torn last line, from a kill mid-write, is ignored),
and results are reused only under the same ``key`` (a hash of the settings they depend on), so a
changed setting never mixes with old numbers.
"""
from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Optional

log = logging.getLogger(__name__)


class JsonlCache:
    def __init__(self, path: "str | os.PathLike", key: str):
        self.path, self.key = Path(path), key
        self.values: dict[str, dict] = {}
        self.seconds: dict[str, float] = {}
        if self.path.is_file():
            self._load()

    def _load(self) -> None:
        with open(self.path, encoding="utf-8") as f:
            lines = f.read().splitlines()
        for i, line in enumerate(lines):
            try:
                row = json.loads(line)
            except ValueError:
                if i == len(lines) - 1:  # a kill mid-write leaves a torn last line: recompute that one
                    log.warning("%s: ignoring an incomplete last line", self.path)
                    continue
                raise ValueError(f"{self.path}: line {i + 1} is not JSON (not a result cache?)") from None
            if row.get("key") == self.key:
                self.values[row["name"]] = row["values"]
                self.seconds[row["name"]] = row["seconds"]

    def get(self, name: str) -> Optional[dict]:
        return self.values.get(name)

    def add(self, name: str, values: dict, seconds: float) -> None:
        """Record (and append to the file) the result ``name`` and the seconds it took."""
        self.values[name], self.seconds[name] = values, seconds
        line = json.dumps({"key": self.key, "name": name, "values": values, "seconds": seconds})
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(line + "\n")
            f.flush()
