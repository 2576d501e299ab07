"""One tenant's cache: exact (L1) and similar (L2) lookups, LRU bound, deps.

Everything a tenant owns lives in its own ``TenantCache``, so isolation is
structural: a lookup or an invalidation only ever sees one tenant's object.
Inside a tenant, entries are further split by namespace (tenant + roles) and
model through the group id of the vector index and the L1 key. Not thread-safe
on its own: the gateway holds its lock around every call.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from cachecore.testing._index import VectorIndex, new_index


@dataclass(slots=True)
class Entry:
    """A cached completion and what it was stored under."""

    key: str
    completion: dict[str, Any]
    deps: dict[str, str]  # dep_id -> expected_hash declared when it was written
    written_at: float
    row: int = -1  # row in the tenant's vector index


@dataclass(slots=True)
class Hit:
    entry: Entry
    similarity: float | None  # None for an exact (L1) hit


def deps_agree(entry: Entry, deps: dict[str, str]) -> bool:
    """An entry may answer a request unless both declare a dep with different hashes."""
    return all(entry.deps.get(dep_id, h) == h for dep_id, h in deps.items())


@dataclass
class TenantCache:
    max_entries: int
    use_numpy: bool | None
    entries: OrderedDict[str, Entry] = field(default_factory=OrderedDict)
    # Bounded like the entries: a tenant invalidating endless fresh dep ids cannot grow it.
    dep_versions: OrderedDict[str, str] = field(default_factory=OrderedDict)
    _groups: dict[tuple[str, str], int] = field(default_factory=dict)
    _rows: list[str] = field(default_factory=list)  # row -> entry key
    _index: VectorIndex | None = None

    def _group(self, namespace: str, model: str) -> int:
        return self._groups.setdefault((namespace, model), len(self._groups))

    def _vectors(self) -> VectorIndex:
        if self._index is None:
            self._index = new_index(self.use_numpy)
        return self._index

    def exact(self, key: str, deps: dict[str, str]) -> Hit | None:
        entry = self.entries.get(key)
        if entry is None or not deps_agree(entry, deps):
            return None
        self.entries.move_to_end(key)
        return Hit(entry, None)

    def similar(
        self,
        vector: Sequence[float],
        namespace: str,
        model: str,
        threshold: float,
        deps: dict[str, str],
    ) -> Hit | None:
        """The closest entry of the same namespace and model, if at or above ``threshold``."""
        if not self.entries:
            return None
        found = self._vectors().best(vector, self._group(namespace, model))
        if found is None or found[1] < threshold:
            return None
        entry = self.entries[self._rows[found[0]]]
        if not deps_agree(entry, deps):
            return None
        self.entries.move_to_end(entry.key)
        return Hit(entry, min(1.0, max(0.0, found[1])))

    def store(self, entry: Entry, vector: Sequence[float], namespace: str, model: str) -> int:
        """Insert or replace ``entry``; return how many entries the LRU bound evicted."""
        if entry.key in self.entries:
            self._drop(entry.key)
        entry.row = self._vectors().add(vector, self._group(namespace, model))
        self._rows.append(entry.key)
        self.entries[entry.key] = entry
        evicted = 0
        while len(self.entries) > self.max_entries:
            self._drop(next(iter(self.entries)))
            evicted += 1
        return evicted

    def invalidate(self, dep_id: str, new_hash: str) -> int:
        """Record ``new_hash`` and drop entries that expected another hash of ``dep_id``."""
        self.dep_versions[dep_id] = new_hash
        self.dep_versions.move_to_end(dep_id)
        while len(self.dep_versions) > self.max_entries:
            self.dep_versions.popitem(last=False)
        stale = [
            key
            for key, entry in self.entries.items()
            if dep_id in entry.deps and entry.deps[dep_id] != new_hash
        ]
        for key in stale:
            self._drop(key)
        return len(stale)

    def _drop(self, key: str) -> None:
        entry = self.entries.pop(key)
        moved = self._vectors().remove(entry.row)
        last_key = self._rows.pop()
        if moved is not None:
            self._rows[entry.row] = last_key
            self.entries[last_key].row = entry.row
