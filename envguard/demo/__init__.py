"""``envguard demo``: envguard's whole job, end to end, in a throw-away workspace.

The demo builds a workspace (policy, git + DVC repository with a production and a development
remote, its own ``mlflow server --app-name envguard``) and plays the story of :mod:`.acts`. Every
step runs the command a user would type in a process of its own (:mod:`.processes`), prints it
and its output, and checks that envguard decided what the story expects; the demo exits 1 if any
decision differs.
"""

from __future__ import annotations

from envguard.demo.story import run_demo

__all__ = ["run_demo"]
