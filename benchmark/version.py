"""The harness's version: one leaf module that every layer may read (runs are tagged with it)."""
__version__ = "0.2.0"
