"""Recovery of foreground that Cellpose's flow dynamics leave unassigned (host rings)."""

from __future__ import annotations

import numpy as np
import pytest

from livescreen.segment import SegmentationError
from livescreen.segment.postprocess import recover_unassigned


def _disk(shape, cy, cx, r):
    yy, xx = np.mgrid[0:shape[0], 0:shape[1]]
    return np.hypot(yy - cy, xx - cx) <= r


def test_host_ring_around_kept_inner_cell_is_recovered():
    """A host ring that is foreground but unassigned becomes one object; nothing else changes."""
    shape = (80, 80)
    host, inner = _disk(shape, 40, 40, 18), _disk(shape, 40, 40, 9)
    other = _disk(shape, 10, 10, 6)
    masks = np.zeros(shape, np.uint32)
    masks[inner], masks[other] = 1, 2
    cellprob = np.full(shape, -5.0, np.float32)
    cellprob[host | other] = 5.0
    before = masks.copy()
    out = recover_unassigned(masks, cellprob, 0.0, 15)
    np.testing.assert_array_equal(masks, before)  # input not modified
    assert out.dtype == masks.dtype
    assert set(np.unique(out)) == {0, 1, 2, 3}
    ring = host & ~inner
    np.testing.assert_array_equal(out == 3, ring)  # the whole ring, grown back after the opening
    np.testing.assert_array_equal(out[masks > 0], masks[masks > 0])


def test_thin_halos_and_small_regions_stay_background():
    """A 1-px halo around a kept mask (does not survive the opening) and specks are dropped."""
    shape = (60, 60)
    cell = _disk(shape, 30, 30, 10)
    halo = _disk(shape, 30, 30, 11) & ~cell
    speck = _disk(shape, 5, 50, 1.5)
    masks = cell.astype(np.int32)
    cellprob = np.full(shape, -3.0, np.float32)
    cellprob[cell | halo | speck] = 2.0
    out = recover_unassigned(masks, cellprob, 0.0, 15)
    np.testing.assert_array_equal(out, masks)
    # the same speck is kept when the size floor allows it, and the threshold matters
    big = _disk(shape, 5, 50, 4)
    cellprob[big] = 2.0
    assert recover_unassigned(masks, cellprob, 0.0, 15).max() == 2
    assert recover_unassigned(masks, cellprob, 2.5, 15).max() == 1


def test_recover_unassigned_rejects_mismatched_shapes():
    with pytest.raises(SegmentationError, match="same shape"):
        recover_unassigned(np.zeros((4, 4), int), np.zeros((4, 5)))
