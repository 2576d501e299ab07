"""The demo's hand-written async walk; ``cachecore/_demo/_sync`` is generated from it."""
