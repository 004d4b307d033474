"""``ProxyCache``: proxy values per architecture fingerprint, appended to a JSON-lines file as they come.

A run killed at any point resumes from the file: every finished architecture is one complete line
(a torn last line, from a kill mid-write, is ignored), and values are reused only under the same
probe key (the settings they depend on), so a changed setting never mixes with old numbers.
"""
from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Optional

log = logging.getLogger(__name__)


class ProxyCache:
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
                raise ValueError(f"{self.path}: line {i + 1} is not JSON (not a proxy cache?)") from None
            if row.get("key") == self.key:
                self.values[row["fingerprint"]] = row["values"]
                self.seconds[row["fingerprint"]] = row["seconds"]

    def get(self, fingerprint: str) -> Optional[dict]:
        return self.values.get(fingerprint)

    def add(self, fingerprint: str, values: dict, seconds: float) -> None:
        self.values[fingerprint], self.seconds[fingerprint] = values, seconds
        line = json.dumps({"key": self.key, "fingerprint": fingerprint, "values": values, "seconds": seconds})
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(line + "\n")
            f.flush()
