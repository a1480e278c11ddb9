"""livescreen: analysis library behind the livescreen Snakemake workflow.

Modules
-------
study
    Sample sheet and config checks that a JSON schema cannot express.
imageio
    Reading raw time-lapses read-only and writing label stacks / OME-TIFFs.
tables
    Table contracts (pandera) and Parquet writing with provenance metadata.
logs
    Logging set-up shared by the workflow scripts.
simulate
    Simulated co-culture time-lapses with ground truth.
"""

__version__ = "0.1.0"
