"""`/health`: whether the database answers and each channel can send (no API key needed)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from reminders.api.context import Context
from reminders.api.schemas import ChannelHealthOut, HealthOut
from reminders.diagnostics import check_database

router = APIRouter(tags=["health"])


@router.get(
    "/health",
    response_model=HealthOut,
    responses={503: {"model": HealthOut, "description": "The database or a channel is down."}},
)
def health(context: Context) -> JSONResponse:
    """200 when the database answers and no channel is stopped, else 503 with the reasons."""
    database = check_database(context.app.storage.database.engine)
    states = context.service.dispatcher.health.states() if context.service else []
    body = HealthOut(
        status="ok" if database.ok and all(s.ok for s in states) else "degraded",
        database=database.detail,
        dispatcher="running" if context.service else "not running in this process",
        channels=[
            ChannelHealthOut(
                name=s.name,
                state="ok" if s.ok else "stopped",
                reason=s.reason,
                since=s.since,
                next_check=s.probe_at,
            )
            for s in states
        ],
    )
    return JSONResponse(
        body.model_dump(mode="json"), status_code=200 if body.status == "ok" else 503
    )
