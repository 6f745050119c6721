"""privgov: governance layer."""
