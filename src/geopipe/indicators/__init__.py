"""geopipe.indicators."""
