"""Embedded default data (made or shipped, never downloaded) and loaders for real corpora."""
