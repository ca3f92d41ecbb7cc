"""The newest migration revision, which every upgraded database must report."""

HEAD_REVISION = "0004_schedule_samplers"
