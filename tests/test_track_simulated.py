"""Tracking accuracy against the simulator's ground truth (issue target: TRA >= 0.95)."""

from __future__ import annotations

import sys

import pytest

from conftest import REPO

sys.path.insert(0, str(REPO / "bench"))
from track_accuracy import simulated_sites, site_accuracy  # noqa: E402


@pytest.fixture(scope="module")
def demo_sites():
    """Two demo-sized simulated sites (control and 0.1 uM inhibitor)."""
    sites = list(simulated_sites(str(REPO / "config" / "config.yaml"), 4))
    return [sites[0], sites[3]]


@pytest.mark.parametrize("population", ["target", "effector"])
def test_tracking_accuracy_on_simulated_sites(demo_sites, population):
    for row, site, cfg in demo_sites:
        scores = site_accuracy(site, row, cfg["imaging"], population)
        assert scores["TRA"] >= 0.95, scores
        assert scores["link_recall"] >= 0.85 and scores["link_precision"] >= 0.85, scores


def test_divisions_recovered_on_simulated_sites(demo_sites):
    found = total = 0
    for row, site, cfg in demo_sites:
        scores = site_accuracy(site, row, cfg["imaging"], "target")
        found += scores["division_recall"] * scores["n_divisions_true"]
        total += scores["n_divisions_true"]
    assert total >= 3
    assert found / total >= 0.6
