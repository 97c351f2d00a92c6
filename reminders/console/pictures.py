"""The patient's timeline and leg-pain chart as drawing instructions for server-rendered SVG.

Pure layout: messages, replies and outcomes in, positions out. The procedure day sits in the
middle of the timeline; each step is a marker on its local date, stacked when several share a
day. Templates draw the shapes; styling is by class (the CSP allows no inline style).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Literal
from zoneinfo import ZoneInfo

from reminders.schedule_diff import MessageStatus
from reminders.store.message_records import MessageView
from reminders.store.reply_records import InboundView, OutcomeView

WIDTH = 960
AXIS_Y = 150
HALF = 440  # from the procedure day to the furthest marker
STACK = 22
MIN_SPAN_DAYS = 7
CHART_WIDTH = 480
CHART_HEIGHT = 220
CHART_LEFT = 44
CHART_TOP = 16
CHART_BOTTOM = 186


MarkerShape = Literal["filled", "cross", "square", "open"]
SHAPES: dict[MessageStatus, MarkerShape] = {
    MessageStatus.SENT: "filled",
    MessageStatus.FAILED: "cross",
    MessageStatus.UNDELIVERED: "cross",
    MessageStatus.SKIPPED: "square",
    MessageStatus.CANCELLED: "square",
}  # pending and sending: an open circle


@dataclass(frozen=True)
class Marker:
    """One step on the timeline."""

    x: float
    y: float
    day: date
    message: MessageView
    replies: list[InboundView] = field(default_factory=list)

    @property
    def shape(self) -> MarkerShape:
        """How the template draws the marker: done, went wrong, held back, or still to go."""
        return SHAPES.get(self.message.status, "open")

    @property
    def label(self) -> str:
        """What a pointer or a screen reader is told about the marker."""
        why = f": {self.message.status_reason}" if self.message.status_reason else ""
        return f"{self.day.isoformat()} {self.message.step_id} ({self.message.channel}), " + (
            f"{self.message.status}{why}"
        )


@dataclass(frozen=True)
class Tick:
    """A labelled mark on the time axis (weeks from the procedure)."""

    x: float
    label: str


@dataclass(frozen=True)
class TimelinePicture:
    """Everything the template draws for one enrollment's timeline."""

    width: int
    height: int
    axis_y: int
    centre: float
    procedure_date: date
    markers: list[Marker]
    ticks: list[Tick]


def local_day(message: MessageView) -> date:
    """The patient's local date of a message: when it was sent, else when it is due."""
    at: datetime = message.sent_at or message.due_at
    return at.astimezone(ZoneInfo(message.timezone)).date()


def timeline_picture(
    procedure_date: date, messages: list[MessageView], replies: list[InboundView]
) -> TimelinePicture:
    """Lay out the markers of one enrollment's messages around its procedure day."""
    by_message: dict[int, list[InboundView]] = defaultdict(list)
    for reply in replies:
        if reply.in_reply_to_message_id is not None:
            by_message[reply.in_reply_to_message_id].append(reply)
    days = [local_day(m) for m in messages]
    span = max([MIN_SPAN_DAYS, *(abs((d - procedure_date).days) for d in days)])
    centre = WIDTH / 2

    def x_of(day: date) -> float:
        return round(centre + (day - procedure_date).days / span * HALF, 1)

    stacked: dict[date, int] = defaultdict(int)
    markers = []
    for message, day in zip(messages, days, strict=True):
        level = stacked[day]
        stacked[day] += 1
        markers.append(
            Marker(x_of(day), AXIS_Y - min(level, 5) * STACK, day, message, by_message[message.id])
        )
    height = AXIS_Y + 40
    weeks = max(1, span // 7)
    step = max(1, weeks // 4)
    ticks = [
        Tick(x_of(procedure_date.fromordinal(procedure_date.toordinal() + 7 * w)), _week(w))
        for w in range(-weeks, weeks + 1, step)
        if w != 0
    ]
    return TimelinePicture(WIDTH, height, AXIS_Y, centre, procedure_date, markers, ticks)


def _week(weeks: int) -> str:
    return f"{weeks:+d} wk"


@dataclass(frozen=True)
class ChartPoint:
    """One relief-check answer on the leg-pain chart."""

    x: float
    y: float
    weeks: float
    pain: int
    received: date


@dataclass(frozen=True)
class PainChart:
    """Leg pain (0-10) over the weeks after the procedure."""

    width: int
    height: int
    left: int
    top: int
    bottom: int
    right: int
    points: list[ChartPoint]
    grid: list[tuple[float, int]]  # (y, pain level)
    week_ticks: list[tuple[float, int]]  # (x, weeks)

    @property
    def polyline(self) -> str:
        """The points joined, as an SVG polyline's `points`."""
        return " ".join(f"{p.x},{p.y}" for p in self.points)


def pain_chart(procedure_date: date, outcomes: list[OutcomeView], zone: str) -> PainChart | None:
    """The chart of a patient's leg-pain answers, or None when they gave none."""
    answers = sorted(
        (o for o in outcomes if o.leg_pain is not None), key=lambda o: (o.received_at, o.id)
    )
    if not answers:
        return None
    tz = ZoneInfo(zone)
    days = [(o.received_at.astimezone(tz).date() - procedure_date).days for o in answers]
    last_week = max(8, -(-max(days) // 7))
    right = CHART_WIDTH - 12

    def x_of(weeks: float) -> float:
        return round(CHART_LEFT + weeks / last_week * (right - CHART_LEFT), 1)

    def y_of(pain: int) -> float:
        return round(CHART_BOTTOM - pain / 10 * (CHART_BOTTOM - CHART_TOP), 1)

    points = [
        ChartPoint(
            x_of(d / 7),
            y_of(int(o.leg_pain or 0)),
            round(d / 7, 1),
            int(o.leg_pain or 0),
            o.received_at.astimezone(tz).date(),
        )
        for o, d in zip(answers, days, strict=True)
    ]
    return PainChart(
        CHART_WIDTH,
        CHART_HEIGHT,
        CHART_LEFT,
        CHART_TOP,
        CHART_BOTTOM,
        right,
        points,
        grid=[(y_of(level), level) for level in (0, 2, 4, 6, 8, 10)],
        week_ticks=[(x_of(w), w) for w in range(0, last_week + 1, 2)],
    )


@dataclass(frozen=True)
class PlanMarker:
    """One step of a plan on its day relative to the procedure."""

    x: float
    y: float
    day: int
    step_id: str
    channel: str
    skipped: bool


def plan_picture(
    procedure_date: date, steps: list[tuple[str, date, str, bool]]
) -> tuple[TimelinePicture, list[PlanMarker]]:
    """A plan's steps, (step, local date, channel, skipped), drawn around the procedure day."""
    span = max([MIN_SPAN_DAYS, *(abs((d - procedure_date).days) for _, d, _, _ in steps)])
    centre = WIDTH / 2
    stacked: dict[date, int] = defaultdict(int)
    markers = []
    for step_id, day, channel, skipped in steps:
        level = stacked[day]
        stacked[day] += 1
        x = round(centre + (day - procedure_date).days / span * HALF, 1)
        y = AXIS_Y - min(level, 5) * STACK
        markers.append(PlanMarker(x, y, (day - procedure_date).days, step_id, channel, skipped))
    weeks = max(1, span // 7)
    step = max(1, weeks // 4)
    ticks = [
        Tick(round(centre + 7 * w / span * HALF, 1), _week(w))
        for w in range(-weeks, weeks + 1, step)
        if w != 0
    ]
    frame = TimelinePicture(WIDTH, AXIS_Y + 40, AXIS_Y, centre, procedure_date, [], ticks)
    return frame, markers
