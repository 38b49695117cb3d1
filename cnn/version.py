"""The version of cnn (read by setup through pyproject.toml, printed by ``cnn --version``)."""
__version__ = "0.1.0"
