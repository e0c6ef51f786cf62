"""The plugin manager: explicit entry-point loading, inactive extras, broken plugins, the disable
list, misspelled hooks, and security hooks that fail closed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import click
import pytest

from envguard import hookimpl
from envguard.decisions import (
    DataLineage,
    DataMovement,
    Decision,
    PromotionRequest,
    Reason,
    decide_data_use,
)
from envguard.environments import ResolvedEnvironment
from envguard.errors import PluginError
from envguard.plugins import PluginManager, client_side_disabled
from envguard.policy import Policy, load_policy
from tests.conftest import EXAMPLE_POLICY, ROOT


def make_distribution(
    site: Path,
    name: str,
    plugins: dict[str, str],
    extras: dict[str, str],
    modules: dict[str, str],
    tool_groups: dict[str, dict[str, str]] | None = None,
) -> None:
    """Write an installed distribution (dist-info + modules) into ``site``, as pip would."""
    info = site / f"{name}-1.0.dist-info"
    info.mkdir(parents=True)
    meta = ["Metadata-Version: 2.1", f"Name: {name}", "Version: 1.0"]
    for extra, requirement in extras.items():
        meta += [f"Provides-Extra: {extra}", f'Requires-Dist: {requirement}; extra == "{extra}"']
    (info / "METADATA").write_text("\n".join(meta) + "\n")
    groups = {"envguard": plugins, **(tool_groups or {})}
    (info / "entry_points.txt").write_text(
        "".join(
            f"[{group}]\n" + "".join(f"{k} = {v}\n" for k, v in eps.items())
            for group, eps in groups.items()
        )
    )
    for module, source in modules.items():
        (site / f"{module}.py").write_text(textwrap.dedent(source))


def plugins_json(site: Path, **env: str) -> dict[str, dict[str, object]]:
    run_env = {**os.environ, "PYTHONPATH": f"{site}{os.pathsep}{ROOT}", **env}
    out = subprocess.run(
        [sys.executable, "-m", "envguard", "plugins", "--json"],
        capture_output=True,
        text=True,
        env=run_env,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    return {p["name"]: p for p in json.loads(out.stdout)}


def test_third_party_plugins_active_inactive_broken_disabled(tmp_path: Path) -> None:
    make_distribution(
        tmp_path,
        "acme-envguard",
        plugins={
            "acme": "acme_plugin",
            "vault": "acme_vault",
            "crashy": "acme_crashy",
            "off": "acme_plugin",
            "typo": "acme_typo",
        },
        extras={"vault": "no-such-package-xyz>=1"},
        modules={
            "acme_plugin": """
                from envguard import hookimpl
                @hookimpl
                def envguard_identity(policy):
                    return "acme-bot"
            """,
            "acme_vault": "raise RuntimeError('must not be imported while inactive')\n",
            "acme_crashy": "import no_such_module_for_envguard_test\n",
            "acme_typo": """
                from envguard import hookimpl
                @hookimpl
                def envguard_identiti(policy):
                    return "x"
            """,
        },
    )
    found = plugins_json(tmp_path, ENVGUARD_DISABLED_PLUGINS="off")
    assert found["acme"]["status"] == "active"
    assert found["acme"]["hooks"] == ["envguard_identity"]
    assert found["vault"]["status"] == "inactive"
    assert found["vault"]["reason"] == (
        "needs no-such-package-xyz: pip install 'acme-envguard[vault]'"
    )
    assert found["crashy"]["status"] == "broken"
    assert "No module named 'no_such_module_for_envguard_test'" in found["crashy"]["reason"]
    assert found["off"]["status"] == "disabled"
    assert found["typo"]["status"] == "broken"
    assert "envguard_identiti" in found["typo"]["reason"]


def test_bundled_plugins_are_listed_with_their_extras() -> None:
    found = plugins_json(ROOT)
    assert {"mlflow", "dvc", "s3", "gx"} <= set(found)
    for name in ("mlflow", "dvc", "s3", "gx"):
        plugin = found[name]
        assert plugin["module"].split(".")[0] == f"envguard_{name}"
        assert plugin["status"] in {"active", "inactive"}
        if plugin["status"] == "inactive":
            assert plugin["reason"].endswith(f"pip install 'envguard[{name}]'")


# Requires-Dist lines: the forms build backends write (read without packaging's parser) and
# others (read by packaging); the plugin check must answer as packaging does for each.
REQUIREMENTS = [
    'dvc>=3.50; extra == "dvc"',
    "mlflow[auth]>=3.4; extra == 'mlflow'",
    "boto3<1.43.118,>=1.34; extra == 's3'",
    'psycopg[binary] >= 3.1 ; extra == "Dvc_S3"',
    "pkg[a, b] ~= 1.2 , != 1.3.* ; extra=='dvc.s3'",
    "pkg===1.0foo; extra == 'dvc'",
    'pkg; extra == ""',  # never applies to an extra: a base requirement
    'pkg; extra == "v1"',
    'pkg; extra == "2"',
    'pkg; extra != "dvc"',
    'pkg; python_version >= "3"',
    'pkg; extra == "dvc" or python_version >= "3"',
    'pkg; extra == "dvc" and python_version < "3"',
    'pkg (>=1.0); extra == "dvc"',
    'pkg @ https://example.invalid/pkg.whl ; extra == "dvc"',
]
SIMPLE = 7  # the first seven are the forms read without packaging's parser
EXTRAS = ["dvc", "DVC", "s3", "S3", "mlflow", "dvc-s3", "dvc_s3", "v1", "v1.0", "2", "2.0", "all"]


def test_extra_requirements_read_as_packaging_reads_them() -> None:
    from importlib import metadata

    from packaging.requirements import Requirement

    from envguard.plugins import _Requirement

    texts = REQUIREMENTS + [t for t in metadata.distribution("envguard").requires or [] if ";" in t]
    for n, text in enumerate(texts):
        theirs, ours = Requirement(text), _Requirement(text)
        assert (ours._extra is not None) == (n < SIMPLE or n >= len(REQUIREMENTS)), text
        for extra in EXTRAS:
            marker = theirs.marker
            expected = bool(
                marker and marker.evaluate({"extra": extra}) and not marker.evaluate({"extra": ""})
            )
            assert ours.only_for(extra) == expected, (text, extra)
        assert (ours.name, str(ours.specifier)) == (theirs.name, str(theirs.specifier)), text


def test_a_broken_entry_point_of_another_tool_marks_the_plugin_broken(tmp_path: Path) -> None:
    """MLflow only warns when a plugin's entry point fails to import; envguard plugins says so."""
    make_distribution(
        tmp_path,
        "acme-tools",
        plugins={"acme": "acme_tool.hooks", "fine": "acme_fine"},
        extras={},
        modules={"acme_fine": "", "acme_tool_ok": ""},
        tool_groups={
            "mlflow.tracking_store": {
                "sqlite": "acme_tool.stores:build",
                "http": "acme_fine:missing_attribute",
            },
            "acme.other": {"unrelated": "acme_tool_ok"},
        },
    )
    package = tmp_path / "acme_tool"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "hooks.py").write_text("")
    (package / "stores.py").write_text("import no_such_mlflow_internal_for_envguard_test\n")
    found = plugins_json(tmp_path)
    assert found["acme"]["status"] == "broken"
    assert (
        "entry point mlflow.tracking_store:sqlite (acme_tool.stores:build)"
        in (found["acme"]["reason"])
    )
    assert "no_such_mlflow_internal_for_envguard_test" in found["acme"]["reason"]
    assert found["acme"]["tool_entry_points"] == ["mlflow.tracking_store:sqlite"]
    assert found["fine"]["status"] == "broken"
    assert "mlflow.tracking_store:http" in found["fine"]["reason"]
    assert found["mlflow"]["status"] == "active", found["mlflow"]["reason"]
    assert "mlflow.tracking_store:sqlite" in found["mlflow"]["tool_entry_points"]


def test_plugins_command_human_output(envguard_cli) -> None:  # type: ignore[no-untyped-def]
    result = envguard_cli("plugins")
    assert result.exit_code == 0
    assert "mlflow" in result.stdout


def test_misspelled_hook_fails_loudly() -> None:
    class Typo:
        @hookimpl
        def envguard_check_promotoin(self, request: object, policy: object) -> None:
            return None

    manager = PluginManager(environ={})
    with pytest.raises(PluginError, match=r"plugin 'typo'.*envguard_check_promotoin"):
        manager.register(Typo(), "typo")
    assert manager.infos["typo"].status == "broken"


class Exploding:
    @hookimpl
    def envguard_check_promotion(self, request: PromotionRequest, policy: Policy) -> list[Reason]:
        raise RuntimeError("directory service down")

    @hookimpl
    def envguard_check_data_use(
        self, env: ResolvedEnvironment, data: DataLineage, policy: Policy
    ) -> list[Reason]:
        raise RuntimeError("boom")

    @hookimpl
    def envguard_on_event(self, event: dict[str, object]) -> None:
        raise RuntimeError("exporter down")


class Strict:
    @hookimpl
    def envguard_check_promotion(self, request: PromotionRequest, policy: Policy) -> list[Reason]:
        return [Reason("change-window", "Friday", "wait for Monday")]


def test_security_hooks_fail_closed_and_name_the_plugin() -> None:
    policy = load_policy(EXAMPLE_POLICY)
    manager = PluginManager(environ={})
    manager.register(Exploding(), "exploding")
    manager.register(Strict(), "strict")
    reasons = manager.check_promotion(PromotionRequest("models:/m/1", "prod", "ada"), policy)
    assert [(r.rule, r.plugin) for r in reasons] == [
        ("change-window", "strict"),
        ("plugin-check", "exploding"),
    ]
    assert "plugin 'exploding' failed while checking (RuntimeError: directory service down)" in (
        reasons[1].message
    )
    use = manager.check_data_use(
        ResolvedEnvironment("train", "non-prod", "test"), DataLineage("x"), policy
    )
    assert [r.plugin for r in use] == ["exploding"]
    manager.on_event({"kind": "x"})  # observation fails open: no exception


def test_identity_falls_back_to_actor_variable() -> None:
    policy = load_policy(EXAMPLE_POLICY)
    assert PluginManager(environ={"ENVGUARD_ACTOR": "grace"}).identity(policy) == "grace"


@pytest.mark.parametrize(
    ("value", "expected"), [("1", True), ("true", True), ("0", False), ("", False)]
)
def test_global_off_switch(value: str, expected: bool) -> None:
    assert client_side_disabled({"ENVGUARD_DISABLE": value}) is expected


def test_a_broken_plugin_denies_security_checks() -> None:
    policy = load_policy(EXAMPLE_POLICY)
    manager = PluginManager(environ={})

    class Typo:
        @hookimpl
        def envguard_check_promotoin(self) -> None:
            return None

    with pytest.raises(PluginError):
        manager.register(Typo(), "typo")
    reasons = manager.check_promotion(PromotionRequest("models:/m/1", "prod", "ada"), policy)
    assert [(r.rule, r.plugin) for r in reasons] == [("plugin-check", "typo")]
    assert "is installed but broken" in reasons[0].message


class Directory:
    """A plugin answering the remaining hooks, as a directory service and an exporter would."""

    def __init__(self) -> None:
        self.violations: list[str] = []

    @hookimpl
    def envguard_roles(self, identity: str, policy: Policy) -> list[str] | None:
        return ["approver"] if identity == "oncall" else None

    @hookimpl
    def envguard_resolve_origin(
        self, subject: str, digest: str | None, policy: Policy
    ) -> DataLineage | None:
        if subject.startswith("warehouse://"):
            return DataLineage(subject, digest, "prod", ("warehouse",))
        if subject == "broken://x":
            raise ConnectionError("catalog unreachable")
        return None

    @hookimpl
    def envguard_check_data_movement(self, move: DataMovement, policy: Policy) -> list[Reason]:
        return [Reason("freeze", "data freeze", "wait")] if move.to_env == "prod" else []

    @hookimpl
    def envguard_on_violation(self, decision: Decision, policy: Policy) -> None:
        self.violations.append(decision.subject)

    @hookimpl
    def envguard_add_commands(self, cli: click.Group) -> None:
        @cli.command("hello-directory")
        def hello() -> None:
            """Say hello."""
            click.echo("hello from the directory plugin")


def test_roles_origin_movement_violation_and_commands_hooks() -> None:
    policy = load_policy(EXAMPLE_POLICY)
    manager = PluginManager(environ={})
    plugin = Directory()
    manager.register(plugin, "directory")
    assert manager.roles("oncall", policy) == {"approver"}
    assert manager.roles("ada", policy) == {"data-scientist", "approver"}

    found, errors = manager.resolve_origin("warehouse://sales", "ab" * 32, policy)
    assert [f.origin_env for f in found] == ["prod"]
    assert errors == []
    assert manager.resolve_origin("s3://x/y", None, policy) == ([], [])
    found, errors = manager.resolve_origin("broken://x", None, policy)
    assert found == []
    assert [e.rule for e in errors] == ["origin-unknown"]
    assert "catalog unreachable" in errors[0].message

    move = DataMovement("a.csv", "train", "prod", "ada")
    assert [r.rule for r in manager.check_data_movement(move, policy)] == ["freeze"]

    decision = decide_data_use(policy, "train", DataLineage("raw.csv", None, "prod"))
    manager.on_violation(decision, policy)
    assert plugin.violations == ["raw.csv"]

    group = click.Group("envguard")
    manager.add_commands(group)
    assert "hello-directory" in group.commands
