"""Kernel modules compiled for the baseline instruction-set level (see cnn/_ext/__init__.py)."""
