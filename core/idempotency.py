"""Idempotent writes: a retry with the same key gets the first outcome and writes nothing; the
same key with another body is a conflict. Keys are unique per API client in every table that
stores them, next to the request's hash."""

import hashlib
import json
from collections.abc import Callable
from typing import Any, TypeVar

from django.db import IntegrityError, transaction
from django.db.models import Model, QuerySet
from django.utils.translation import gettext_lazy as _

from core import sql
from core.errors import Conflict

M = TypeVar("M", bound=Model)
T = TypeVar("T")


def request_hash(body: Any, *, sort_keys: bool = False, compact: bool = False) -> str:
    """The fingerprint of a write's request, stored beside its key: a retry must hash alike.
    (Each caller keeps its body's shape, key order and spacing: stored hashes must stay
    valid.)"""
    separators = (",", ":") if compact else None
    text = json.dumps(body, sort_keys=sort_keys, separators=separators, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


class IdempotencyConflict(Conflict):
    code = "idempotency_conflict"
    message = _("This idempotency key was already used with a different request.")


def stored_write(
    rows: QuerySet[M], *, client: Model | None, key: str, request_hash: str
) -> M | None:
    """The row this client already wrote under ``key``, if any; ``IdempotencyConflict`` if it
    was written for another request."""
    # Asked before every write and mostly not there: a plain probe first, the row only if found.
    same_client, params = of_client(client)
    found = sql.fetch(
        f"SELECT id, request_hash FROM {rows.model._meta.db_table} "
        f"WHERE {same_client} AND idempotency_key = %s",
        [*params, key],
    )
    if not found:
        return None
    ((pk, stored_hash),) = found
    if stored_hash != request_hash:
        raise IdempotencyConflict(details={"idempotency_key": key})
    return rows.get(pk=pk)


def of_client(client: Model | None) -> tuple[str, list]:
    """The rows of this client (or of none), as SQL and its parameters. Asked as such: ``IS NOT
    DISTINCT FROM`` would not use the (client, key) index."""
    return ("client_id = %s", [client.pk]) if client else ("client_id IS NULL", [])


def idempotent_write(write: Callable[[], T], *, stored: Callable[[], T | None]) -> T:
    """Run ``write`` in a transaction. ``write`` must call ``stored()`` first thing once it
    holds its locks and answer with an earlier request's outcome if it finds one (that is where
    a retry is answered: looking before the locks would cost every new request a query and
    still have to look again). A concurrent request that stored the key first makes our insert
    fail on the key's unique constraint: we answer as its retry.
    """
    try:
        with transaction.atomic():
            return write()
    except IntegrityError:
        if (found := stored()) is not None:
            return found
        raise
