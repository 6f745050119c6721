"""privgov: policies layer."""
