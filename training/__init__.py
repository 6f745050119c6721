"""privgov: training layer."""
