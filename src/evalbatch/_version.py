"""The package version, on the ground floor so that the manifest can pin it without importing
the package's public API."""

__version__ = "0.1.0"
