"""``envguard demo``: envguard's whole job, end to end, in a throw-away workspace.

Every step runs the command a user would type, as a separate process, prints it, and checks
that envguard decided what the story expects; the demo exits 1 if any decision differs.
"""

from __future__ import annotations

from envguard.demo.story import run_demo

__all__ = ["run_demo"]
