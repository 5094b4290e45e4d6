"""Records spread over partition files by a hash of their key, then read back one partition at a time.

This is how the reconciler and the validator stay within bounded memory whatever the table size:
only one partition (about ``partition_rows`` records) is ever held in RAM.
"""

from __future__ import annotations

import pickle
import threading
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

FLUSH_EVERY = 2048


def partitions_for(rows: int, partition_rows: int, most: int = 512) -> int:
    """How many partitions keep each one near ``partition_rows`` records."""
    return max(1, min(most, -(-rows // partition_rows)))


def partition_of(key: tuple[str, ...], partitions: int) -> int:
    """The partition of a key (stable across processes and sides)."""
    return zlib.crc32("\x1f".join(key).encode()) % partitions if partitions > 1 else 0


class Spill:
    """Append-only partitioned record files; thread-safe ``add``."""

    def __init__(self, directory: Path, name: str, partitions: int, *, create: bool = True) -> None:
        self.partitions = partitions
        self.paths = [directory / f"{name}.{i:04d}.pickle" for i in range(partitions)]
        self.buffers: list[list[Any]] = [[] for _ in range(partitions)] if create else []
        self.files = [path.open("wb") for path in self.paths] if create else []
        self.count = 0
        self.lock = threading.Lock()

    @classmethod
    def existing(cls, directory: Path, name: str, partitions: int) -> Spill:
        """A closed spill another process wrote, for ``read``."""
        return cls(directory, name, partitions, create=False)

    def add(self, key: tuple[str, ...], record: tuple[Any, ...]) -> None:
        """Append ``record`` (its first element should be ``key``) to the key's partition."""
        index = partition_of(key, self.partitions)
        with self.lock:
            buffer = self.buffers[index]
            buffer.append(record)
            self.count += 1
            if len(buffer) >= FLUSH_EVERY:
                pickle.dump(buffer, self.files[index], protocol=pickle.HIGHEST_PROTOCOL)
                self.buffers[index] = []

    def close(self) -> None:
        """Flush every buffer; the spill becomes readable."""
        with self.lock:
            for index, buffer in enumerate(self.buffers):
                if buffer:
                    pickle.dump(buffer, self.files[index], protocol=pickle.HIGHEST_PROTOCOL)
                self.buffers[index] = []
                self.files[index].close()

    def read(self, index: int) -> Iterator[Any]:
        """Every record of one partition (after ``close``)."""
        with self.paths[index].open("rb") as fh:
            while True:
                try:
                    chunk = pickle.load(fh)
                except EOFError:
                    return
                yield from chunk

    def remove(self) -> None:
        for path in self.paths:
            path.unlink(missing_ok=True)
