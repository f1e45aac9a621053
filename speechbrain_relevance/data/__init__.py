"""Data: audio reading, manifests, the recipes' shared data preparation."""
