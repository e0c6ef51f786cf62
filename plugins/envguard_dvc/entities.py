"""How DVC's things are named in the lineage store.

DVC addresses content by md5; the lineage store by sha256. envguard records both and links them:

=================================  =====================================================
``dvc-md5:HEX``                    content by DVC's md5 (``HEX.dir`` for a directory's
                                   listing; ``dvc-md5-dos2unix:HEX`` for DVC 2 outputs)
``sha256:HEX``                     the same content by sha256, when envguard could read it
``dvc-remote:NAME/HEX``            the object holding that content in DVC remote NAME
``dvc-stage:REPO:NAME``            a pipeline stage (or a ``.dvc`` file) of repository REPO
=================================  =====================================================

Edges: ``dvc-md5`` <-> ``sha256`` in both directions (relation ``same-content``), so an origin
recorded under either name is found from the other; a file of a tracked directory -> the
directory (``part-of``); each dependency of a stage -> each of its outputs, and each file of an
output directory (``derived``, or ``masked`` for a masking step with a proof).
"""

from __future__ import annotations

__all__ = ["content_entity", "md5_of", "object_entity", "stage_entity"]


def content_entity(md5: str, hash_name: str = "md5") -> str:
    return f"dvc-{hash_name}:{md5}"


def md5_of(entity: str) -> str | None:
    """The md5 in a ``dvc-md5:`` entity, else None."""
    return entity.split(":", 1)[1] if entity.startswith("dvc-md5") else None


def object_entity(remote: str, md5: str) -> str:
    return f"dvc-remote:{remote}/{md5}"


def stage_entity(repo: str, name: str) -> str:
    return f"dvc-stage:{repo}:{name}"
