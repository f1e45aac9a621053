"""Data: audio reading, synthetic datasets in official layouts."""
