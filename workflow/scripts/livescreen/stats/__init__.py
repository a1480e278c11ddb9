"""Statistics of a screen.

Tables over sites, per-well fractions, per-condition estimates, comparisons
with the control, dose-response fits and plate QC.

The well is the unit of replication (docs/statistics.md). Every function is
pure: inputs are never modified, outputs are new DataFrames.
"""

from livescreen.stats.aggregate import (
           combine_sites,
           effectors_from_encounters,
           follow_up,
           qc_tables,
)
from livescreen.stats.dose import dose_response
from livescreen.stats.estimates import (
           comparisons,
           condition_summary,
           logrank_vs_control,
           survival_data,
)
from livescreen.stats.qc import plate_qc
from livescreen.stats.wells import FRACTIONS, METRICS, well_summary

__all__ = ["FRACTIONS", "METRICS", "combine_sites", "comparisons", "condition_summary",
           "dose_response", "effectors_from_encounters", "follow_up", "logrank_vs_control",
           "plate_qc", "qc_tables", "survival_data", "well_summary"]
