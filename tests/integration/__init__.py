"""Integration tests: real servers and subprocesses."""
