"""The scheduling feeds' log (HL7 v2 and FHIR): what each booking message became and why a
refused one was refused, with its raw text while it is kept (like `reminders hl7 log`)."""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import Response

from reminders.console.context import console_context
from reminders.console.filters import read_filters
from reminders.console.guard import ConsoleRouter, SignedIn
from reminders.console.render import page
from reminders.roles import Role

routes = ConsoleRouter()
SOURCES = ["hl7", "fhir"]
PAGE_SIZE = 100


@routes.page("/feeds", Role.STAFF)
def feeds(request: Request, identity: SignedIn) -> Response:
    """The latest feed messages, refused ones first when asked, with the counts by outcome."""
    feeds = console_context(request).app.storage.feeds
    filters = read_filters(request, ("source", "refused"), {"source": SOURCES, "refused": ["1"]})
    source = filters.get("source")
    return page(
        request,
        "feeds.html",
        identity=identity,
        active="feeds",
        filters=filters,
        sources=SOURCES,
        counts=feeds.outcome_counts(source),
        messages=feeds.list_messages(
            source=source, refused_only=filters.get("refused") == "1", limit=PAGE_SIZE
        ),
        retention_days=console_context(request).app.settings.feed_raw_retention_days,
    )
