"""Writes to the customer database, one module per subject."""
