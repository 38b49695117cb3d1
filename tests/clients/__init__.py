"""Training scripts written as well-known public PyTorch examples are written; the tests run each
under PyTorch and, after changing only its import lines, under cnn (tests/test_clients.py)."""
