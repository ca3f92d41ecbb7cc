"""The newest migration revision, which every upgraded database must report."""

HEAD_REVISION = "0005_initial_sample"
