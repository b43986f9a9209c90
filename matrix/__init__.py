"""The compatibility matrix: axes and rules (axes.toml), the cells and selections derived from
them, the tox environments (toxfile.py at the repository root), the per-cell step runner
(cell.py) and the report (report/).

Run ``python -m matrix --help`` from the repository root.
"""
