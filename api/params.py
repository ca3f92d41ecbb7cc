"""Bounded path parameters: ids too long or too large are a 422, never a database error."""

from __future__ import annotations

from typing import Annotated

from fastapi import Path

MAX_ID = 2**63 - 1  # the largest integer every database column here holds

JobId = Annotated[str, Path(min_length=1, max_length=64, description="a job id")]
ArtifactId = Annotated[str, Path(min_length=1, max_length=64, description="an artifact id")]
SubnetId = Annotated[int, Path(ge=0, le=MAX_ID, description="a subnet id from the job's subnets")]
