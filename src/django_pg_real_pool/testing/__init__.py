"""Test-suite helpers: throwaway PostgreSQL servers and the pytest plugin."""
