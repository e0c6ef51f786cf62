"""Commands about configuration: ``env``, ``policy validate|show|init``, ``plugins``."""

from __future__ import annotations

from pathlib import Path

import click

from envguard.cli.output import emit_json, heading, kv_lines
from envguard.errors import InputError

__all__ = ["register"]

json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON.")


@click.command("env")
@json_option
def env_command(as_json: bool) -> None:
    """Show this process's environment: name, tier, where it came from, and the policy."""
    from envguard.runtime import current

    runtime = current()
    env = runtime.environment
    policy = runtime.policy
    data = {
        "name": env.name,
        "tier": env.tier,
        "source": env.source,
        "mode": policy.mode,
        "policy": str(policy.path),
        "policy_sha256": policy.sha256,
    }
    if as_json:
        emit_json(data)
        return
    click.echo(kv_lines(data.items()))


@click.group("policy")
def policy_group() -> None:
    """Validate, show or create the policy."""


@policy_group.command("validate")
@click.argument("file", required=False, type=click.Path(dir_okay=False, path_type=Path))
@json_option
def policy_validate(file: Path | None, as_json: bool) -> None:
    """Check the policy (FILE, or the one envguard finds) and report every problem at once.

    Exit 0 when valid, 2 otherwise. Always a full validation: the policy cache is not read.
    """
    from envguard.policy import load_policy

    policy = load_policy(file, cache=False)
    if as_json:
        emit_json({"valid": True, "policy": str(policy.path), "sha256": policy.sha256})
        return
    names = ", ".join(f"{n} ({policy.tier(n)})" for n in policy.environment_names)
    click.echo(f"{policy.path}: valid (sha256 {policy.sha256})")
    click.echo(f"environments: {names}; mode: {policy.mode}")


@policy_group.command("show")
@json_option
def policy_show(as_json: bool) -> None:
    """Print the effective policy (defaults filled in) and its sha256."""
    from envguard.runtime import current

    policy = current().policy
    data = {"path": str(policy.path), "sha256": policy.sha256, "policy": policy.to_dict()}
    if as_json:
        emit_json(data)
        return

    click.echo(heading(f"# {policy.path}"))
    click.echo(f"# sha256 {policy.sha256}")
    _print_tables(policy.to_dict())


def _print_tables(data: dict[str, object], prefix: str = "") -> None:
    scalars = {k: v for k, v in data.items() if not isinstance(v, dict)}
    tables = {k: v for k, v in data.items() if isinstance(v, dict)}
    if prefix and (scalars or not tables):
        click.echo(f"\n[{prefix}]")
    for key, value in scalars.items():
        click.echo(f"{_key(key)} = {_value(value)}")
    for key, value in tables.items():
        assert isinstance(value, dict)
        _print_tables(value, f"{prefix}.{_key(key)}" if prefix else _key(key))


def _key(key: str) -> str:
    return key if key.replace("_", "").replace("-", "").isalnum() else f'"{key}"'


def _value(value: object) -> str:
    import json

    if value is None:
        return '""  # unset'
    return json.dumps(value)


@policy_group.command("init")
@click.argument(
    "directory", required=False, default=".", type=click.Path(file_okay=False, path_type=Path)
)
@click.option("--force", is_flag=True, help="Overwrite an existing envguard.toml.")
def policy_init(directory: Path, force: bool) -> None:
    """Write a complete, commented envguard.toml (train, test, prod) into DIRECTORY."""
    target = directory / "envguard.toml"
    if target.exists() and not force:
        raise InputError(str(target), "already exists; pass --force to overwrite it")
    directory.mkdir(parents=True, exist_ok=True)
    target.write_text(default_policy_text(), encoding="utf-8")
    click.echo(f"wrote {target}")


def default_policy_text() -> str:
    """The embedded default policy (identical to ``examples/envguard.toml``)."""
    from importlib import resources  # here: it costs every envguard command ~10 ms

    return (resources.files("envguard") / "templates" / "envguard.toml").read_text("utf-8")


@click.command("plugins")
@json_option
def plugins_command(as_json: bool) -> None:
    """List plugins, their hooks, and whether each is active (and if not, why)."""
    from envguard.runtime import current

    infos = current().plugins.check_tool_entry_points().plugin_infos()
    if as_json:
        emit_json([info.__dict__ for info in infos])
        return
    if not infos:
        click.echo("no plugins installed")
        return
    colours = {"active": "green", "inactive": "yellow", "disabled": "cyan", "broken": "red"}
    for info in infos:
        status = click.style(info.status, fg=colours.get(info.status), bold=True)
        origin = f"{info.distribution} {info.version}" if info.distribution else info.module
        click.echo(f"{heading(info.name)}  {status}  ({info.module}, from {origin})")
        if info.reason:
            click.echo(f"    {info.reason}")
        if info.hooks:
            click.echo(f"    hooks: {', '.join(info.hooks)}")
        if info.tool_entry_points:
            groups = sorted({label.split(":")[0] for label in info.tool_entry_points})
            click.echo(f"    also loaded by: {', '.join(groups)}")


def register(cli: click.Group) -> None:
    from envguard.cli.audit_commands import audit_group
    from envguard.cli.data_commands import data_group

    cli.add_command(audit_group)
    cli.add_command(data_group)
    cli.add_command(demo_command)
    cli.add_command(env_command)
    cli.add_command(policy_group)
    cli.add_command(plugins_command)


@click.command("demo")
@click.option(
    "--workdir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Play the demo in this folder (default: a new temporary folder).",
)
def demo_command(workdir: Path | None) -> None:
    """Play envguard's whole job end to end, on embedded defaults, in a new workspace."""
    from envguard.demo import run_demo

    code = run_demo(workdir)
    if code:
        raise SystemExit(code)
