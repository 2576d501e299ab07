"""Tests of the shared, flavour-free modules and of what only one flavour can show."""
