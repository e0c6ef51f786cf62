"""Policy loading and validation: the example policy, discovery, and every kind of bad input."""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

from envguard.errors import PolicyError
from envguard.policy import find_policy, load_policy
from tests.conftest import EXAMPLE_POLICY, ROOT, CliResult

MINIMAL = """
[environments.train]
tier = "non-prod"
[environments.prod]
tier = "prod"
"""


def write(tmp_path: Path, text: str, name: str = "envguard.toml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def problems(path: Path) -> list[str]:
    with pytest.raises(PolicyError) as info:
        load_policy(path)
    return [str(p) for p in info.value.problems]


def test_example_policy_is_valid_and_uses_the_agreed_defaults() -> None:
    policy = load_policy(EXAMPLE_POLICY)
    assert policy.environment_names == ["train", "test", "prod"]
    assert [policy.tier(n) for n in ("train", "test", "prod")] == ["non-prod", "non-prod", "prod"]
    assert policy.env_for_alias("staging") == "test"
    assert policy.env_for_alias("Production") == "prod"
    assert policy.env_for_alias("CHAMPION") == "prod"
    assert policy.env_for_stage("staging") == "test"
    assert policy.env_for_stage("Production") == "prod"
    assert policy.env_for_location("s3://acme-ml-dev/data/x.csv") == "train"
    assert policy.env_for_location("s3://acme-ml-prod/") == "prod"
    assert policy.env_for_dvc_remote("dev-data") == "train"
    assert policy.env_for_dvc_remote("prod-data") == "prod"
    rule = policy.promotion_rule("prod")
    assert rule is not None
    assert (rule.approvals, rule.approver_roles, rule.separation_of_duties) == (
        2,
        ["approver"],
        True,
    )
    assert len(policy.sha256) == 64


def test_embedded_default_policy_is_the_example() -> None:
    embedded = ROOT / "envguard" / "templates" / "envguard.toml"
    assert embedded.read_bytes() == EXAMPLE_POLICY.read_bytes()


def test_example_policy_uses_every_field() -> None:
    """examples/envguard.toml is the complete example: every schema field appears in it."""
    import tomllib

    from envguard.policy import schema_fields

    data = tomllib.loads(EXAMPLE_POLICY.read_text())
    missing = []
    for path, fields in schema_fields().items():
        tables = _tables_at(data, path)
        assert tables, f"no table at {'.'.join(path) or 'top level'} in the example"
        for field in fields:
            if not any(field in t for t in tables if isinstance(t, dict)):
                if path and path[-1] == "*" and path[-2] == "columns":
                    continue  # a column rule may be written as a bare method name
                missing.append(".".join((*path, field)))
    # Column-rule parameters appear in the table forms.
    assert not missing, f"fields missing from the example policy: {missing}"


def _tables_at(data: dict, path: tuple[str, ...]) -> list:
    level = [data]
    for part in path:
        nxt = []
        for table in level:
            if not isinstance(table, dict):
                continue
            found = list(table.values()) if part == "*" else [table.get(part, {})]
            for item in found:
                nxt.extend(item if isinstance(item, list) else [item])
        level = nxt
    return level


def test_policy_sha256_ignores_comments_but_not_content(tmp_path: Path) -> None:
    a = load_policy(write(tmp_path, MINIMAL, "a.toml"))
    b = load_policy(write(tmp_path, "# a comment\n" + MINIMAL, "b.toml"))
    c = load_policy(write(tmp_path, "\n\n" + MINIMAL.replace(" = ", "=") + "\n", "c.toml"))
    d = load_policy(write(tmp_path, 'mode = "warn"\n' + MINIMAL, "d.toml"))
    assert a.sha256 == b.sha256 == c.sha256
    assert a.sha256 != d.sha256


def test_discovery_walks_up_then_falls_back_to_pyproject(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    deep = tmp_path / "a" / "b"
    deep.mkdir(parents=True)
    write(
        tmp_path,
        "[tool.envguard]\n" + MINIMAL.replace("[environments", "[tool.envguard.environments"),
        "pyproject.toml",
    )
    found = find_policy(deep, environ={})
    assert found.path == tmp_path / "pyproject.toml"
    assert found.table == "tool.envguard"
    assert load_policy(found).environment_names == ["train", "prod"]
    write(tmp_path / "a", MINIMAL)
    assert find_policy(deep, environ={}).path == tmp_path / "a" / "envguard.toml"
    other = write(tmp_path, MINIMAL, "other.toml")
    assert find_policy(deep, environ={"ENVGUARD_CONFIG": str(other)}).path == other


def test_pyproject_problems_carry_the_tool_prefix(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        [tool.envguard.environments.train]
        tier = "nonprod"
    """,
        "pyproject.toml",
    )
    assert problems(path) == [
        f"{path}: tool.envguard.environments.train.tier: expected 'prod' or 'non-prod', "
        "got 'nonprod'"
    ]


def test_no_policy_anywhere_says_where_to_put_one(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match=r"no policy found: create envguard\.toml"):
        find_policy(tmp_path, environ={})
    with pytest.raises(PolicyError, match="ENVGUARD_CONFIG names this file"):
        find_policy(tmp_path, environ={"ENVGUARD_CONFIG": str(tmp_path / "nope.toml")})


BAD_INPUTS = {
    "empty file": ("", ["the policy is empty"]),
    "invalid TOML": ("[environments.train\ntier = 1", ["invalid TOML"]),
    "unknown key": (
        MINIMAL + "[promotion.prod]\napprovels = 2\n",
        ["promotion.prod.approvels: unknown key; did you mean 'approvals'?"],
    ),
    "unknown top-level key": (
        "mdoe = 'warn'\n" + MINIMAL,
        ["mdoe: unknown key; did you mean 'mode'?"],
    ),
    "wrong type": (
        MINIMAL + "[promotion.prod]\napprovals = '2'\n",
        ["promotion.prod.approvals: expected a valid integer, got '2'"],
    ),
    "undeclared environment in a rule": (
        MINIMAL + "[promotion.prod]\nallowed_sources = ['staging']\n",
        [
            "promotion.prod.allowed_sources[0]: environment 'staging' is not declared; "
            "declared environments: train, prod"
        ],
    ),
    "undeclared promotion target": (
        MINIMAL + "[promotion.qa]\napprovals = 0\n",
        ["promotion.qa: environment 'qa' is not declared"],
    ),
    "undeclared default": (
        "default_env = 'dev'\n" + MINIMAL,
        ["default_env: environment 'dev' is not declared"],
    ),
    "same bucket twice": (
        MINIMAL.replace('tier = "non-prod"', 'tier = "non-prod"\ns3 = ["acme"]').replace(
            'tier = "prod"', 'tier = "prod"\ns3 = ["s3://ACME/prod/"]'
        ),
        [
            "environments.prod.s3[0]: S3 location 's3://ACME/prod/' is also "
            "claimed by environment 'train'"
        ],
    ),
    "same remote twice": (
        MINIMAL.replace('tier = "non-prod"', 'tier = "non-prod"\ndvc_remotes = ["data"]').replace(
            'tier = "prod"', 'tier = "prod"\ndvc_remotes = ["data"]'
        ),
        ["environments.prod.dvc_remotes[0]: DVC remote 'data' is also claimed"],
    ),
    "alias to unknown environment": (
        MINIMAL + "[registry.aliases]\nproduction = 'live'\n",
        ["registry.aliases.production: environment 'live' is not declared"],
    ),
    "more approvals than approvers": (
        MINIMAL + "[promotion.prod]\napprovals = 3\napprover_roles = ['approver']\n"
        "[roles]\nada = ['approver']\ngrace = ['approver']\nlinus = ['ops']\n",
        [
            "promotion.prod.approvals: requires 3 approvals but only 2 identities hold role "
            "approver; add holders under [roles] or lower the count"
        ],
    ),
    "invalid signer key": (
        MINIMAL + "[signers.ci]\npublic_key = 'bm90IGEga2V5'\n",
        [
            "signers.ci.public_key: not a valid Ed25519 public key: base64 must "
            "decode to 32 bytes for Ed25519, got 9"
        ],
    ),
    "negative approvals": (
        MINIMAL + "[promotion.prod]\napprovals = -1\n",
        ["promotion.prod.approvals: expected greater than or equal to 0, got -1"],
    ),
    "wrong tier": (
        MINIMAL.replace('"prod"', '"production"'),
        ["environments.prod.tier: expected 'prod' or 'non-prod', got 'production'"],
    ),
    "aliases differing only in case": (
        MINIMAL + "[registry.aliases]\nproduction = 'prod'\nPRODUCTION = 'train'\n",
        ["registry.aliases.PRODUCTION: 'PRODUCTION' and 'production' are the same name"],
    ),
    "generalize without a parameter": (
        MINIMAL + "[masking.columns]\ndob = 'generalize'\n",
        ["masking.columns.dob: generalize needs exactly one of"],
    ),
    "unknown masking method": (
        MINIMAL + "[masking.columns]\ndob = 'shuffle'\n",
        [
            "masking.columns.dob.method: expected 'hash', 'redact', 'drop', "
            "'generalize' or 'scrub', got 'shuffle'"
        ],
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_policy_exits_2_with_one_line_per_problem(
    case: str, tmp_path: Path, envguard_cli: Callable[..., CliResult]
) -> None:
    text, expected = BAD_INPUTS[case]
    path = write(tmp_path, text)
    result = envguard_cli("policy", "validate", str(path))
    assert result.exit_code == 2, result
    assert "Traceback" not in result.stderr + result.stdout
    lines = result.stderr.strip().splitlines()
    assert len(lines) == len(expected), lines
    for line, fragment in zip(lines, expected, strict=True):
        assert line.startswith(f"error: {path}"), line
        assert fragment in line, (fragment, line)


def test_every_problem_is_reported_at_once(
    tmp_path: Path, envguard_cli: Callable[..., CliResult]
) -> None:
    path = write(
        tmp_path,
        """
        default_env = "dev"
        [environments.train]
        tier = "nonprod"
        colour = "blue"
        [promotion.prod]
        approvals = -2
    """,
    )
    result = envguard_cli("policy", "validate", str(path), "--json")
    assert result.exit_code == 2
    fields = sorted(p["field"] for p in result.json()["problems"])
    assert fields == [
        "default_env",
        "environments.train.colour",
        "environments.train.tier",
        "promotion.prod",
        "promotion.prod.approvals",
    ]


def test_validate_and_show(workspace: Path, envguard_cli: Callable[..., CliResult]) -> None:
    result = envguard_cli("policy", "validate")
    assert result.exit_code == 0
    assert "valid" in result.stdout
    shown = envguard_cli("policy", "show", "--json").json()
    assert shown["sha256"] == load_policy(workspace / "envguard.toml").sha256
    assert shown["policy"]["promotion"]["prod"]["approvals"] == 2
    text = envguard_cli("policy", "show")
    assert text.exit_code == 0
    assert "[promotion.prod]" in text.stdout
    assert "approvals = 2" in text.stdout


def test_init_writes_the_default_policy(
    tmp_path: Path, envguard_cli: Callable[..., CliResult]
) -> None:
    assert envguard_cli("policy", "init", str(tmp_path)).exit_code == 0
    assert (tmp_path / "envguard.toml").read_bytes() == EXAMPLE_POLICY.read_bytes()
    again = envguard_cli("policy", "init", str(tmp_path))
    assert again.exit_code == 2
    assert "already exists; pass --force" in again.stderr
