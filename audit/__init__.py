"""The bad-input audit of issue 16: every surface's malformed inputs, run as a user would.

Run `python -m audit` from the repository root (see audit/README.md).
"""
