"""Bounded path parameters: ids too long or too large are a 422, never a database error."""

from __future__ import annotations

from typing import Annotated

from fastapi import Path

# Row ids are 32-bit integer columns (PostgreSQL's INTEGER): a larger id cannot exist, and
# PostgreSQL refuses to compare the column with one (a server error, were it let through).
MAX_ID = 2**31 - 1
MAX_OFFSET = 2**63 - 1  # OFFSET takes a 64-bit integer

JobId = Annotated[str, Path(min_length=1, max_length=64, description="a job id")]
ArtifactId = Annotated[str, Path(min_length=1, max_length=64, description="an artifact id")]
SubnetId = Annotated[int, Path(ge=0, le=MAX_ID, description="a subnet id from the job's subnets")]
