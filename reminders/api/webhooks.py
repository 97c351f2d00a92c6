"""Twilio's webhooks: inbound SMS and delivery status callbacks, verified by signature.

Twilio signs each request with the account's auth token over the URL it was configured
with (settings.public_base_url + path) and the form fields; a request that is unsigned or
signed wrongly is refused with 403 before anything is changed; a body over 64 KB is refused
with 413 while it is read, before the signature is checked (`reminders.api.body_limit`).
A delivery report that arrives before its send is recorded (outcomes are committed per
batch) is kept and applied after the commit (ReplyService.handle_status): Twilio does not post
a status callback again on an error answer.
"""

from __future__ import annotations

import logging
from typing import Annotated
from urllib.parse import parse_qsl

from fastapi import APIRouter, Depends, HTTPException, Request, Response
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import ImmutableMultiDict
from twilio.request_validator import (
    SIGNATURE_HEADER,
    SIGNATURE_SETTINGS_HEADER,
    RequestValidator,
    get_signature_algorithm,
)
from twilio.twiml.messaging_response import MessagingResponse

from reminders.api.context import ApiContext, Context
from reminders.replies.service import InboundSms

log = logging.getLogger(__name__)

router = APIRouter(prefix="/twilio", include_in_schema=False)

INBOUND_PATH = "/twilio/inbound"
STATUS_PATH = "/twilio/status"

Form = ImmutableMultiDict[str, str]


def webhook_url(ctx: ApiContext, path: str, query: str) -> str:
    """The URL Twilio was configured with for `path`, as it signed it."""
    base = ctx.app.settings.public_base_url.rstrip("/")
    return f"{base}{path}" + (f"?{query}" if query else "")


async def _signed_form(request: Request, ctx: ApiContext, path: str) -> Form:
    """The form Twilio posted, once its signature checks out; 403 otherwise."""
    token = ctx.app.settings.twilio_auth_token
    signature = request.headers.get(SIGNATURE_HEADER)
    if not token:
        log.warning("refusing a Twilio webhook: twilio_auth_token is not set")
        raise HTTPException(403, "webhook signatures cannot be checked on this server")
    if not signature:
        raise HTTPException(403, "missing X-Twilio-Signature")
    raw = await request.body()  # at most MAX_WEBHOOK_BODY_BYTES: BodyLimitMiddleware read it
    form = ImmutableMultiDict(parse_qsl(raw.decode("utf-8", "replace"), keep_blank_values=True))
    algorithm = get_signature_algorithm(request.headers.get(SIGNATURE_SETTINGS_HEADER))
    url = webhook_url(ctx, path, request.url.query)
    if not RequestValidator(token).validate(url, form, signature, algorithm):
        log.warning("refusing a Twilio webhook on %s: bad signature", path)
        raise HTTPException(403, "invalid X-Twilio-Signature")
    return form


def _field(form: Form, name: str, max_length: int, *, required: bool = True) -> str:
    value = form.get(name, "").replace("\x00", "")
    if required and not value:
        raise HTTPException(400, f"missing {name}")
    if len(value) > max_length:
        raise HTTPException(400, f"{name} is too long")
    return value


async def _inbound_form(request: Request, ctx: Context) -> Form:
    return await _signed_form(request, ctx, INBOUND_PATH)


async def _status_form(request: Request, ctx: Context) -> Form:
    return await _signed_form(request, ctx, STATUS_PATH)


def twiml(text: str | None) -> Response:
    """A TwiML answer: one SMS back, or none."""
    answer = MessagingResponse()
    if text:
        answer.message(text)
    return Response(content=str(answer), media_type="application/xml")


@router.post("/inbound")
async def inbound(form: Annotated[Form, Depends(_inbound_form)], ctx: Context) -> Response:
    """An SMS from a patient: opt-out, opt-in, help, or a reply."""
    sms = InboundSms(
        provider_message_id=_field(form, "MessageSid", 64)
        if "MessageSid" in form
        else _field(form, "SmsSid", 64),
        from_phone=_field(form, "From", 32),
        to_phone=_field(form, "To", 32, required=False),
        body=_field(form, "Body", 5000, required=False),
    )
    result = await run_in_threadpool(ctx.replies.handle_inbound, sms)
    return twiml(result.reply)


@router.post("/status")
async def delivery_status(form: Annotated[Form, Depends(_status_form)], ctx: Context) -> Response:
    """A delivery report for an SMS we sent."""
    sid = _field(form, "MessageSid", 64)
    status = _field(form, "MessageStatus", 32).lower()
    code = _field(form, "ErrorCode", 32, required=False) or None
    to = _field(form, "To", 32, required=False) or None
    await run_in_threadpool(ctx.replies.handle_status, sid, status, code, to)
    # An undelivered text may have queued its step by email; a report kept until its send is
    # committed is applied after the pass.
    ctx.wake_dispatcher()
    return Response(status_code=204)
