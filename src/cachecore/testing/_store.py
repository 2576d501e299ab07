"""One tenant's cache: exact (L1) and similar (L2) lookups, bounds, deps, TTL.

Everything a tenant owns lives in its own ``TenantCache``, so isolation is
structural: a lookup or an invalidation only ever sees one tenant's object.
Inside a tenant, an entry answers only requests of the same *scope*: namespace
(tenant and roles), declared deps (ids and expected hashes) and, for L2,
everything in the request but the prompt's text (model, parameters, tools,
roles, non-text parts). The L1 key includes namespace and deps; the L2 index
groups vectors by the scope. So a request for ticket T-2 can never be answered
with ticket T-1's completion, however similar the prompts.

Bounded in everything a tenant can add: entries (``max_entries``, LRU), bytes
(``max_bytes``: entries and recorded dep versions; dep versions alone at most
half of it), L2 groups (dropped with their last entry) and dep versions (at
most ``max_entries``, oldest forgotten first).

Invalidation wins races. Each invalidation bumps the tenant's ``epoch`` and
stamps the dep with it; a miss remembers the epoch it started at and, when its
upstream answer comes back, is stored only if none of its deps was invalidated
since. A dep version forgotten to the bound raises ``floor_epoch``: a miss
older than that cannot prove its deps untouched and is not stored.

Not thread-safe on its own: the gateway holds its lock around every call.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from cachecore.testing._index import VectorIndex, new_index

#: Bytes charged per entry and per dep version on top of their text: dict slots,
#: the Entry object, the index row bookkeeping. An estimate, so bounds err high.
ENTRY_OVERHEAD = 512
DEP_OVERHEAD = 128


def deps_fingerprint(deps: Mapping[str, str]) -> str:
    """The deps as canonical JSON: sorted ``[dep_id, expected_hash]`` pairs."""
    return json.dumps(sorted(deps.items()), ensure_ascii=False, separators=(",", ":"))


@dataclass(slots=True)
class Entry:
    """A cached completion and what it was stored under."""

    key: str
    completion: dict[str, Any]
    deps: dict[str, str]  # dep_id -> expected_hash declared when it was written
    written_at: float
    size: int = 0  # bytes charged to the tenant
    group: tuple[str, str, str] = ("", "", "")  # (namespace, deps, request-shape digest)
    row: int = -1  # row in the tenant's vector index


@dataclass(slots=True)
class Hit:
    entry: Entry
    similarity: float | None  # None for an exact (L1) hit


def _utf8(text: str) -> int:
    return len(text.encode("utf-8", "surrogatepass"))


def entry_size(entry: Entry, vector_bytes: int) -> int:
    """What an entry costs: its completion as JSON, key, deps, vector and overhead."""
    completion = len(json.dumps(entry.completion, separators=(",", ":")).encode("utf-8"))
    deps = sum(_utf8(d) + _utf8(h) + DEP_OVERHEAD for d, h in entry.deps.items())
    scope = sum(_utf8(part) for part in entry.group)
    return completion + len(entry.key) + deps + scope + vector_bytes + ENTRY_OVERHEAD


@dataclass(slots=True)
class Stored:
    """What ``TenantCache.store`` did."""

    stored: bool
    evicted: int = 0  # entries the entry or byte bound pushed out
    stale: bool = False  # not stored: a dep was invalidated while the miss was in flight
    too_large: bool = False  # not stored: bigger than the tenant's byte bound alone


@dataclass
class TenantCache:
    max_entries: int
    max_bytes: int
    use_numpy: bool | None
    ttl: float | None = None
    entries: OrderedDict[str, Entry] = field(default_factory=OrderedDict)  # LRU order
    # dep_id -> (hash recorded by the last invalidation, epoch of that invalidation)
    dep_versions: OrderedDict[str, tuple[str, int]] = field(default_factory=OrderedDict)
    epoch: int = 0
    floor_epoch: int = 0
    bytes: int = 0  # entries and dep versions
    dep_bytes: int = 0  # dep versions alone
    _written: dict[str, float] = field(default_factory=dict)  # key -> written_at, write order
    _by_dep: dict[str, set[str]] = field(default_factory=dict)  # dep_id -> entry keys
    _groups: dict[tuple[str, str, str], list[int]] = field(default_factory=dict)  # [id, count]
    _next_group: int = 0
    _rows: list[str] = field(default_factory=list)  # row -> entry key
    _index: VectorIndex | None = None

    @property
    def group_count(self) -> int:
        return len(self._groups)

    def _vectors(self) -> VectorIndex:
        if self._index is None:
            self._index = new_index(self.use_numpy)
        return self._index

    # -- lookups ------------------------------------------------------------------

    def exact(self, key: str, now: float) -> Hit | None:
        entry = self.entries.get(key)
        if entry is None or self._expired(entry, now):
            return None
        self.entries.move_to_end(key)
        return Hit(entry, None)

    def similar(
        self, vector: Sequence[float], group: tuple[str, str, str], threshold: float, now: float
    ) -> Hit | float | None:
        """The closest entry of the same scope if at or above ``threshold``; else the
        best similarity found under it, or ``None`` when the scope holds no entry."""
        slot = self._groups.get(group)
        if slot is None:
            return None
        found = self._vectors().best(vector, slot[0])
        if found is None:
            return None
        entry = self.entries[self._rows[found[0]]]
        if found[1] < threshold or self._expired(entry, now):
            return found[1]
        self.entries.move_to_end(entry.key)
        return Hit(entry, min(1.0, max(0.0, found[1])))

    def _expired(self, entry: Entry, now: float) -> bool:
        return self.ttl is not None and now - entry.written_at >= self.ttl

    # -- writes -------------------------------------------------------------------

    def store(self, entry: Entry, vector: Sequence[float], since_epoch: int) -> Stored:
        """Insert or replace ``entry`` unless a dep was invalidated after ``since_epoch``."""
        if entry.deps and not self._deps_untouched(entry.deps, since_epoch):
            return Stored(False, stale=True)
        if entry.size > self.max_bytes:
            return Stored(False, too_large=True)
        if entry.key in self.entries:
            self._drop(entry.key)
        slot = self._groups.get(entry.group)
        group_id = self._next_group if slot is None else slot[0]
        entry.row = self._vectors().add(vector, group_id)  # raises before any change
        if slot is None:
            slot = self._groups[entry.group] = [group_id, 0]
            self._next_group += 1
        slot[1] += 1
        self._rows.append(entry.key)
        self.entries[entry.key] = entry
        self._written[entry.key] = entry.written_at
        for dep_id in entry.deps:
            self._by_dep.setdefault(dep_id, set()).add(entry.key)
        self.bytes += entry.size
        evicted = 0
        while len(self.entries) > self.max_entries or self.bytes > self.max_bytes:
            oldest = next(iter(self.entries))
            if oldest != entry.key:
                self._drop(oldest)
                evicted += 1
            elif self.dep_versions:  # only the new entry left: recorded versions make room
                self._forget_oldest_version()
            else:
                break  # cannot happen: entry.size <= max_bytes
        return Stored(True, evicted)

    def shed(self) -> int:
        """Free the least valuable bytes (LRU entry, else oldest dep version); return them."""
        before = self.bytes
        if self.entries:
            self._drop(next(iter(self.entries)))
        elif self.dep_versions:
            self._forget_oldest_version()
        return before - self.bytes

    def _forget_oldest_version(self) -> None:
        gone, (gone_hash, gone_epoch) = self.dep_versions.popitem(last=False)
        size = _dep_size(gone, gone_hash)
        self.bytes -= size
        self.dep_bytes -= size
        # A miss that began before this version cannot prove its deps untouched any more.
        self.floor_epoch = max(self.floor_epoch, gone_epoch)

    def _deps_untouched(self, deps: Mapping[str, str], since_epoch: int) -> bool:
        for dep_id in deps:
            version = self.dep_versions.get(dep_id)
            epoch = self.floor_epoch if version is None else version[1]
            if epoch > since_epoch:
                return False
        return True

    def invalidate(self, dep_id: str, new_hash: str) -> int:
        """Record ``new_hash`` and drop entries that expected another hash of ``dep_id``."""
        self.epoch += 1
        old = self.dep_versions.pop(dep_id, None)
        if old is not None:
            size = _dep_size(dep_id, old[0])
            self.bytes -= size
            self.dep_bytes -= size
        self.dep_versions[dep_id] = (new_hash, self.epoch)
        size = _dep_size(dep_id, new_hash)
        self.bytes += size
        self.dep_bytes += size
        # Versions keep at most half the byte bound, so entries always have room.
        while len(self.dep_versions) > 1 and (
            len(self.dep_versions) > self.max_entries or self.dep_bytes > self.max_bytes // 2
        ):
            self._forget_oldest_version()
        stale = [
            key
            for key in self._by_dep.get(dep_id, ())
            if self.entries[key].deps[dep_id] != new_hash
        ]
        for key in stale:
            self._drop(key)
        while self.bytes > self.max_bytes and self.entries:
            self._drop(next(iter(self.entries)))
        return len(stale)

    def expire(self, now: float) -> int:
        """Drop entries older than the TTL (oldest written first); return how many."""
        if self.ttl is None:
            return 0
        gone = 0
        for key, written_at in list(self._written.items()):
            if now - written_at < self.ttl:
                break
            self._drop(key)
            gone += 1
        return gone

    def _drop(self, key: str) -> None:
        entry = self.entries.pop(key)
        del self._written[key]
        self.bytes -= entry.size
        for dep_id in entry.deps:
            keys = self._by_dep[dep_id]
            keys.discard(key)
            if not keys:
                del self._by_dep[dep_id]
        slot = self._groups[entry.group]
        slot[1] -= 1
        if slot[1] == 0:
            del self._groups[entry.group]
        moved = self._vectors().remove(entry.row)
        last_key = self._rows.pop()
        if moved is not None:
            self._rows[entry.row] = last_key
            self.entries[last_key].row = entry.row


def _dep_size(dep_id: str, new_hash: str) -> int:
    return _utf8(dep_id) + _utf8(new_hash) + DEP_OVERHEAD
