"""Serving: recommendation snapshots (assets) and the online API that reads them."""
