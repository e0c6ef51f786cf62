"""Finding, loading and calling plugins.

:class:`PluginManager` loads the entry points of the group ``envguard`` explicitly (bundled plugins
are registered exactly like a third party's), skips those named in ``ENVGUARD_DISABLED_PLUGINS``
(comma-separated), and calls ``check_pending()`` so that a misspelled hook fails loudly.

A plugin whose entry-point name is also an extra of its distribution (``envguard[mlflow]``) is
listed as inactive, with the command that activates it, until that extra is installed. A plugin
that fails to import is listed as broken with the error: it is never silently absent.

Which plugins the installed distributions declare (and which are inactive) is kept between commands
by :mod:`envguard.plugin_index`, until a folder of ``sys.path`` changes; every plugin is still
imported and checked at every load.

``ENVGUARD_DISABLE=1`` turns off the client-side hooks of the integrations (for benchmarks and
emergencies); the server-side gate ignores it.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from importlib import import_module
from typing import TYPE_CHECKING, Any

import pluggy

from envguard import hookspecs
from envguard.errors import PluginError

if TYPE_CHECKING:
    from importlib import metadata

    import click

    from envguard.decisions import DataLineage, DataMovement, Decision, PromotionRequest, Reason
    from envguard.environments import ResolvedEnvironment
    from envguard.plugin_index import DeclaredPlugin
    from envguard.policy import Policy
    from envguard.scan import Finding

__all__ = [
    "DISABLED_PLUGINS_ENV_VAR",
    "DISABLE_ENV_VAR",
    "PluginInfo",
    "PluginManager",
    "client_side_disabled",
]

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "envguard"
DISABLED_PLUGINS_ENV_VAR = "ENVGUARD_DISABLED_PLUGINS"
DISABLE_ENV_VAR = "ENVGUARD_DISABLE"


def client_side_disabled(environ: Mapping[str, str] | None = None) -> bool:
    """True when ``ENVGUARD_DISABLE`` turns the client-side hooks off."""
    value = (os.environ if environ is None else environ).get(DISABLE_ENV_VAR, "")
    return value.strip().lower() in {"1", "true", "yes", "on"}


@dataclass
class PluginInfo:
    """What ``envguard plugins`` shows about one plugin."""

    name: str
    module: str
    distribution: str | None
    version: str | None
    status: str  # "active", "inactive", "disabled", "broken"
    reason: str = ""
    hooks: list[str] = field(default_factory=list)
    #: entry points this plugin declares for other tools (``GROUP:NAME``), once checked
    tool_entry_points: list[str] = field(default_factory=list)

    @property
    def active(self) -> bool:
        return self.status == "active"


class _DistInfo:
    """One distribution's metadata, read once per load (``dist.metadata`` parses the file anew
    at every access, and every plugin of a distribution asks for it)."""

    def __init__(self, dist: metadata.Distribution) -> None:
        meta = dist.metadata
        self.name: str = meta["Name"]
        self.version: str | None = meta["Version"]
        self.extras = set(meta.get_all("Provides-Extra") or [])
        self._dist = dist
        self._requires: list[_Requirement] | None = None

    @property
    def requires(self) -> list[_Requirement]:
        """Requirements that carry a marker (those without one are base requirements)."""
        if self._requires is None:
            self._requires = [_Requirement(t) for t in self._dist.requires or [] if ";" in t]
        return self._requires


# ``NAME[EXTRAS]SPECIFIERS; extra == "X"``: the form build backends write for an extra's
# requirement. It is read without packaging's parser (whose import costs more than the rest of
# the plugin check); anything else is parsed by packaging. What this pattern accepts is valid
# PEP 508 that packaging reads the same way; an extra that looks like a version (``v1``, ``2``) is
# left to packaging, whose older releases compared those as versions. tests/test_plugins.py
# checks that both give the same answer.
_NAME = r"[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?"
_CLAUSE = r"\s*(?:===|~=|==|!=|<=|>=|<|>)\s*[A-Za-z0-9.*+!_-]+\s*"
_SIMPLE = re.compile(
    rf"""^\s*(?P<name>{_NAME})\s*
    (?:\[\s*(?:{_NAME}\s*(?:,\s*{_NAME}\s*)*)?\])?
    (?P<spec>(?:{_CLAUSE}(?:,{_CLAUSE})*)?)
    ;\s*extra\s*==\s*(?P<q>['"])(?P<extra>(?![vV]?[0-9])[A-Za-z0-9._-]*)(?P=q)\s*$""",
    re.VERBOSE,
)


def _canonical(name: str) -> str:
    """PEP 503 normalisation (``packaging.utils.canonicalize_name``), as markers compare extras."""
    return re.sub(r"[-_.]+", "-", name).lower()


class _Requirement:
    """One ``Requires-Dist`` line with a marker: for which extras it applies, and its name and
    specifier, parsed once per load."""

    def __init__(self, text: str) -> None:
        self.text = text
        match = _SIMPLE.match(text)
        self._extra = _canonical(match["extra"]) if match else None
        self.name = match["name"] if match else ""
        self._spec = match["spec"].strip() if match else ""
        self._parsed: Any = None

    def _requirement(self) -> Any:
        if self._parsed is None:
            from packaging.requirements import Requirement

            self._parsed = Requirement(self.text)
            self.name = self._parsed.name
        return self._parsed

    def only_for(self, extra: str) -> bool:
        """True when the marker holds for ``extra`` but not without any extra."""
        if self._extra is not None:
            return self._extra == _canonical(extra) and self._extra != ""
        marker = self._requirement().marker
        if marker is None or not marker.evaluate({"extra": extra}):
            return False
        return not marker.evaluate({"extra": ""})  # not a base requirement naming extras

    @property
    def specifier(self) -> Any:
        if self._extra is None:
            return self._requirement().specifier
        from packaging.specifiers import SpecifierSet

        return SpecifierSet(self._spec)


def _missing_extra(ep: metadata.EntryPoint, info: _DistInfo | None = None) -> str | None:
    """The install command for the extra named like ``ep`` when it is not installed, else None."""
    from importlib import metadata

    dist = ep.dist
    if dist is None:
        return None
    info = info or _DistInfo(dist)
    if ep.name not in info.extras:
        return None
    missing: list[str] = []
    for req in info.requires:
        if not req.only_for(ep.name):
            continue
        try:
            installed = metadata.version(req.name)
        except metadata.PackageNotFoundError:
            missing.append(req.name)
            continue
        specifier = req.specifier
        if specifier and not specifier.contains(installed, prereleases=True):
            missing.append(f"{req.name} (have {installed}, need {specifier})")
    if not missing:
        return None
    from packaging.utils import canonicalize_name

    name = canonicalize_name(info.name)
    return f"needs {', '.join(missing)}: pip install '{name}[{ep.name}]'"


def _declared_plugins() -> list[DeclaredPlugin]:
    """The entry points of the group ``envguard``, by name, each with its distribution and why
    it is inactive (its extra not installed), through :mod:`importlib.metadata`; kept between
    commands by :mod:`envguard.plugin_index`."""
    from importlib import metadata

    from envguard.plugin_index import DeclaredPlugin

    found: list[DeclaredPlugin] = []
    dists: dict[int, _DistInfo] = {}
    for ep in sorted(metadata.entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
        meta = None
        if ep.dist is not None:
            meta = dists.get(id(ep.dist)) or dists.setdefault(id(ep.dist), _DistInfo(ep.dist))
        dist, version = (meta.name, meta.version) if meta else (None, None)
        found.append(DeclaredPlugin(ep.name, ep.value, dist, version, _missing_extra(ep, meta)))
    return found


class PluginManager:
    """envguard's plugin manager: explicit loading, a disable list, fail-closed security hooks."""

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        self._environ = os.environ if environ is None else environ
        self.pm = pluggy.PluginManager(hookspecs.PROJECT)
        self.pm.add_hookspecs(hookspecs)
        self.infos: dict[str, PluginInfo] = {}
        self.loaded = False

    @property
    def hook(self) -> Any:
        return self.pm.hook

    @property
    def disabled_names(self) -> set[str]:
        raw = self._environ.get(DISABLED_PLUGINS_ENV_VAR, "")
        return {part.strip() for part in raw.split(",") if part.strip()}

    # -- loading --------------------------------------------------------------------------------
    def load_entry_points(self) -> PluginManager:
        """Load every plugin of the ``envguard`` entry-point group (once)."""
        if self.loaded:
            return self
        self.loaded = True
        from envguard.plugin_index import declared_plugins, load_object

        disabled = self.disabled_names
        # The index's folder comes from the process's environment (XDG_CACHE_HOME), like the
        # policy cache's: self._environ holds the ENVGUARD_* variables envguard acts under.
        for ep in declared_plugins(_declared_plugins):
            info = PluginInfo(ep.name, ep.value, ep.distribution, ep.version, "active")
            self.infos[ep.name] = info
            if ep.name in disabled:
                info.status, info.reason = "disabled", f"named in {DISABLED_PLUGINS_ENV_VAR}"
                continue
            if ep.missing:
                info.status, info.reason = "inactive", ep.missing
                continue
            try:
                plugin = load_object(ep.value)
            except ImportError as exc:
                info.status, info.reason = "broken", f"import failed: {exc}"
                continue
            except Exception as exc:  # noqa: BLE001 - any failure of a plugin's import is reported
                info.status, info.reason = "broken", f"{type(exc).__name__}: {exc}"
                continue
            try:
                self.register(plugin, ep.name)
            except PluginError as exc:
                log.warning("%s", exc)
        return self

    def register(self, plugin: object, name: str) -> None:
        """Register a plugin object or module; raises :class:`PluginError` on an unknown hook."""
        info = self.infos.setdefault(
            name, PluginInfo(name, getattr(plugin, "__name__", repr(plugin)), None, None, "active")
        )
        try:
            self.pm.register(plugin, name=name)
            self.pm.check_pending()
        except pluggy.PluginValidationError as exc:
            self.pm.unregister(name=name)
            info.status, info.reason = "broken", str(exc)
            raise PluginError(name, str(exc)) from None
        info.hooks = sorted(
            caller.name for caller in self.pm.get_hookcallers(plugin) or [] if caller.name
        )

    def check_tool_entry_points(self) -> PluginManager:
        """Load, as the other tool would, every entry point that an active plugin declares in
        another tool's group (``mlflow.tracking_store``, ...) from its own package.

        The tool's own package (the group's first dotted part, ``mlflow``) is imported first, as
        when the tool loads them. Tools such as MLflow catch a plugin's import error and only warn,
        so a broken plugin would be silently absent there; here a failure marks the plugin
        ``broken``, with the group, the entry point and the error. This imports the tool (MLflow),
        so it is not done on every load: ``envguard plugins`` calls it.
        """
        from importlib import metadata

        self.load_entry_points()
        packages: dict[str, list[PluginInfo]] = {}
        for info in self.infos.values():
            if info.active:  # several plugins may live in one package (mlflow, mlflow-server)
                packages.setdefault(info.module.split(".")[0].split(":")[0], []).append(info)
        found = {
            (ep.group, ep.name, ep.value): ep
            for dist in metadata.distributions()
            for ep in dist.entry_points
        }
        for _key, ep in sorted(found.items()):
            owners = packages.get(ep.value.split(".")[0].split(":")[0], [])
            if ep.group == ENTRY_POINT_GROUP or not owners:
                continue
            label = f"{ep.group}:{ep.name}"
            problem = ""
            try:
                import_module(ep.group.split(".")[0])  # the tool first, as when it loads them
                ep.load()
            except Exception as exc:  # noqa: BLE001 - any failure of a tool's entry point is reported
                problem = f"entry point {label} ({ep.value}) fails to load: "
                problem += f"{type(exc).__name__}: {exc}"
            for info in owners:
                info.tool_entry_points.append(label)
                if problem:
                    info.status = "broken"
                    info.reason = f"{info.reason}; {problem}" if info.reason else problem
        return self

    def plugin_infos(self) -> list[PluginInfo]:
        return [self.infos[name] for name in sorted(self.infos)]

    # -- calling --------------------------------------------------------------------------------
    def _impls(self, hook_name: str) -> Iterator[tuple[str, Callable[..., Any]]]:
        caller = getattr(self.pm.hook, hook_name)
        for impl in reversed(caller.get_hookimpls()):  # pluggy's calling order
            yield impl.plugin_name, impl.function

    def _checked(self, hook_name: str, rule: str, **kwargs: Any) -> list[Reason]:
        """Call a security hook implementation by implementation; one that raises denies."""
        from envguard.decisions import Reason

        reasons: list[Reason] = [
            Reason(
                rule,
                f"plugin {info.name!r} is installed but broken ({info.reason}); denied because "
                f"a security check that cannot run fails closed",
                f"fix it (envguard plugins) or disable it ({DISABLED_PLUGINS_ENV_VAR}={info.name})",
                plugin=info.name,
            )
            for info in self.plugin_infos()
            if info.status == "broken"
        ]
        for name, function in self._impls(hook_name):
            try:
                result = function(**kwargs)
            except Exception as exc:
                log.exception("plugin %s failed in %s", name, hook_name)
                reasons.append(
                    Reason(
                        rule,
                        f"plugin {name!r} failed while checking ({type(exc).__name__}: {exc}); "
                        f"denied because a security check that cannot run fails closed",
                        f"fix or disable the plugin ({DISABLED_PLUGINS_ENV_VAR}={name})",
                        plugin=name,
                    )
                )
                continue
            for reason in result or ():
                reasons.append(reason if reason.plugin else _with_plugin(reason, name))
        return reasons

    def detect_environment(self, policy: Policy) -> tuple[str, str] | None:
        for name, function in self._impls("envguard_detect_environment"):
            try:
                result = function(policy=policy)
            except Exception as exc:
                raise PluginError(name, f"envguard_detect_environment failed: {exc}") from exc
            if result is not None:
                return str(result), f"plugin {name}"
        return None

    def identity(self, policy: Policy) -> str:
        result = self.pm.hook.envguard_identity(policy=policy)
        if result:
            return str(result)
        import getpass

        actor = self._environ.get("ENVGUARD_ACTOR", "").strip()
        return actor or getpass.getuser()

    def roles(self, identity: str, policy: Policy) -> set[str]:
        held = policy.roles_of(identity)
        for extra in self.pm.hook.envguard_roles(identity=identity, policy=policy):
            held.update(extra or ())
        return held

    def resolve_origin(
        self, subject: str, digest: str | None, policy: Policy
    ) -> tuple[list[DataLineage], list[Reason]]:
        """Every plugin's answer about ``subject``, and a reason for each plugin that failed."""
        from envguard.decisions import Reason

        found: list[DataLineage] = []
        errors: list[Reason] = []
        for name, function in self._impls("envguard_resolve_origin"):
            try:
                result = function(subject=subject, digest=digest, policy=policy)
            except Exception as exc:
                log.exception("plugin %s failed in envguard_resolve_origin", name)
                errors.append(
                    Reason(
                        "origin-unknown",
                        f"plugin {name!r} could not resolve the origin of {subject} "
                        f"({type(exc).__name__}: {exc})",
                        f"fix or disable the plugin ({DISABLED_PLUGINS_ENV_VAR}={name})",
                        plugin=name,
                    )
                )
                continue
            if result is not None:
                found.append(result)
        return found, errors

    def tracked_files(self, root: str, policy: Policy) -> dict[str, str]:
        """Every plugin's tracked files under ``root`` (path -> content entity), merged; a
        plugin that fails raises :class:`PluginError` (reads cannot be gated without it)."""
        merged: dict[str, str] = {}
        for name, function in self._impls("envguard_tracked_files"):
            try:
                result = function(root=root, policy=policy)
            except Exception as exc:
                raise PluginError(name, f"envguard_tracked_files failed: {exc}") from exc
            merged.update(result or {})
        return merged

    def check_data_use(
        self, env: ResolvedEnvironment, data: DataLineage, policy: Policy
    ) -> list[Reason]:
        return self._checked(
            "envguard_check_data_use", "plugin-check", env=env, data=data, policy=policy
        )

    def check_promotion(self, request: PromotionRequest, policy: Policy) -> list[Reason]:
        return self._checked(
            "envguard_check_promotion", "plugin-check", request=request, policy=policy
        )

    def check_data_movement(self, move: DataMovement, policy: Policy) -> list[Reason]:
        return self._checked(
            "envguard_check_data_movement", "plugin-check", move=move, policy=policy
        )

    def scan(
        self, policy: Policy, store: Any, progress: Any
    ) -> list[tuple[str, list[Finding] | BaseException]]:
        """Every plugin's ``envguard_scan`` answer, or the exception it raised (the scan turns it
        into a finding: fail closed)."""
        answers: list[tuple[str, list[Finding] | BaseException]] = []
        for name, function in self._impls("envguard_scan"):
            try:
                result = function(policy=policy, store=store, progress=progress)
            except Exception as exc:  # noqa: BLE001 - every failure becomes a finding
                answers.append((name, exc))
                continue
            answers.append((name, list(result or ())))
        return answers

    def on_event(self, event: dict[str, object]) -> None:
        self._observe("envguard_on_event", event=event)

    def on_violation(self, decision: Decision, policy: Policy) -> None:
        self._observe("envguard_on_violation", decision=decision, policy=policy)

    def _observe(self, hook_name: str, **kwargs: Any) -> None:
        for name, function in self._impls(hook_name):
            try:
                function(**kwargs)
            except Exception:
                log.exception("plugin %s failed in %s; continuing", name, hook_name)

    def add_commands(self, cli: click.Group) -> None:
        for name, function in self._impls("envguard_add_commands"):
            try:
                function(cli=cli)
            except Exception as exc:  # noqa: BLE001 - a broken plugin must not break the CLI
                self.infos[name].status = "broken"
                self.infos[name].reason = f"envguard_add_commands failed: {exc}"
                log.warning("plugin %s could not add its commands: %s", name, exc)


def _with_plugin(reason: Reason, name: str) -> Reason:
    from dataclasses import replace

    return replace(reason, plugin=name)
