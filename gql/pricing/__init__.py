"""Packages, their prices, and per-client price adjustments."""
