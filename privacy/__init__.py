"""privgov: privacy layer."""
