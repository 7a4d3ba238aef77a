"""Printers: Unicode matrix notation and index notation."""
