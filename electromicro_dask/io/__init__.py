"""Lazy readers of microscopy data into DataArrays, and ingestion into the store."""

__all__ = []
