"""Kubernetes quantities from Azure's units (pure)."""

from __future__ import annotations

from decimal import Decimal


def cpu_quantity(cores: float) -> str:
    """0.5 -> "500m", 2 -> "2"; millicores, rounded up so a tiny ask is never 0."""
    milli = int((Decimal(str(cores)) * 1000).to_integral_value(rounding="ROUND_CEILING"))
    milli = max(milli, 1)
    return f"{milli // 1000}" if milli % 1000 == 0 else f"{milli}m"


def memory_quantity(gb: float) -> str:
    """GB as Azure meant it (GiB-sized steps): 1.5 -> "1536Mi", 1 -> "1Gi"."""
    mi = int((Decimal(str(gb)) * 1024).to_integral_value(rounding="ROUND_CEILING"))
    mi = max(mi, 1)
    return f"{mi // 1024}Gi" if mi % 1024 == 0 else f"{mi}Mi"
