"""Kernel modules compiled for the avx512 instruction-set level (see cnn/_ext/__init__.py)."""
