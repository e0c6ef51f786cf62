"""envguard's S3 integration (extra ``s3``): object tags, a cross-environment access guard
through botocore's event system, and bucket policy generation.

* ``envguard s3 policy`` and ``envguard s3 check`` (:mod:`envguard_s3.commands`);
* :func:`install` guards a boto3 client or session in this process (:mod:`envguard_s3.guard`);
* ``BOTOCORE_EXPERIMENTAL__PLUGINS=envguard=envguard_s3`` guards every botocore client of a
  process through :func:`initialize_client_plugin`.

This module stays light: boto3 and botocore are imported only inside the functions that use them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from envguard import hookimpl

if TYPE_CHECKING:
    import click

    from envguard.policy import Policy
    from envguard.scan import Finding, ScanProgress

__all__ = ["envguard_add_commands", "envguard_scan", "initialize_client_plugin", "install"]


@hookimpl
def envguard_add_commands(cli: click.Group) -> None:
    """Add the ``envguard s3`` command group."""
    from envguard_s3.commands import s3_group

    cli.add_command(s3_group)


@hookimpl
def envguard_scan(policy: Policy, store: Any, progress: ScanProgress) -> list[Finding]:
    """Sweep every object of the policy's buckets and prefixes (see :mod:`envguard_s3.scan`)."""
    from envguard_s3.scan import sweep

    return sweep(policy, store, progress)


def install(target: Any = None) -> Any:
    """Guard a botocore client, every S3 client a boto3/botocore session creates from now on, or
    (``None``) boto3's default session. See :func:`envguard_s3.guard.install`."""
    from envguard_s3.guard import install as _install

    return _install(target)


def initialize_client_plugin(client: Any) -> None:
    """botocore's plugin entry point (``BOTOCORE_EXPERIMENTAL__PLUGINS=envguard=envguard_s3``)."""
    from envguard_s3.guard import initialize_client_plugin as _initialize

    _initialize(client)
