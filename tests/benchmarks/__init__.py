"""Benchmarks: each compares envguard with the plain tool in the same run and writes JSON.

Run them with ``nox -s bench`` (or ``python -m tests.benchmarks [NAME ...]``). They are not timed
tests: nothing here fails on a slow machine; the JSON and docs/benchmarks.md report the figures
and the goals beside them.
"""
