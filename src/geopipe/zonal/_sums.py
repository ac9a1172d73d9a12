"""Per-unit sums of pair weights split by a small number of classes, in one ``bincount``.

The pixel steps need several sums of the same weights over the same (unit, pixel) pairs, each
over a different subset of the pairs (covered / uncovered, below a threshold, within N minutes).
Masking the weights once per subset and calling ``np.bincount`` once per sum costs a temporary
array and a pass over millions of pairs each time; giving every pair a class and counting
``unit x classes + class`` in one pass costs one. Each subset's sum is then the sum of its
classes' columns (the same numbers to float rounding: the classes are partial sums).
"""

from __future__ import annotations

import numpy as np

__all__ = ["class_sums"]


def class_sums(unit: np.ndarray, n: int, w: np.ndarray, cls: np.ndarray, k: int) -> np.ndarray:
    """``(n, k)`` array: the sum of ``w`` over the pairs of each unit (row) in each class (column).

    ``unit`` holds unit positions ``0 .. n - 1``, ``cls`` class numbers ``0 .. k - 1``.

    Examples
    --------
    >>> class_sums(np.array([0, 0, 1]), 2, np.array([1.0, 2.0, 4.0]), np.array([0, 1, 1]), 2)
    array([[1., 2.],
           [0., 4.]])
    """
    key = np.asarray(unit, dtype=np.int64) * k
    key += cls
    return np.bincount(key, weights=w, minlength=n * k).reshape(n, k)
