"""The I&S-05 evidence report as one self-contained HTML file (no script, no network)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from html import escape
from typing import Any

from envguard.report.svg import lineage_svg

__all__ = ["render_html"]

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem auto;
max-width:72rem;color:#0f172a;line-height:1.45;padding:0 1rem}
h1{font-size:1.6rem;margin-bottom:.2rem}h2{margin-top:2.2rem;border-bottom:2px solid #e2e8f0;
padding-bottom:.3rem}h3{margin-top:1.4rem}
table{border-collapse:collapse;width:100%;margin:.6rem 0;font-size:.9rem}
th,td{border:1px solid #e2e8f0;padding:.35rem .5rem;text-align:left;vertical-align:top}
th{background:#f8fafc}code{font-size:.85em;background:#f1f5f9;padding:0 .2em;border-radius:3px}
.muted{color:#64748b}.answer{font-size:1.3rem;font-weight:700;padding:.6rem 1rem;
border-radius:6px;display:inline-block}.Yes{background:#dcfce7}.Partially{background:#fef9c3}
.No{background:#fecaca}.deny{color:#b91c1c;font-weight:600}.allow{color:#15803d}
.warn,.record{color:#a16207;font-weight:600}.graph{overflow-x:auto;border:1px solid #e2e8f0;
padding:.5rem}nav a{margin-right:.8rem}
"""


def _table(headers: Sequence[str], rows: Iterable[Sequence[Any]], empty: str) -> str:
    body = "".join("<tr>" + "".join(f"<td>{cell}</td>" for cell in row) + "</tr>" for row in rows)
    if not body:
        return f'<p class="muted">{escape(empty)}</p>'
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _code(value: Any) -> str:
    return f"<code>{escape(str(value))}</code>"


def _outcome(value: str | None) -> str:
    text = escape(value or "")
    return f'<span class="{text}">{text.upper()}</span>'


def _sections(e: dict[str, Any]) -> dict[str, str]:
    uses = e["data_uses"]
    counts = ", ".join(f"{k}: {v}" for k, v in sorted(uses["counts"].items())) or "none"
    ver = e["verification"]
    return {
        "mode": f"<p>Mode: {_code(e['mode'])} (enforce blocks; warn and audit only record).</p>",
        "environments": _table(
            ["environment", "tier", "locations", "description"],
            (
                [
                    _code(env["name"]),
                    escape(env["tier"]),
                    "<br>".join(
                        f"{escape(k)}: {', '.join(_code(x) for x in v)}"
                        for k, v in env["locations"].items()
                    )
                    or "—",
                    escape(env["description"]),
                ]
                for env in e["environments"]
            ),
            "No environments declared.",
        ),
        "roles": _table(
            ["identity", "roles"],
            ([_code(r["identity"]), ", ".join(escape(x) for x in r["roles"])] for r in e["roles"]),
            "No roles declared in the policy.",
        ),
        "plugins": _table(
            ["plugin", "status", "note"],
            ([_code(p["name"]), escape(p["status"]), escape(p["reason"])] for p in e["plugins"]),
            "No plugins installed.",
        ),
        "promotion_rules": _table(
            [
                "target",
                "approvals",
                "approver roles",
                "separation of duties",
                "sources",
                "lineage",
                "evaluation in",
            ],
            (
                [
                    _code(name),
                    r["approvals"],
                    escape(", ".join(r["approver_roles"]) or "any"),
                    "yes" if r["separation_of_duties"] else "no",
                    escape(", ".join(r["allowed_sources"]) or "any"),
                    escape(r["lineage"]),
                    escape(r["require_evaluation_in"] or "—"),
                ]
                for name, r in e["promotion_rules"].items()
            ),
            "No promotion rules: only the default lineage check applies.",
        ),
        "data_uses": f"<p>Decisions on data use: {escape(counts)}.</p>"
        + _table(
            ["event", "time", "actor", "environment", "data", "verdict", "rules", "origin"],
            (
                [
                    d["seq"],
                    escape(d["time"]),
                    escape(d["actor"]),
                    escape(d["environment"]),
                    _code(d["subject"]),
                    _outcome(d["outcome"]),
                    escape(", ".join(d["rules"])),
                    escape(d["origin"] or "—"),
                ]
                for d in uses["items"]
            ),
            "No data use has been recorded yet.",
        ),
        "masking_proofs": _table(
            ["event", "time", "signer", "entities"],
            (
                [
                    p["seq"],
                    escape(p["time"]),
                    escape(p["actor"]),
                    "<br>".join(_code(x) for x in p["entities"]),
                ]
                for p in e["masking_proofs"]
            ),
            "No masking proof has been recorded yet.",
        ),
        "promotions": _table(
            ["event", "time", "actor", "model version", "target", "verdict", "rules"],
            (
                [
                    p["seq"],
                    escape(p["time"]),
                    escape(p["actor"]),
                    _code(p["subject"]),
                    escape(p["environment"]),
                    _outcome(p["outcome"]),
                    escape(", ".join(p["rules"])),
                ]
                for p in e["promotions"]
            ),
            "No promotion has been recorded yet.",
        ),
        "data_movements": _table(
            ["event", "time", "actor", "dataset", "from", "to", "verdict", "rules"],
            (
                [
                    m["seq"],
                    escape(m["time"]),
                    escape(m["actor"]),
                    _code(m["subject"] or ""),
                    escape(m["from"] or ""),
                    escape(m["to"] or ""),
                    _outcome(m["outcome"]),
                    escape(", ".join(r for r in m["rules"] if r)),
                ]
                for m in e["data_movements"]
            ),
            "No dataset has been moved between environments (envguard data promote).",
        ),
        "approvals": _table(
            ["event", "time", "kind", "approver", "entities", "comment"],
            (
                [
                    a["seq"],
                    escape(a["time"]),
                    escape(a["kind"]),
                    escape(a["actor"]),
                    "<br>".join(_code(x) for x in a["entities"]),
                    escape(a["comment"]),
                ]
                for a in e["approvals"]
            ),
            "No approval has been recorded yet.",
        ),
        "verification": (
            f"<p>Store {_code(ver['store'])}: {ver.get('events', 0)} events, "
            f"{ver.get('checkpoints', 0)} signed checkpoints, "
            f"{'<b>intact</b>' if ver.get('ok') else '<b class=deny>NOT intact</b>'}; "
            f"{ver['pending_spool']} event(s) waiting in the spool.</p>"
            + _table(
                ["event", "problem", "message"],
                (
                    [f["seq"], escape(f["problem"]), escape(f["message"])]
                    for f in ver.get("findings", [])
                ),
                "No finding: the chain verifies.",
            )
        ),
        "scan": (
            (
                f"<p>Last scan {escape(e['scan']['time'])}: "
                f"{e['scan']['summary'].get('findings', 0)} finding(s); swept "
                + escape(
                    ", ".join(f"{k}: {v}" for k, v in e["scan"]["summary"].get("swept", {}).items())
                    or "nothing"
                )
                + ".</p>"
                if e["scan"]["time"]
                else "<p>No scan has been recorded: run <code>envguard audit scan</code>.</p>"
            )
            + _table(
                ["id", "severity", "rule (guideline)", "entity", "evidence", "remedy"],
                (
                    [
                        _code(f["id"]),
                        escape(f["severity"]),
                        escape(f"{f['rule']} ({f['guideline']})"),
                        _code(f["entity"]),
                        escape(f["message"]),
                        escape(f["remedy"]),
                    ]
                    for f in e["scan"]["open"]
                ),
                "No open finding.",
            )
        ),
        "violations": _table(
            ["event", "time", "environment", "subject", "verdict", "rules"],
            (
                [
                    v["seq"],
                    escape(v["time"]),
                    escape(v["environment"]),
                    _code(v["subject"]),
                    _outcome(v["outcome"]),
                    escape(", ".join(v["rules"])),
                ]
                for v in e["violations"]
            ),
            "No violation has been recorded.",
        ),
        "alerts": (
            f"<p>Violations are logged: {'yes' if e['alerts']['log'] else 'no'}; "
            f"written to a file: {escape(e['alerts']['file'] or 'no')}; webhooks: "
            f"{sum(1 for w in e['alerts']['webhooks'] if w['enabled'])} enabled.</p>"
        ),
        "policy_history": _table(
            ["policy sha256", "first used", "last used", "events"],
            (
                [_code(h["sha256"]), escape(h["first"]), escape(h["last"]), h["events"]]
                for h in e["policy_history"]
            ),
            "No event recorded yet.",
        ),
    }


_TITLES = {
    "mode": "Mode",
    "environments": "Environments and their boundaries",
    "roles": "Roles",
    "plugins": "Integrations",
    "promotion_rules": "Promotion rules",
    "data_uses": "Data uses and their verdicts",
    "masking_proofs": "Masking proofs",
    "promotions": "Promotions",
    "data_movements": "Data moved between environments",
    "approvals": "Approvals",
    "verification": "Verification of the lineage log",
    "scan": "Last scan of the real systems (envguard audit scan)",
    "violations": "Violations",
    "alerts": "Alerting",
    "policy_history": "Policy history",
}


def render_html(evidence: dict[str, Any]) -> str:
    sections = _sections(evidence)
    caiq = evidence["caiq"]
    concerns = "".join(f"<li>{escape(c)}</li>" for c in caiq["concerns"])
    out = [
        "<!doctype html><html lang=en><head><meta charset=utf-8>",
        "<meta name=viewport content='width=device-width, initial-scale=1'>",
        "<title>envguard — I&amp;S-05 evidence report</title>",
        f"<style>{_CSS}</style></head><body>",
        "<h1>I&amp;S-05 evidence report</h1>",
        f"<p class=muted>CSA AI Controls Matrix, Infrastructure Security, control I&amp;S-05 "
        f"“Separate production and non-production environments” (ISO/IEC 27001:2022 A.8.31). "
        f"Generated {escape(evidence['generated'])} by envguard from policy "
        f"{_code(evidence['policy']['path'])} (sha256 {_code(evidence['policy']['sha256'])}).</p>",
        "<nav>"
        + "".join(f"<a href='#g{n}'>Guideline {n}</a>" for n in range(1, 8))
        + "<a href='#graph'>Lineage graph</a></nav>",
        f"<h2 id=caiq>AI-CAIQ {escape(caiq['question'])}</h2>",
        f"<p><span class='answer {escape(caiq['answer'])}'>{escape(caiq['answer'])}</span></p>",
        f"<ul>{concerns}</ul>"
        if concerns
        else "<p>The policy separates production from non-production, in enforce mode, and the "
        "lineage log verifies. The evidence for each auditing guideline follows.</p>",
    ]
    for guideline in evidence["guidelines"]:
        out.append(
            f"<h2 id='g{guideline['number']}'>Auditing guideline {guideline['number']}"
            f"</h2><p>{escape(guideline['text'])}</p>"
        )
        for name in guideline["sections"]:
            out.append(f"<h3>{escape(_TITLES[name])}</h3>{sections[name]}")
    prod = set(evidence["graph_prod"])
    out.append(
        "<h2 id=graph>Lineage graph</h2><p class=muted>The most recent links of the "
        "lineage log; dashed links are masking steps.</p>"
    )
    out.append(f"<div class=graph>{lineage_svg(map(tuple, evidence['graph']), prod)}</div>")
    out.append(
        "<h2>Event counts</h2>"
        + _table(["kind", "events"], sorted(evidence["events_by_kind"].items()), "No events.")
    )
    data = json.dumps(evidence, sort_keys=True).replace("</", "<\\/")
    out.append(f"<script type='application/json' id=evidence>{data}</script>")
    out.append("</body></html>")
    return "\n".join(out)
