"""A tiny Django app whose models feed Cachecore deps, for the Django integration tests."""
