"""geopipe.grids."""
