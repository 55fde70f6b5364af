"""Colour strokes -> a full chroma plane guided by luma: Levin, Lischinski & Weiss 2004, "Colorization using
optimization" (ACM SIGGRAPH 2004), the method the design paper cites for the scribble workflow.

The premise (their section 2): neighbouring pixels with similar luma should have similar chroma. Each unknown
chroma value U(r) is asked to equal the weighted mean of its 3x3 neighbours,

    J(U) = sum_r ( U(r) - sum_{s in N(r)} w_rs U(s) )^2,    w_rs ∝ exp(-(Y(r) - Y(s))^2 / c_r),

(their eq. 1 and the first affinity function) with the weights of each r summing to 1, and ``c_r`` as the
authors' released code (getColorExact.m) sets it: 0.6 times the variance of Y in the 3x3 window around r,
raised where needed so that the most similar neighbour keeps a weight of at least 0.01, and floored at
2e-6. Pixels under a stroke are fixed to the stroke's chroma. Minimising J is
the sparse linear system ``(I - W) U = 0`` on the free pixels with the stroke values moved to the right-hand
side, solved here directly (SuperLU through ``scipy.sparse.linalg.splu``, one factorisation for Cb and Cr).
The paper solves it at full resolution with multigrid; we solve it at a reduced size (short side
:data:`FILL_SIZE`), which keeps a frame under a second, and bring the result back to full size with the
luma-guided upsampling the filter already uses for chroma (:mod:`vs_colorgan.upsample`).
"""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from scipy.sparse.linalg import splu

FILL_SIZE = 192  # short side of the grid the system is solved on (~50k unknowns at 16:9; ~0.3 s)
VARIANCE_FACTOR = 0.6  # c_r = 0.6 var(window): getColorExact.m
MIN_NEIGHBOUR_WEIGHT = 0.01  # c_r >= -min_s (Y(r) - Y(s))^2 / log(0.01): getColorExact.m
MIN_C = 2e-6  # getColorExact.m
STROKE_ALPHA = 0.2  # a pixel of the reduced grid counts as painted when the strokes cover at least this much of it


def levin_weights(y: np.ndarray) -> sp.csr_matrix:
    """The row-normalised affinity matrix W (n x n, n = h*w) of Levin et al. eq. 1 on the 3x3 neighbourhood."""
    h, w = y.shape
    n = h * w
    pad = np.pad(y.astype(np.float64), 1, mode="edge")
    # window statistics around each pixel (3x3, replicated borders)
    shifts = [(dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1) if (dy, dx) != (0, 0)]
    win = np.stack([pad[1 + dy:1 + dy + h, 1 + dx:1 + dx + w] for dy in (-1, 0, 1) for dx in (-1, 0, 1)])
    # c_r as getColorExact.m computes it (see the module docstring)
    centre = pad[1:1 + h, 1:1 + w]
    min_diff2 = np.min([(pad[1 + dy:1 + dy + h, 1 + dx:1 + dx + w] - centre) ** 2 for dy, dx in shifts], axis=0)
    var = np.maximum(np.maximum(VARIANCE_FACTOR * win.var(axis=0), -min_diff2 / np.log(MIN_NEIGHBOUR_WEIGHT)), MIN_C)
    idx = np.arange(n).reshape(h, w)
    rows, cols, vals = [], [], []
    yy, xx = np.mgrid[0:h, 0:w]
    for dy, dx in shifts:
        ny, nx = yy + dy, xx + dx
        ok = (ny >= 0) & (ny < h) & (nx >= 0) & (nx < w)
        r = idx[ok]
        s = idx[ny[ok], nx[ok]]
        diff = y.ravel()[r].astype(np.float64) - y.ravel()[s]
        rows.append(r)
        cols.append(s)
        vals.append(np.exp(-diff * diff / var.ravel()[r]))
    rows_a, cols_a, vals_a = np.concatenate(rows), np.concatenate(cols), np.concatenate(vals)
    sums = np.bincount(rows_a, weights=vals_a, minlength=n)
    return sp.csr_matrix((vals_a / sums[rows_a], (rows_a, cols_a)), shape=(n, n))


def fill_from_strokes(y: np.ndarray, chroma: np.ndarray, painted: np.ndarray) -> np.ndarray:
    """Levin-Lischinski-Weiss fill of ``chroma`` (h, w, C) from the ``painted`` pixels (h, w) bool, guided by
    the luma ``y`` (h, w, Y' in [0, 1]). Painted pixels keep their values; returns float32 (h, w, C).

    >>> cbcr = fill_from_strokes(y_small, stroke_cbcr, alpha_small > 0.2)
    """
    h, w, c = chroma.shape
    if not painted.any():
        raise ValueError("fill_from_strokes: no painted pixel")
    flat = chroma.reshape(-1, c).astype(np.float64)
    fixed = painted.ravel()
    free = ~fixed
    if not free.any():
        return chroma.astype(np.float32)
    a = sp.identity(h * w, format="csr") - levin_weights(y)
    # rows of the free pixels: A_ff U_f = -A_fc U_c (the painted values moved to the right-hand side)
    a_free = a[free]
    a_ff = a_free[:, free].tocsc()
    rhs = -(a_free[:, fixed] @ flat[fixed])
    solved = splu(a_ff).solve(np.ascontiguousarray(rhs))
    out = flat.copy()
    out[free] = solved
    return out.reshape(h, w, c).astype(np.float32)
