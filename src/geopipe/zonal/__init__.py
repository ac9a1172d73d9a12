"""geopipe.zonal."""
