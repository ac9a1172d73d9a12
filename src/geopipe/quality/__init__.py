"""geopipe.quality."""
