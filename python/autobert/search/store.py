"""``SearchStore``: the run's SQLite database (``search.sqlite``, WAL mode), the record of truth.

One row per proposed candidate. ``id`` is the proposal number; ``fingerprint`` and ``function``
(the functional fingerprint) are UNIQUE, so neither an architecture nor a function can be stored
(or evaluated) twice. Every change is one transaction, so a
``kill -9`` at any point leaves the database at the last committed state: a candidate is
pending, running (its evaluation was interrupted: re-evaluated on resume) or finished (done /
failed, kept). ``finish_seq`` numbers finished candidates in the order their results arrived,
which is the order the evolution state is rebuilt in.
"""
from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path
from typing import Iterator, Optional

STATUSES = ("pending", "running", "done", "failed")
_SCHEMA = """
CREATE TABLE IF NOT EXISTS candidates (
    id INTEGER PRIMARY KEY,                 -- proposal number (seeds the proposal's RNG)
    fingerprint TEXT UNIQUE NOT NULL,        -- ArchConfig fingerprint: the dedup key
    arch_json TEXT NOT NULL,                 -- ArchConfig JSON
    status TEXT NOT NULL CHECK (status IN ('pending', 'running', 'done', 'failed')),
    fitness REAL,                            -- held-out loss (lower is better); NULL unless done
    params INTEGER,                          -- parameters incl. MLM head
    flops INTEGER,                           -- backbone forward FLOPs at the constraint seq_len
    parent TEXT,                             -- parent fingerprint
    op TEXT,                                 -- mutation arm (op, delete/rewire, to_conv/to_attention/kernel)
    kind TEXT,                               -- seed | random | insert | replace | delete | rewire | to_conv | to_attention | kernel
    layer INTEGER,                           -- layer the mutation changed
    generation INTEGER NOT NULL DEFAULT 0,
    reward REAL,                             -- parent fitness - fitness (or -penalty when failed)
    reason TEXT,                             -- why it failed
    metrics_json TEXT,                       -- evaluator extras
    attempts INTEGER NOT NULL DEFAULT 0,     -- evaluations started (> 1 after an interrupted one)
    created_at REAL NOT NULL,
    started_at REAL,
    finished_at REAL,
    finish_seq INTEGER UNIQUE                -- order in which results arrived
);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""
# Columns added after the first schema: (name, declaration). A database made before them gets them
# on open (NULL for the old rows), so old runs still resume and report.
_ADDED_COLUMNS = (
    ("function", "TEXT"),  # functional fingerprint (ArchConfig.functional_fingerprint)
    ("rejected_json", "TEXT"),  # draws redrawn while proposing this candidate, by reason
)
_CORE_COLUMNS = ("id", "fingerprint", "arch_json", "status", "fitness", "parent", "op", "generation", "attempts",
                 "finish_seq")
_INDEXES = "CREATE UNIQUE INDEX IF NOT EXISTS candidates_function ON candidates(function);"


class SearchStore:
    """Open (creating if needed) ``path``; use as a context manager or call ``close``."""

    def __init__(self, path):
        self.path = Path(path)
        # isolation_level=None: autocommit; every multi-statement change uses an explicit transaction.
        self.db = sqlite3.connect(str(self.path), isolation_level=None, timeout=30.0)
        try:
            self._open()
        except sqlite3.DatabaseError as e:  # not SQLite, or a table of another layout
            self.db.close()
            raise ValueError(f"{self.path} is not a search database this version can use ({e})") from None

    def _open(self) -> None:
        self.db.row_factory = sqlite3.Row
        # Checked before anything is written: a database of another layout is refused untouched.
        columns = {r[1] for r in self.db.execute("PRAGMA table_info(candidates)")}
        missing = sorted(set(_CORE_COLUMNS) - columns)
        if columns and missing:
            raise sqlite3.DatabaseError(f"table candidates lacks columns {missing}")
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=FULL")  # a committed result survives even a power cut
        self.db.executescript(_SCHEMA)
        columns = {r[1] for r in self.db.execute("PRAGMA table_info(candidates)")}
        for name, decl in _ADDED_COLUMNS:
            if name not in columns:
                self.db.execute(f"ALTER TABLE candidates ADD COLUMN {name} {decl}")
        self.db.executescript(_INDEXES)

    def close(self) -> None:
        self.db.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _tx(self):
        return _Transaction(self.db)

    # ---- writes ----
    def add(self, index: int, fingerprint: str, arch_json: str, *, params: int, flops: int,
            parent: Optional[str] = None, op: Optional[str] = None, kind: str = "seed",
            layer: Optional[int] = None, generation: int = 0, function: Optional[str] = None,
            rejected: Optional[dict] = None) -> None:
        """Insert a pending candidate (sqlite3.IntegrityError if the fingerprint, function or id exists)."""
        with self._tx():
            self.db.execute(
                "INSERT INTO candidates (id, fingerprint, arch_json, status, params, flops, parent, op, kind, layer,"
                " generation, created_at, function, rejected_json) VALUES (?, ?, ?, 'pending', ?, ?, ?, ?, ?, ?, ?, ?,"
                " ?, ?)",
                (index, fingerprint, arch_json, params, flops, parent, op, kind, layer, generation, time.time(),
                 function, json.dumps(rejected or {}, sort_keys=True)))

    def start(self, index: int) -> None:
        with self._tx():
            self.db.execute("UPDATE candidates SET status='running', started_at=?, attempts=attempts+1 "
                            "WHERE id=? AND status IN ('pending', 'running')", (time.time(), index))

    def finish(self, index: int, status: str, *, fitness: Optional[float] = None, reason: Optional[str] = None,
               metrics: Optional[dict] = None, reward: Optional[float] = None) -> int:
        """Record a result (status done or failed); returns its finish_seq. Finished rows never change again."""
        if status not in ("done", "failed"):
            raise ValueError(f"finish status must be 'done' or 'failed', got {status!r}")
        with self._tx():
            seq = self.db.execute("SELECT COALESCE(MAX(finish_seq), -1) + 1 FROM candidates").fetchone()[0]
            cur = self.db.execute(
                "UPDATE candidates SET status=?, fitness=?, reason=?, metrics_json=?, reward=?, finished_at=?, "
                "finish_seq=? WHERE id=? AND status IN ('pending', 'running')",
                (status, fitness, reason, json.dumps(metrics or {}, sort_keys=True), reward, time.time(), seq, index))
            if cur.rowcount != 1:
                raise KeyError(f"candidate {index} is not pending/running (already finished or unknown)")
        return seq

    def requeue_running(self) -> int:
        """Interrupted evaluations (status running) back to pending; returns how many."""
        with self._tx():
            return self.db.execute("UPDATE candidates SET status='pending' WHERE status='running'").rowcount

    def set_meta(self, key: str, value) -> None:
        with self._tx():
            self.db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, json.dumps(value)))

    # ---- reads ----
    def meta(self, key: str, default=None):
        row = self.db.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return default if row is None else json.loads(row[0])

    def count(self, status: Optional[str] = None) -> int:
        if status is None:
            return self.db.execute("SELECT COUNT(*) FROM candidates").fetchone()[0]
        return self.db.execute("SELECT COUNT(*) FROM candidates WHERE status=?", (status,)).fetchone()[0]

    def next_index(self) -> int:
        return self.db.execute("SELECT COALESCE(MAX(id), -1) + 1 FROM candidates").fetchone()[0]

    def fingerprints(self) -> set[str]:
        """Every stored fingerprint and functional fingerprint (what a new proposal must not repeat)."""
        rows = self.db.execute("SELECT fingerprint, function FROM candidates").fetchall()
        return {r[0] for r in rows} | {r[1] for r in rows if r[1] is not None}

    def rejected_totals(self) -> dict:
        """Draws redrawn while proposing, summed over the run, by reason."""
        totals: dict = {}
        for (doc,) in self.db.execute("SELECT rejected_json FROM candidates WHERE rejected_json IS NOT NULL"):
            for reason, n in json.loads(doc).items():
                totals[reason] = totals.get(reason, 0) + n
        return totals

    def pending(self) -> list[sqlite3.Row]:
        return self.db.execute("SELECT * FROM candidates WHERE status='pending' ORDER BY id").fetchall()

    def finished(self) -> list[sqlite3.Row]:
        """Done and failed rows in the order their results arrived."""
        return self.db.execute("SELECT * FROM candidates WHERE finish_seq IS NOT NULL ORDER BY finish_seq").fetchall()

    def rows(self) -> Iterator[sqlite3.Row]:
        yield from self.db.execute("SELECT * FROM candidates ORDER BY id")

    def best(self, k: int = 1) -> list[sqlite3.Row]:
        return self.db.execute("SELECT * FROM candidates WHERE status='done' ORDER BY fitness, id LIMIT ?",
                               (k,)).fetchall()


class _Transaction:
    """BEGIN IMMEDIATE ... COMMIT (ROLLBACK on error): all of a change or none of it."""

    def __init__(self, db: sqlite3.Connection):
        self.db = db

    def __enter__(self):
        self.db.execute("BEGIN IMMEDIATE")
        return self.db

    def __exit__(self, exc_type, exc, tb):
        self.db.execute("ROLLBACK" if exc_type else "COMMIT")
        return False
