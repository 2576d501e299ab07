"""Tests of the async core, written once; ``tests/_sync`` is generated from them."""
