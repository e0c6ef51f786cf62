"""The auditor's evidence report for CSA AICM I&S-05: gathered from the policy and the lineage
log (:mod:`envguard.report.evidence`), rendered as one self-contained HTML file
(:mod:`envguard.report.html`) with an inline SVG lineage graph (:mod:`envguard.report.svg`)."""

from __future__ import annotations

from envguard.report.evidence import gather
from envguard.report.html import render_html

__all__ = ["gather", "render_html"]
