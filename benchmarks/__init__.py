"""The benchmark of django-pg-real-pool against the pools it replaces and its 1.1.0 release.

``python -m benchmarks`` (``make bench``) starts its own PostgreSQL server through the pytest
plugin's server layer and runs every contender side by side, each in worker processes
(``worker.py``, which imports only the standard library and Django, so that it also runs in
1.1.0's virtual environment). ``python -m benchmarks.sharing`` (``make demo``) is the short
demonstration; ``benchmarks.checkout_stats`` and ``benchmarks.server_start`` also run alone.
"""
