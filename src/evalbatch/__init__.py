"""evalbatch: run LLM evaluation suites batch-first, at half the price, with nothing lost."""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
