"""The suite: the YAML file validated into a Suite (every error naming file:line), its cases,
and the manifest that pins everything a result depends on."""

from .load import load_suite
from .schema import Suite

__all__ = ["Suite", "load_suite"]
