"""Kernel modules compiled for the avx2 instruction-set level (see cnn/_ext/__init__.py)."""
