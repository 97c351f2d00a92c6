"""The staff views of messages: a patient's timeline, the messages list, what waits, counts."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, literal, select, tuple_

from reminders.errors import NotFoundError
from reminders.store.database import Database
from reminders.store.message_records import MessageCursor, MessageView
from reminders.store.queries import view, view_query
from reminders.store.records import ContactChannel
from reminders.store.schema import Message, MessageStatus, Patient, UTCDateTime


class MessageViews:
    """Read-only: messages as staff see them, beside the outbox that writes them."""

    def __init__(self, database: Database) -> None:
        self.database = database

    def timeline(self, external_id: str) -> list[MessageView]:
        """Every message of one patient, in due order."""
        with self.database.session() as session:
            if session.scalar(select(Patient.id).where(Patient.external_id == external_id)) is None:
                raise NotFoundError(f"no patient '{external_id}'")
            rows = session.execute(
                view_query()
                .where(Patient.external_id == external_id)
                .order_by(Message.due_at, Message.id)
            ).all()
        return [view(row) for row in rows]

    def list_messages(
        self,
        *,
        status: MessageStatus | None = None,
        since: datetime | None = None,
        limit: int = 500,
        before: MessageCursor | None = None,
        channel: ContactChannel | None = None,
        plan_id: str | None = None,
    ) -> list[MessageView]:
        """Messages across patients, newest activity first, filtered by status and time.

        Read in the order of an (updated_at, id) index, with or without the status in front;
        `before` continues a list after the last row of the previous page (keyset paging).
        """
        query = view_query()
        if status:
            query = query.where(Message.status == status.value)
        if since:
            query = query.where(Message.updated_at >= since)
        if channel:
            query = query.where(Message.channel == channel)
        if plan_id:
            query = query.where(Message.plan_id == plan_id)
        if before is not None:
            after_row = tuple_(literal(before.updated_at, UTCDateTime()), literal(before.id))
            query = query.where(tuple_(Message.updated_at, Message.id) < after_row)
        query = query.order_by(Message.updated_at.desc(), Message.id.desc()).limit(limit)
        with self.database.session() as session:
            return [view(row) for row in session.execute(query).all()]

    def upcoming(self, *, waiting: bool = False, limit: int = 50) -> list[MessageView]:
        """Pending messages in the order they want attention (the claim index's order);
        `waiting`: only those held back with a reason (quiet hours, a cap, an opt-out)."""
        query = view_query().where(Message.status == MessageStatus.PENDING.value)
        if waiting:
            query = query.where(Message.status_reason.is_not(None))
        query = query.order_by(Message.next_attempt_at, Message.id).limit(limit)
        with self.database.session() as session:
            return [view(row) for row in session.execute(query).all()]

    def delivery_problems(self, since: datetime | None = None) -> list[tuple[str | None, int]]:
        """(error code, how many) of failed and undelivered messages, the commonest first."""
        query = select(Message.error_code, func.count()).where(
            Message.status.in_([MessageStatus.FAILED.value, MessageStatus.UNDELIVERED.value])
        )
        if since:
            query = query.where(Message.updated_at >= since)
        query = query.group_by(Message.error_code).order_by(func.count().desc())
        with self.database.session() as session:
            return [(code, int(count)) for code, count in session.execute(query)]

    def status_counts(self) -> dict[MessageStatus, int]:
        """How many messages are in each status."""
        with self.database.session() as session:
            rows = session.execute(select(Message.status, func.count()).group_by(Message.status))
            return {MessageStatus(status): int(count) for status, count in rows}
