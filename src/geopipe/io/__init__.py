"""geopipe.io."""
