"""Post-processing of Cellpose masks: unassigned rings, ring arcs, split rings, edge pieces."""

from __future__ import annotations

import numpy as np
import pytest

from livescreen.segment import SegmentationError
from livescreen.segment.postprocess import (
    attach_ring_arcs,
    join_split_rings,
    recover_unassigned,
    remove_small_objects,
)


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


def _split_ring_frame(shape=(100, 120), gap=1):
    """Inner cell (1) inside a host ring cut into two crescents (2, 3); two touching
    ordinary cells (4, 5); a cell (6) squeezed between two large neighbours (7, 8)."""
    yy, xx = np.mgrid[0:shape[0], 0:shape[1]]
    masks = np.zeros(shape, np.int32)
    inner = _disk(shape, 30, 30, 9)
    ring = _disk(shape, 30, 30, 17) & ~_disk(shape, 30, 30, 9 + gap)
    masks[ring & (xx < 30)] = 2
    masks[ring & (xx >= 30)] = 3
    masks[inner] = 1
    masks[_disk(shape, 80, 20, 10)] = 4
    masks[_disk(shape, 80, 39, 10) & (masks == 0)] = 5
    masks[_disk(shape, 30, 75, 14)] = 7
    masks[_disk(shape, 30, 104, 14) & (masks == 0)] = 8
    masks[_disk(shape, 30, 89, 4) & (masks == 0)] = 6
    return masks


@pytest.mark.parametrize("gap", [0, 1])
def test_split_host_ring_is_joined_and_nothing_else(gap):
    masks = _split_ring_frame(gap=gap)
    before = masks.copy()
    out = join_split_rings(masks, gap_px=2.0)
    np.testing.assert_array_equal(masks, before)  # input not modified
    assert out.dtype == masks.dtype
    assert out.max() == masks.max() - 1  # one object fewer, ids without gaps
    assert set(np.unique(out)) == set(range(out.max() + 1))
    # the two crescents are one object now, everything else keeps its extent
    assert len(np.unique(out[(masks == 2) | (masks == 3)])) == 1
    for lab in (1, 4, 5, 6, 7, 8):
        ids = np.unique(out[masks == lab])
        assert len(ids) == 1 and ids[0] > 0
        np.testing.assert_array_equal(out == ids[0], masks == lab)


def test_ring_pieces_far_from_the_inner_cell_are_not_joined():
    """Crescents separated from the inner cell by more than the gap do not wrap it."""
    masks = _split_ring_frame(gap=4)
    np.testing.assert_array_equal(join_split_rings(masks, gap_px=2.0), masks)


def test_partly_enclosed_cell_is_not_a_split_ring():
    """One crescent alone (half a ring) leaves the cell open to the background."""
    masks = _split_ring_frame()
    masks[masks == 3] = 0
    np.testing.assert_array_equal(join_split_rings(masks, gap_px=2.0), masks)


def test_join_split_rings_rejects_bad_arguments():
    with pytest.raises(SegmentationError, match="2D"):
        join_split_rings(np.zeros((2, 4, 4), int))
    with pytest.raises(SegmentationError, match="fraction"):
        join_split_rings(np.zeros((4, 4), int), enclosed_fraction=1.5)


def _crescent_frame(shape=(80, 80)):
    """Inner cell (1) in a 3-px host ring; the ring's left half is object 2, its right
    half unassigned foreground; a lone cell (3) with an unassigned 2-px halo."""
    yy, xx = np.mgrid[0:shape[0], 0:shape[1]]
    inner = _disk(shape, 40, 30, 9)
    ring = _disk(shape, 40, 30, 12) & ~inner
    lone = _disk(shape, 40, 64, 7)
    halo = _disk(shape, 40, 64, 9) & ~lone
    masks = np.zeros(shape, np.int32)
    masks[inner], masks[ring & (xx < 30)], masks[lone] = 1, 2, 3
    cellprob = np.full(shape, -6.0, np.float32)
    cellprob[inner | ring | lone | halo] = 4.0
    return masks, cellprob, ring, halo


def test_unassigned_arc_of_a_host_ring_joins_its_crescent():
    """The unassigned half ring goes to the crescent wrapping the same inner cell; a halo
    around a lone cell (no other object wraps it) stays background; no new objects."""
    masks, cellprob, ring, halo = _crescent_frame()
    before = masks.copy()
    out = attach_ring_arcs(masks, cellprob, 0.0)
    np.testing.assert_array_equal(masks, before)
    np.testing.assert_array_equal(out == 2, ring)
    assert not out[halo].any()
    assert set(np.unique(out)) == {0, 1, 2, 3}
    np.testing.assert_array_equal(out[before > 0], before[before > 0])
    # above the arcs' cell probability nothing is foreground: nothing changes
    np.testing.assert_array_equal(attach_ring_arcs(masks, cellprob, 5.0), masks)


def test_arc_next_to_a_neighbour_that_does_not_wrap_stays_background():
    """Two ordinary touching cells and a sliver of foreground hugging one of them: the
    neighbour shares a flat interface (does not wrap), so the sliver is not given to it."""
    shape = (60, 80)
    a, b = _disk(shape, 30, 28, 10), _disk(shape, 30, 48, 10) & ~_disk(shape, 30, 28, 10)
    sliver = _disk(shape, 30, 28, 12) & ~_disk(shape, 30, 28, 10) & ~b
    masks = np.zeros(shape, np.int32)
    masks[a], masks[b] = 1, 2
    cellprob = np.full(shape, -6.0, np.float32)
    cellprob[a | b | sliver] = 3.0
    np.testing.assert_array_equal(attach_ring_arcs(masks, cellprob, 0.0), masks)


def test_attach_ring_arcs_rejects_bad_arguments():
    with pytest.raises(SegmentationError, match="same shape"):
        attach_ring_arcs(np.zeros((4, 4), int), np.zeros((4, 5)))
    with pytest.raises(SegmentationError, match="wrap_fraction"):
        attach_ring_arcs(np.zeros((4, 4), int), np.zeros((4, 4)), wrap_fraction=0)


def test_small_objects_removed_except_edge_pieces():
    """Interior objects below the minimum go; an equally small piece cut by the image edge
    stays down to the edge minimum; ids stay 1..n."""
    shape = (50, 50)
    masks = np.zeros(shape, np.uint16)
    masks[20:30, 20:30] = 5           # 100 px, interior: kept
    masks[5:9, 5:9] = 7               # 16 px, interior: removed
    masks[0:4, 30:34] = 9             # 16 px at the top edge: kept
    masks[46:50, 0:2] = 11            # 8 px at the corner: below the edge minimum
    before = masks.copy()
    out = remove_small_objects(masks, 20, 12)
    np.testing.assert_array_equal(masks, before)
    assert out.dtype == masks.dtype
    assert sorted(np.unique(out)) == [0, 1, 2]
    assert (out[20:30, 20:30] > 0).all() and (out[0:4, 30:34] > 0).all()
    assert not out[5:9, 5:9].any() and not out[46:50, 0:2].any()
    # without a smaller edge minimum the edge piece goes too
    assert np.count_nonzero(np.unique(remove_small_objects(masks, 20, 20))) == 1


def test_unassigned_foreground_cut_by_the_image_edge_is_recovered():
    """A shallow piece of foreground at the edge (gone after the opening) becomes an
    object with ``min_edge_size_px``; the same piece inside the frame does not."""
    shape = (60, 60)
    masks = np.zeros(shape, np.int32)
    cellprob = np.full(shape, -4.0, np.float32)
    cellprob[0:2, 20:32] = 3.0        # 24 px, 2 px deep, at the top edge
    cellprob[30:32, 20:32] = 3.0      # the same shape inside the frame
    assert recover_unassigned(masks, cellprob, 0.0, 47).max() == 0
    out = recover_unassigned(masks, cellprob, 0.0, 47, min_edge_size_px=15)
    assert out.max() == 1
    np.testing.assert_array_equal(out == 1, (cellprob > 0) & (np.arange(60)[:, None] < 2))
    assert recover_unassigned(masks, cellprob, 0.0, 47, min_edge_size_px=30).max() == 0
