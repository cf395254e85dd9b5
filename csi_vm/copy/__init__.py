"""Copy engine: sparse, allocation-aware copies."""
