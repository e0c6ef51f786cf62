"""Drawing an ``audit lineage`` answer: an indented tree for people, Graphviz DOT for tools.

The tree starts at the entity asked about and follows its upstream edges (what it came from), then
its downstream edges, then the approvals, promotions, steps and storage objects. A node reached a
second time (the graph is a DAG, not a tree) is printed once and then named with ``(above)``.
Verdicts are coloured (green holds, red does not); click drops the colours when the output is not
a terminal.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterator
from typing import Any

import click

__all__ = ["render_dot", "render_tree"]

Style = Callable[[str, str], str]
Item = tuple[str, list[Any]]
EVALUATED = "evaluated-by"

_UP_VERBS = {
    "used-by": "used",
    "logged": "logged by",
    "registered": "registered from",
    "masked": "masked from",
    "derived": "derived from",
    "same-content": "same content as",
    "part-of": "has part",
    EVALUATED: "evaluates",
}
_DOWN_VERBS = {
    "used-by": "used by",
    "logged": "logged",
    "registered": "registered as",
    "masked": "masked into",
    "derived": "derives",
    "same-content": "same content as",
    "part-of": "part of",
    EVALUATED: "evaluated by",
}


def _short(entity: str) -> str:
    if entity.startswith("sha256:"):
        return entity[:19] + "…"
    if entity.startswith("run:") and len(entity) > 16:
        return entity[:16] + "…"
    if entity.startswith("dvc-stage:"):
        repo_stage = entity[len("dvc-stage:") :]
        return "dvc-stage:" + repo_stage.rsplit(":", 1)[-1]
    return entity


def _styler(color: bool) -> Style:
    colours = {"ok": "green", "bad": "red", "warn": "yellow", "dim": "bright_black"}

    def style(text: str, verdict: str) -> str:
        if not color or verdict not in colours:
            return text
        return click.style(text, fg=colours[verdict], bold=verdict == "bad")

    return style


class _Tree:
    def __init__(self, answer: dict[str, Any], style: Style) -> None:
        self.answer = answer
        self.style = style
        self.into: dict[str, list[dict[str, Any]]] = defaultdict(list)
        self.out: dict[str, list[dict[str, Any]]] = defaultdict(list)
        seen: set[tuple[str, str, str]] = set()
        for edge in answer["edges"]:
            key = (edge["src"], edge["dst"], edge["relation"])
            if key not in seen:
                seen.add(key)
                self.into[edge["dst"]].append(edge)
                self.out[edge["src"]].append(edge)
        self.runs = {r["entity"]: r for r in answer["runs"]}
        self.data = {d["entity"]: d for d in answer["datasets"]}
        self.versions = {m["entity"]: m for m in answer["model_versions"]}

    def note(self, entity: str) -> str:
        s = self.style
        if entity in self.versions:
            created = self.versions[entity]["created"]
            return f"created by {created['actor']} {created['time']}" if created else ""
        if entity in self.runs:
            run = self.runs[entity]
            parts = [
                f"env {run['environment'] or '?'}" + (f" ({run['tier']})" if run["tier"] else ""),
                f"user {run['user'] or '?'}",
                f"code {run['code_version'][:12]}" if run["code_version"] else "code ?",
            ]
            return " · ".join(parts)
        if entity in self.data:
            item = self.data[entity]
            parts = []
            if item["origin"]:
                verdict = "bad" if item["origin_tier"] == "prod" else "ok"
                parts.append(s(f"origin {item['origin']}", verdict))
            prod = item["production_lineage"]
            if prod and prod != item["origin"]:
                parts.append(s(f"production lineage from {prod}", "bad"))
            for m in item["masking"]:
                if "verifies" not in m:
                    parts.append(f"masked ({_short(m['proof'])})")
                elif m["verifies"]:
                    who = f" signed by {m['signer']}" if m["signer"] else ""
                    parts.append(s(f"masking proof {_short(m['proof'])}{who}: verifies", "ok"))
                else:
                    problems = "; ".join(m["problems"])
                    parts.append(s(f"masking proof {_short(m['proof'])} FAILS: {problems}", "bad"))
            return " · ".join(parts)
        return ""

    def walk(self, entity: str, upstream: bool, seen: set[str]) -> Iterator[tuple[str, list[Any]]]:
        edges = self.into.get(entity, []) if upstream else self.out.get(entity, [])
        for edge in edges:
            other = edge["src"] if upstream else edge["dst"]
            verbs = _UP_VERBS if upstream else _DOWN_VERBS
            verb = verbs.get(edge["relation"], edge["relation"])
            if other in seen:
                yield f"{verb} {_short(other)} (above)", []
                continue
            seen.add(other)
            note = self.note(other)
            text = f"{verb} {_short(other)}" + (f"  {note}" if note else "")
            yield text, list(self.walk(other, upstream, seen))


def _draw(items: list[tuple[str, list[Any]]], prefix: str = "") -> Iterator[str]:
    for index, (text, children) in enumerate(items):
        last = index == len(items) - 1
        yield f"{prefix}{'└── ' if last else '├── '}{text}"
        yield from _draw(children, prefix + ("    " if last else "│   "))


def render_tree(answer: dict[str, Any], color: bool = False) -> str:
    """The answer as an indented tree with box-drawing characters."""
    style = _styler(color)
    tree = _Tree(answer, style)
    entity = answer["entity"]
    note = tree.note(entity)
    lines = [f"{entity}  [{answer['type']}]" + (f"  {note}" if note else "")]
    sections: list[tuple[str, list[Any]]] = []
    for mv in answer["model_versions"]:
        direct = {e["src"] for e in tree.into.get(mv["entity"], [])}
        if mv["entity"] == entity:
            sections.extend(
                (f"produced by {_short(run)} (named by its approvals' binding)", [])
                for run in mv["produced_by"]
                if run not in direct
            )
    up = list(tree.walk(entity, True, {entity}))
    down = list(tree.walk(entity, False, {entity}))
    sections.append((f"upstream ({len(up)})" if up else "upstream: none recorded", up))
    sections.append((f"downstream ({len(down)})" if down else "downstream: none recorded", down))
    runs: list[Item] = [
        (
            f"{_short(r['entity'])} [{', '.join(r['roles'])}]  {tree.note(r['entity'])}",
            [(f"inputs: {', '.join(_short(x) for x in r['inputs'])}", [])] if r["inputs"] else [],
        )
        for r in answer["runs"]
    ]
    if runs:
        sections.append((f"runs ({len(runs)})", runs))
    approvals: list[Item] = []
    for a in answer["approvals"]:
        verdict = "bad" if a["revoked"] or not a["valid"] else "ok"
        state = "revoked" if a["revoked"] else "granted" if a["valid"] else "INVALID"
        text = style(f"{state}", verdict) + (
            f" {a['id']} by {a['approver']} → {a['target_env']} at {a['time']}"
            f" for {a['model_version']}"
        )
        if a["comment"]:
            text += f': "{a["comment"]}"'
        approvals.append((text, [(p, []) for p in a["problems"]]))
    sections.append(
        (f"approvals ({len(approvals)})" if approvals else "approvals: none", approvals)
    )
    promotions: list[Item] = []
    for p in answer["promotions"]:
        verdict = "ok" if p["allowed"] else "bad"
        text = style(p["outcome"].upper(), verdict) + (
            f" {p['model_version']} → {p['target_env']} ({p['move']})"
            f" by {p['actor']} at {p['time']}"
        )
        reasons: list[Item] = [
            (f"{r['rule']}: {r['message']} (fix: {r['remedy']})", []) for r in p["reasons"]
        ]
        promotions.append((text, reasons))
    sections.append(
        (f"promotions ({len(promotions)})" if promotions else "promotions: none", promotions)
    )
    steps: list[Item] = [
        (
            f"{s['kind']} {s['name'] or _short(s['entity'])} by {s['actor']} at {s['time']}"
            + (f": {s['cmd']}" if s["cmd"] else ""),
            [
                (f"in: {', '.join(_short(x) for x in s['inputs'])}", []),
                (f"out: {', '.join(_short(x) for x in s['outputs'])}", []),
            ],
        )
        for s in answer["steps"]
    ]
    if steps:
        sections.append((f"steps ({len(steps)})", steps))
    objects: list[Item] = [
        (
            f"{o['entity']} in {o['environment'] or '?'}"
            + (f" · origin {o['origin']}" if o["origin"] else ""),
            [],
        )
        for o in answer["objects"]
    ]
    if objects:
        sections.append((f"storage objects ({len(objects)})", objects))
    lines.extend(_draw(sections))
    return "\n".join(lines)


def _dot_id(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def render_dot(answer: dict[str, Any]) -> str:
    """The answer's graph in Graphviz DOT: production lineage red, masking edges dashed."""
    data = {d["entity"]: d for d in answer["datasets"]}
    runs = {r["entity"]: r for r in answer["runs"]}
    shapes = {
        "model-version": "box3d",
        "run": "box",
        "dataset": "note",
        "content": "note",
        "step": "component",
    }
    from envguard.lineage.provenance import entity_type

    nodes: dict[str, None] = {answer["entity"]: None}
    for edge in answer["edges"]:
        nodes.setdefault(edge["src"])
        nodes.setdefault(edge["dst"])
    for mv in answer["model_versions"]:
        for run in mv["produced_by"]:
            nodes.setdefault(run)
    lines = ["digraph lineage {", "  rankdir=LR;", '  node [fontname="Helvetica", fontsize=10];']
    for node in nodes:
        attrs = [
            f"label={_dot_id(_short(node))}",
            f"shape={shapes.get(entity_type(node), 'ellipse')}",
        ]
        item = data.get(node)
        if item and item["production_lineage"]:
            attrs.append('color="red"')
        if node in runs and runs[node]["environment"]:
            attrs.append(f"tooltip={_dot_id('env ' + runs[node]['environment'])}")
        if node == answer["entity"]:
            attrs.append("penwidth=2")
        lines.append(f"  {_dot_id(node)} [{', '.join(attrs)}];")
    seen: set[tuple[str, str, str]] = set()
    for edge in answer["edges"]:
        key = (edge["src"], edge["dst"], edge["relation"])
        if key in seen:
            continue
        seen.add(key)
        style = ", style=dashed" if edge["relation"] == "masked" else ""
        lines.append(
            f"  {_dot_id(edge['src'])} -> {_dot_id(edge['dst'])} "
            f"[label={_dot_id(edge['relation'])}{style}];"
        )
    lines.append("}")
    return "\n".join(lines)
