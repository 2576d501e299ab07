"""The hand-written async faces of ``cachecore.testing``.

``cachecore/testing/_sync`` is generated from this folder by ``codegen/make_sync.py``:
edit here.
"""
