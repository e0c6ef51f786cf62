"""Origin tags set by S3 in the upload request itself, during ``dvc push``.

DVC uploads through s3fs, which sends its requests with an aiobotocore client. The guard
(:mod:`envguard_dvc.guard`) attaches an :class:`UploadTagger` to the client of each S3 remote a
push resolves, through botocore's event system (no monkey-patching):

- ``before-parameter-build.s3.PutObject`` and ``...CreateMultipartUpload``: the request carries
  ``Tagging=envguard.env=ENV&envguard.origin=ENV`` (the ``x-amz-tagging`` header), merged into
  any tags the caller already set, so S3 stores the object with its tags: no extra request;
- ``after-call.s3.PutObject`` and ``...CompleteMultipartUpload``: the key is recorded in
  :attr:`UploadTagger.uploaded` only once S3 has answered that the object is stored (a multipart
  upload counts when the upload it completes was created with the tags).

A principal allowed ``s3:PutObject`` but not ``s3:PutObjectTagging`` is refused a tagged upload
on AWS (AccessDenied): ``needs-retry`` sends that request again at once without the tags, and the
tagger stops tagging on upload, so the push goes on as without envguard, and the sweep's
``PutObjectTagging`` reports each object it could not tag.

What is not in :attr:`UploadTagger.uploaded` (objects DVC skipped because they were already on
the remote, an upload that failed or went through another client) is tagged afterwards by the
sweep with ``PutObjectTagging`` (:mod:`envguard_dvc.tagging`). So the record errs only on the
side of tagging again. Once the push is over, :meth:`UploadTagger.detach` makes the handlers
inert: a client DVC keeps using tags nothing more.
"""

from __future__ import annotations

import threading
import weakref
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode

__all__ = ["UploadTagger"]

HANDLER_ID = "envguard-dvc-upload-tags"


class _ClientHook:
    """The handlers registered once on one client; they serve whichever tagger is attached."""

    def __init__(self) -> None:
        self.tagger: UploadTagger | None = None

    def before_write(self, params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        tagger = self.tagger
        if tagger is not None and not tagger.refused and isinstance(params.get("Key"), str):
            caller = params.get("Tagging")
            params["Tagging"] = tagger.merged(caller)
            context[HANDLER_ID] = (tagger, params["Key"])
            context[f"{HANDLER_ID}-caller"] = caller

    def needs_retry(self, response: Any, request_dict: dict[str, Any], **_: Any) -> int | None:
        """S3 refused a tagged upload (a principal without ``s3:PutObjectTagging``): send it
        again at once with the caller's own tags only, and tag nothing more on upload; the
        sweep then tries ``PutObjectTagging`` and reports what fails."""
        context = request_dict.get("context") or {}
        marked = context.get(HANDLER_ID)
        headers = request_dict.get("headers")
        if marked is None or not isinstance(headers, dict) or not isinstance(response, tuple):
            return None
        http_response, parsed = response
        code = parsed.get("Error", {}).get("Code") if isinstance(parsed, dict) else None
        if getattr(http_response, "status_code", None) != 403 or code != "AccessDenied":
            return None
        marked[0].refused = True
        del context[HANDLER_ID]
        caller = context.pop(f"{HANDLER_ID}-caller", None)
        tag_header = next((h for h in headers if h.lower() == "x-amz-tagging"), None)
        if tag_header is not None:
            del headers[tag_header]
        if isinstance(caller, str) and caller:
            headers["x-amz-tagging"] = caller
        return 0

    def before_complete(self, params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        if self.tagger is not None:
            context[HANDLER_ID] = (self.tagger, params.get("UploadId"))

    def after_put(self, http_response: Any, context: dict[str, Any], **_: Any) -> None:
        tagger, key = context.get(HANDLER_ID, (None, None))
        if tagger is not None and _succeeded(http_response):
            tagger.stored(key)

    def after_create(
        self, http_response: Any, parsed: dict[str, Any], context: dict[str, Any], **_: Any
    ) -> None:
        tagger, key = context.get(HANDLER_ID, (None, None))
        if tagger is not None and _succeeded(http_response) and parsed.get("UploadId"):
            tagger.created(str(parsed["UploadId"]), key)

    def after_complete(
        self, http_response: Any, parsed: dict[str, Any], context: dict[str, Any], **_: Any
    ) -> None:
        tagger, upload_id = context.get(HANDLER_ID, (None, None))
        if tagger is not None and _succeeded(http_response) and "Error" not in parsed:
            tagger.completed(upload_id)


_hooks: weakref.WeakKeyDictionary[Any, _ClientHook] = weakref.WeakKeyDictionary()
_hooks_lock = threading.Lock()


def _succeeded(http_response: Any) -> bool:
    status = getattr(http_response, "status_code", None)
    return isinstance(status, int) and 200 <= status < 300


class UploadTagger:
    """The tags of one remote, and the keys S3 confirmed it stored with them."""

    def __init__(self, tags: dict[str, str]) -> None:
        self.tags = dict(tags)
        self.uploaded: set[str] = set()
        self.clients = 0  # clients attached: 0 means every object is tagged by the sweep
        self.refused = False  # S3 refused a tagged upload: no more tags on upload
        self._multipart: dict[str, str] = {}  # upload id -> key, created with the tags
        self._lock = threading.Lock()
        self._attached: list[_ClientHook] = []

    def merged(self, caller: object) -> str:
        """The ``Tagging`` of a write: the caller's tags, ours replacing any of the same key."""
        pairs = parse_qsl(caller, keep_blank_values=True) if isinstance(caller, str) else []
        kept = [(k, v) for k, v in pairs if k not in self.tags]
        return urlencode([*kept, *sorted(self.tags.items())], quote_via=quote)

    def stored(self, key: object) -> None:
        if isinstance(key, str):
            with self._lock:
                self.uploaded.add(key)

    def created(self, upload_id: str, key: object) -> None:
        if isinstance(key, str):
            with self._lock:
                self._multipart[upload_id] = key

    def completed(self, upload_id: object) -> None:
        with self._lock:
            key = self._multipart.pop(upload_id, None) if isinstance(upload_id, str) else None
            if key is not None:
                self.uploaded.add(key)

    def attach(self, client: Any) -> None:
        """Tag what ``client`` (a botocore or aiobotocore S3 client) uploads from now on."""
        with _hooks_lock:
            hook = _hooks.get(client)
            if hook is None:
                hook = _hooks[client] = _ClientHook()
                events = client.meta.events
                for operation in ("PutObject", "CreateMultipartUpload"):
                    events.register(
                        f"before-parameter-build.s3.{operation}",
                        hook.before_write,
                        unique_id=f"{HANDLER_ID}-before-{operation}",
                    )
                    events.register(
                        f"needs-retry.s3.{operation}",
                        hook.needs_retry,
                        unique_id=f"{HANDLER_ID}-retry-{operation}",
                    )
                events.register(
                    "before-parameter-build.s3.CompleteMultipartUpload",
                    hook.before_complete,
                    unique_id=f"{HANDLER_ID}-before-complete",
                )
                for event, handler in (
                    ("after-call.s3.PutObject", hook.after_put),
                    ("after-call.s3.CreateMultipartUpload", hook.after_create),
                    ("after-call.s3.CompleteMultipartUpload", hook.after_complete),
                ):
                    events.register(event, handler, unique_id=f"{HANDLER_ID}-{event}")
            if hook.tagger is not self:
                hook.tagger = self
                self._attached.append(hook)
                self.clients += 1

    def detach(self) -> None:
        """Stop tagging: the clients' handlers stay registered but do nothing."""
        with _hooks_lock:
            for hook in self._attached:
                if hook.tagger is self:
                    hook.tagger = None
            self._attached.clear()
