"""envguard's DVC integration (extra ``dvc``): remotes mapped to environments, lineage from
``.dvc`` files and ``dvc.lock``, guards on reads and writes across environments.

This module stays light: DVC is imported only inside the functions that use it.
"""
