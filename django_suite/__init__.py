"""Django's own database tests as part of ours: ``python -m django_suite --engine NAME``.

Runs the ``backends``, ``transactions``, ``basic`` and ``queries`` packages of the installed
Django version's test suite (downloaded once from its source distribution) against a throwaway
PostgreSQL server, with ``default`` and ``other`` on one engine, and compares every test's
outcome with ``expected_failures.toml``.

The command line and its exit codes are a contract (the matrix report relies on them):

* 0: every failure is listed, and every listed test that ran failed;
* 1: an unlisted failure, or a listed test that passed or was skipped;
* 2: a usage error (an unknown engine, an engine the Django version lacks, a bad list file);
* 3: the suite could not run (download, server, runtests.py crashed without results);
* 130: interrupted (Ctrl-C, SIGTERM).

Not shipped in the wheel: it lives at the repository root, beside ``src/``.
"""
