"""``envguard s3 policy`` and ``envguard s3 check``."""

from __future__ import annotations

import json

import click

__all__ = ["s3_group"]

json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON.")


def _dump(document: object) -> str:
    return json.dumps(document, indent=2)


@click.group("s3")
def s3_group() -> None:
    """S3: bucket and IAM policies that enforce the boundary, and checks of real buckets."""


@s3_group.command("policy")
@click.option("--env", "env_name", required=True, help="The environment whose buckets to guard.")
@click.option("--bucket", help="Print only this bucket's policy (plain JSON, ready to apply).")
@click.option("--iam", "iam_only", is_flag=True, help="Print only the IAM policy (plain JSON).")
@click.option(
    "--exempt-principal",
    "exempt",
    multiple=True,
    metavar="ARN",
    help="A principal ARN (wildcards allowed) left out of the deny of other environments, "
    "e.g. a break-glass role. Repeatable.",
)
@json_option
def policy_command(
    env_name: str, bucket: str | None, iam_only: bool, exempt: tuple[str, ...], as_json: bool
) -> None:
    """Print the bucket policies and the IAM policy that enforce ENV's boundary in AWS.

    Each bucket policy denies principals whose IAM tag envguard.env is not ENV, PutObject
    without the object tag envguard.env=ENV or without server-side encryption, and plain HTTP.
    The IAM policy, for ENV's roles and users, allows ENV's locations and denies the others'.
    """
    from envguard.errors import InputError
    from envguard.runtime import current
    from envguard_s3.bucket_policy import (
        ENV_TAG,
        PRINCIPAL_TAG_KEY,
        bucket_policies,
        iam_policy,
    )

    policy = current().policy
    buckets = bucket_policies(policy, env_name, exempt)
    iam = iam_policy(policy, env_name)
    if bucket is not None:
        wanted = bucket.strip().lower()
        if wanted not in buckets:
            raise InputError(
                f"--bucket {bucket}",
                f"the policy assigns no location of {env_name!r} to it; its buckets: "
                f"{', '.join(buckets)}",
            )
        click.echo(_dump(buckets[wanted]))
        return
    if iam_only:
        click.echo(_dump(iam))
        return
    if as_json:
        data = {
            "environment": env_name,
            "principal_tag": PRINCIPAL_TAG_KEY,
            "object_tag": ENV_TAG,
            "bucket_policies": buckets,
            "iam_policy": iam,
        }
        click.echo(_dump(data))
        return
    for name, document in buckets.items():
        click.echo(f"# Bucket policy of s3://{name}. Apply it with:")
        click.echo(f"#   envguard s3 policy --env {env_name} --bucket {name} > {name}.json")
        click.echo(f"#   aws s3api put-bucket-policy --bucket {name} --policy file://{name}.json")
        click.echo(_dump(document))
        click.echo()
    click.echo(f"# IAM policy for the roles and users of {env_name!r}. Tag each of them:")
    click.echo(f"#   aws iam tag-role --role-name ROLE --tags Key={ENV_TAG},Value={env_name}")
    click.echo(f"#   envguard s3 policy --env {env_name} --iam > {env_name}-iam.json")
    click.echo(_dump(iam))


@s3_group.command("check")
@click.argument("buckets", nargs=-1)
@click.option(
    "--endpoint-url",
    envvar="AWS_ENDPOINT_URL",
    help="An S3-compatible server instead of AWS (default: $AWS_ENDPOINT_URL).",
)
@json_option
def check_command(buckets: tuple[str, ...], endpoint_url: str | None, as_json: bool) -> int:
    """Read each bucket's policy, default encryption and tags and report where it falls short.

    BUCKETS default to every bucket the policy knows. Exit 0 when all are fine, 1 when something
    falls short, 2 for a bucket the policy does not know or unusable credentials.
    """
    from envguard.runtime import current
    from envguard_s3.bucket_check import check_buckets

    reports = check_buckets(current().policy, buckets, endpoint_url)
    ok = all(r.ok for r in reports)
    if as_json:
        click.echo(_dump({"ok": ok, "buckets": [r.to_dict() for r in reports]}))
        return 0 if ok else 1
    for report in reports:
        owners = ", ".join(report.environments)
        if report.ok:
            click.echo(f"s3://{report.bucket} ({owners}): ok")
            continue
        click.echo(f"s3://{report.bucket} ({owners}): {len(report.findings)} problem(s)")
        for finding in report.findings:
            click.echo(f"  - {finding.rule}: {finding.message}")
            click.echo(f"    fix: {finding.remedy}")
    return 0 if ok else 1
