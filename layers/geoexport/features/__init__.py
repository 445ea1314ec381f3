"""The feature repository (seed 004, REGARDS feature management): models, and later features and files."""
