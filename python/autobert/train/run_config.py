"""Shared plumbing of the run configs (``PretrainConfig``, ``FinetuneConfig``): field checks that
raise ValueError naming the field, and the JSON file written into every run folder."""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any, Optional

__all__ = ["JsonConfig", "check_int", "check_float", "check_choice", "write_text_atomic"]


def write_text_atomic(path: Path, text: str) -> None:
    """Write ``text`` beside ``path`` and rename it into place: a kill leaves the old file or the new one."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)


def check_int(owner: str, name: str, value: Any, minimum: int, *, optional: bool = False) -> None:
    if optional and value is None:
        return
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        extra = " or None" if optional else ""
        raise ValueError(f"{owner}.{name} must be an int >= {minimum}{extra}, got {value!r}")


def check_bool(owner: str, name: str, value: Any) -> None:
    if not isinstance(value, bool):
        raise ValueError(f"{owner}.{name} must be a bool (true or false), got {value!r}")


def check_float(owner: str, name: str, value: Any, lo: float, hi: float, *, lo_open: bool = False,
                hi_open: bool = False, optional: bool = False) -> None:
    if optional and value is None:
        return
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and value == value
    ok = ok and (value > lo if lo_open else value >= lo) and (value < hi if hi_open else value <= hi)
    if not ok:
        rng = f"{'(' if lo_open else '['}{lo}, {hi}{')' if hi_open else ']'}"
        raise ValueError(f"{owner}.{name} must be a number in {rng}{' or None' if optional else ''}, got {value!r}")


def check_choice(owner: str, name: str, value: Any, choices) -> None:
    if value not in choices:
        raise ValueError(f"{owner}.{name} must be one of {list(choices)}, got {value!r}")


class JsonConfig:
    """Mixin for frozen dataclasses: to_dict / from_dict / save / load with unknown-key checks.

    Tuples are written as JSON lists and read back as tuples (dataclass fields stay hashable).
    """

    FILE_NAME = "config.json"

    def to_dict(self) -> dict:
        return {f.name: (list(v) if isinstance(v := getattr(self, f.name), tuple) else v)
                for f in dataclasses.fields(self)}

    @classmethod
    def from_dict(cls, doc: Any):
        if not isinstance(doc, dict):
            raise ValueError(f"{cls.__name__} must be a JSON object, got {type(doc).__name__}")
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(doc) - names)
        if unknown:
            raise ValueError(f"{cls.__name__}: unknown fields {unknown}; expected some of {sorted(names)}")
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in doc.items()})

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n"

    def save(self, folder: "str | Path", name: Optional[str] = None) -> Path:
        path = Path(folder) / (name or self.FILE_NAME)
        path.parent.mkdir(parents=True, exist_ok=True)
        write_text_atomic(path, self.to_json())
        return path

    @classmethod
    def load(cls, path: "str | Path"):
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"config file not found: {path}")
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
        except ValueError as e:
            raise ValueError(f"{path}: not valid JSON: {e}") from None
        try:
            return cls.from_dict(doc)
        except (TypeError, ValueError) as e:
            raise ValueError(f"{path}: {e}") from None

    def replace(self, **changes):
        return dataclasses.replace(self, **changes)

    def differences(self, other) -> list[str]:
        """Names of the fields whose values differ from ``other``'s."""
        return [f.name for f in dataclasses.fields(self) if getattr(self, f.name) != getattr(other, f.name)]
