"""Checks a public bundle with public files only: no data, no weights, no proving key."""
