"""Once-for-all search-space families, the architecture encoding, and training schedules."""

from __future__ import annotations

from supernets.arch import Arch, BlockArch, StageArch

__all__ = ["Arch", "BlockArch", "StageArch"]
