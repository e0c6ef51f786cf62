"""envguard's pytest plugin: a test session runs in the policy's test environment and cannot
reach production.

Registered through the ``pytest11`` entry point. Importing it costs nothing: envguard itself is
imported only when the session starts and a policy is found. Opt out with ``-p no:envguard`` or
the ini option ``envguard = false``.

- The session runs as the environment named ``test`` (``--envguard-env`` picks another
  non-production one; a production-tier one is refused).
- A test that reaches a production-tier resource the policy lists (an MLflow tracking or
  registry URI, a host or database URL, a local remote or file, an S3 bucket or prefix through
  botocore's events, a DVC remote named by name, resolved to its URL through the repository's
  DVC configuration) fails, with an error naming the resource and the rule; other tests go on.
- Fixtures ``envguard_env``, ``envguard_policy``, ``envguard_lineage_store``; marker
  ``@pytest.mark.envguard_env("train")`` runs one test as another non-production environment.
- The terminal summary counts the crossings blocked, and where.
"""

from __future__ import annotations

import os
from collections.abc import Generator, Iterator
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from envguard.environments import ResolvedEnvironment
    from envguard.lineage.sql import SqlLineageStore
    from envguard.policy import Policy
    from envguard_pytest.boundary import Boundary

__all__: list[str] = []

_STATE = pytest.StashKey["_Session"]()


class _Session:
    def __init__(self, policy: Policy, env: str, boundary: Boundary) -> None:
        self.policy = policy
        self.env = env
        self.boundary = boundary
        self.s3_denials: list[tuple[str, str]] = []
        self.saved_environ: dict[str, str | None] = {}


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("envguard", "envguard: environment boundaries")
    group.addoption(
        "--envguard-env",
        dest="envguard_env",
        default=None,
        help="Run the session as this non-production environment (default: test).",
    )
    parser.addini(
        "envguard",
        type="bool",
        default=True,
        help="Run the session inside envguard's test environment boundary.",
    )


def _find_policy(config: pytest.Config) -> Policy | None:
    from envguard.errors import PolicyError
    from envguard.policy_source import find_policy

    try:
        source = find_policy(config.rootpath)
    except PolicyError as exc:
        if os.environ.get("ENVGUARD_CONFIG"):
            raise pytest.UsageError(str(exc)) from None
        return None  # no policy: this suite does not use envguard; nothing heavy was imported
    from envguard.policy import load_policy

    try:
        return load_policy(source)
    except PolicyError as exc:
        raise pytest.UsageError(f"envguard: {exc}") from None


def _non_prod(policy: Policy, name: str, where: str) -> str:
    if name not in policy.spec.environments:
        raise pytest.UsageError(
            f"envguard: {where} names environment {name!r}, which {policy.path} does not "
            f"declare (declared: {', '.join(policy.environment_names)})"
        )
    if policy.is_prod(name):
        raise pytest.UsageError(
            f"envguard: {where} names {name!r}, a production-tier environment; tests run in a "
            f"non-production environment only"
        )
    return name


@pytest.hookimpl(trylast=True)
def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "envguard_env(name): run this test as another non-production environment"
    )
    if not config.getini("envguard"):
        return
    policy = _find_policy(config)
    if policy is None:
        return
    wanted = config.getoption("envguard_env") or "test"
    env = _non_prod(
        policy,
        wanted,
        "--envguard-env" if config.getoption("envguard_env") else "the default test environment",
    )
    from envguard import runtime
    from envguard_pytest.boundary import Boundary, activate

    saved = {
        name: os.environ.get(name)
        for name in ("ENVGUARD_ENV", "ENVGUARD_CONFIG", "BOTOCORE_EXPERIMENTAL__PLUGINS")
    }
    os.environ["ENVGUARD_ENV"] = env
    os.environ.setdefault("ENVGUARD_CONFIG", str(policy.path))
    runtime.reset()
    from envguard.errors import EnvGuardError

    try:
        boundary = Boundary.from_policy(policy, env, config.rootpath)
    except EnvGuardError as exc:  # the DVC configuration is unreadable: refuse to run unguarded
        raise pytest.UsageError(f"envguard: {exc}") from None
    activate(boundary)
    _guard_s3(dvc_remotes=bool(boundary.s3))
    config.stash[_STATE] = _Session(policy, env, boundary)
    config.stash[_STATE].saved_environ = saved


def pytest_unconfigure(config: pytest.Config) -> None:
    state = _session(config)
    if state is None:
        return
    from envguard_pytest.boundary import activate

    activate(None)
    for name, value in state.saved_environ.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


_PLUGINS = "BOTOCORE_EXPERIMENTAL__PLUGINS"


def _guard_s3(*, dvc_remotes: bool) -> None:
    """Guard every boto3 client created from now on (botocore's plugin mechanism): the S3
    plugin's guard, and the boundary's check of production DVC remotes in S3."""
    entries = []
    try:
        import envguard_s3  # noqa: F401 - the S3 plugin must be importable to guard S3
    except ImportError:
        pass
    else:
        entries.append(("envguard_s3", "envguard=envguard_s3"))
    if dvc_remotes:
        entries.append(("envguard_pytest.boundary", "envguard_pytest=envguard_pytest.boundary"))
    for module, entry in entries:
        current = os.environ.get(_PLUGINS, "")
        if module not in {part.split("=")[-1].strip() for part in current.split(",")}:
            os.environ[_PLUGINS] = f"{current},{entry}" if current else entry


def _session(config: pytest.Config) -> _Session | None:
    return config.stash.get(_STATE, None)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, None, None]:
    state = _session(item.config)
    if state is None:
        return (yield)
    from envguard import runtime

    marker = item.get_closest_marker("envguard_env")
    env = state.env
    if marker is not None:
        env = _non_prod(state.policy, str(marker.args[0]), f"the marker on {item.nodeid}")
    previous = os.environ.get("ENVGUARD_ENV")
    os.environ["ENVGUARD_ENV"] = env
    runtime.reset()
    state.boundary.env = env
    state.boundary.current_test = item.nodeid
    before = len(state.boundary.crossings)
    try:
        return (yield)
    finally:
        state.boundary.current_test = None
        state.boundary.env = state.env
        if previous is None:
            os.environ.pop("ENVGUARD_ENV", None)
        else:
            os.environ["ENVGUARD_ENV"] = previous
        runtime.reset()
        item.stash[_CROSSED] = len(state.boundary.crossings) - before


_CROSSED = pytest.StashKey[int]()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    state = _session(item.config)
    if state is None or report.when != "call":
        return report
    crossed = item.stash.get(_CROSSED, 0)
    if call.excinfo is not None:
        from envguard.errors import Denied

        if call.excinfo.errisinstance(Denied) and not crossed:
            state.s3_denials.append((item.nodeid, str(call.excinfo.value).splitlines()[0]))
    if crossed and report.passed:
        # The test swallowed the error: it still reached for production, so it fails.
        last = state.boundary.crossings[-1]
        report.outcome = "failed"
        report.longrepr = (
            f"envguard: {item.nodeid} tried to reach {last.resource} "
            f"(rule {last.rule}) and caught the error; reaching for production "
            f"from a test fails it"
        )
    elif crossed and call.excinfo is not None:
        from envguard_pytest.boundary import BoundaryCrossing

        if not call.excinfo.errisinstance(BoundaryCrossing):
            # A library wrapped the error (DVC, s3fs): say what was blocked beside its message.
            for crossing in state.boundary.crossings[-crossed:]:
                report.sections.append(
                    (
                        "envguard",
                        f"envguard: blocked {crossing.resource} (rule {crossing.rule}): it "
                        f"belongs to a production environment",
                    )
                )
    return report


def pytest_report_header(config: pytest.Config) -> str | None:
    state = _session(config)
    if state is None:
        return None
    boundary = state.boundary
    header = (
        f"envguard: session runs in {state.env!r} (non-production); policy {state.policy.path}"
        f"; {len(boundary.hosts) + len(boundary.paths) + len(boundary.s3)} production "
        f"resources guarded"
    )
    if boundary.unresolved:
        names = ", ".join(repr(n) for n in boundary.unresolved)
        header += f"; DVC remote(s) {names} not resolved (no DVC repository here defines them)"
    return header


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    state = _session(config)
    if state is None:
        return
    blocked = [(c.test, f"{c.resource} ({c.rule})") for c in state.boundary.crossings]
    blocked += state.s3_denials
    terminalreporter.section("envguard")
    terminalreporter.write_line(
        f"{len(blocked)} boundary crossing(s) blocked in environment {state.env!r}"
    )
    for test, what in blocked:
        terminalreporter.write_line(f"  {test}: {what}")


# -- fixtures ----------------------------------------------------------------------------------
@pytest.fixture
def envguard_policy(request: pytest.FixtureRequest) -> Policy:
    """The policy the session runs under."""
    state = _session(request.config)
    if state is None:
        raise pytest.UsageError("envguard: no policy found for this test session")
    return state.policy


@pytest.fixture
def envguard_env(request: pytest.FixtureRequest, envguard_policy: Policy) -> ResolvedEnvironment:
    """The environment this test runs in (name, tier, where it came from)."""
    from envguard.environments import ResolvedEnvironment

    marker = request.node.get_closest_marker("envguard_env")
    state = _session(request.config)
    assert state is not None
    name = str(marker.args[0]) if marker else state.env
    source = "envguard_env marker" if marker else "the pytest plugin"
    return ResolvedEnvironment(name, envguard_policy.tier(name), source)


@pytest.fixture
def envguard_lineage_store(
    tmp_path_factory: pytest.TempPathFactory, envguard_policy: Policy
) -> Iterator[SqlLineageStore]:
    """A throw-away lineage store for this test; envguard records into it while the test runs."""
    from envguard import runtime
    from envguard.lineage.sql import SqlLineageStore

    folder = tmp_path_factory.mktemp("envguard-lineage")
    url = f"sqlite:///{folder / 'lineage.db'}"
    previous = os.environ.get("ENVGUARD_LINEAGE_URL")
    os.environ["ENVGUARD_LINEAGE_URL"] = url
    runtime.reset()
    store = SqlLineageStore(url, spool_dir=folder / "spool")
    try:
        yield store
    finally:
        store.close()
        if previous is None:
            os.environ.pop("ENVGUARD_LINEAGE_URL", None)
        else:
            os.environ["ENVGUARD_LINEAGE_URL"] = previous
        runtime.reset()
