"""geopipe.grids — units covering admin boundaries: H3 cells and square cells, split at admin edges.

``h3.h3_grid`` / ``h3.h3_cells`` and ``square.square_grid``; the shared overlay is in ``_split``.
Nothing is imported here, so ``import geopipe`` stays light.
"""
