"""Per-engine pieces of ``datasafe refresh``: a temporary database, post-restore SQL, the swap."""

from __future__ import annotations

from datasafe.refresh.base import NEW_MARK, OLD_MARK, SWAPPERS, Swapper, swapper_for

__all__ = ["NEW_MARK", "OLD_MARK", "SWAPPERS", "Swapper", "swapper_for"]
