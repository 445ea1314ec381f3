"""The catalog of exportable products."""
