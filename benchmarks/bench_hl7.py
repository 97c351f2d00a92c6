"""HL7 benchmark: N SIU messages over one MLLP connection, one ACK awaited per message.

The listener runs as `reminders serve` runs it (python-hl7's asyncio server on its thread,
messages handled one at a time through the appointment and enrollment services). The sender
is python-hl7's blocking MLLPClient on one TCP connection: it sends a message and waits for
its ACK before the next, as interface engines do. The mix: every patient booked (S12), every
5th moved (S13), every 10th cancelled (S15). Figures: messages/s over the run and the ACK
round-trip latency (p50, p99); with --runs, the median of the runs' figures.
"""

from __future__ import annotations

import argparse
import statistics
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from hl7.client import MLLPClient

from benchmarks import common
from reminders.app import App
from reminders.integrations.hl7.listener import MllpListener
from reminders.integrations.wiring import hl7_handler
from reminders.settings import Settings

MAPPING = """\
patient_identifier: {{type: MR}}
sites:
  - id: main
    timezone: America/Chicago
    facilities: [RIVERSIDE]
consent: {{sms: granted}}
rules:
  - plan: {plan_id}
    codes:
      - {{system: C4, code: "0275T"}}
"""
SENT_FROM = datetime(2027, 1, 1, tzinfo=UTC)


def siu(event: str, index: int, control: int, procedure: date) -> str:
    """One SIU message for patient `index` (booked, moved or cancelled)."""
    phone = common.phone_number(index)  # +1AAANNNNNNN
    area, rest = phone[2:5], phone[5:]
    start = f"{procedure:%Y%m%d}143000+0000"
    sent = f"{SENT_FROM + timedelta(seconds=control):%Y%m%d%H%M%S}+0000"
    return (
        "\r".join(
            [
                f"MSH|^~\\&|EPIC|RIVERSIDE|REMINDERS|CLINIC|{sent}||SIU^{event}^SIU_S12|C{control}|P|2.5.1",
                f"SCH|A{index}^EPIC|A{index}^EPIC||||PATREQ^Patient request",
                f"PID|1||MRN{index}^^^RIVERSIDE^MR||Patient^Name{index}||||||||^PRN^CP^^1^{area}^{rest}|||ENG",
                "RGS|1",
                f"AIS|1||0275T^MILD^C4|{start}",
            ]
        )
        + "\r"
    )


def messages(count: int) -> list[str]:
    """The message mix, in sending order."""
    out: list[str] = []
    today = date.today()
    index = 0
    while len(out) < count:
        procedure = today + timedelta(days=30 + index % 60)
        out.append(siu("S12", index, len(out), procedure))
        if index % 5 == 4 and len(out) < count:
            out.append(siu("S13", index, len(out), procedure + timedelta(days=7)))
        if index % 10 == 9 and len(out) < count:
            out.append(siu("S15", index, len(out), procedure))
        index += 1
    return out


def run_once(url: str, work: Path, count: int) -> dict[str, Any]:
    """One run on a fresh database; returns msg/s and latency figures."""
    plans, templates, plan_id = common.plan_folders(work)
    mapping = work / "scheduling.yaml"
    mapping.write_text(MAPPING.format(plan_id=plan_id))
    settings = Settings(
        database_url=url,
        plans_dir=plans,
        templates_dir=templates,
        scheduling_mapping=mapping,
        _env_file=None,  # type: ignore[call-arg]
    )
    app = App.from_settings(settings)
    listener = MllpListener(hl7_handler(app), "127.0.0.1", 0)
    listener.start()
    batch = messages(count)
    latencies = []
    not_accepted = 0
    try:
        with MLLPClient("127.0.0.1", listener.port) as client:
            started = time.perf_counter()
            for message in batch:
                sent = time.perf_counter()
                ack = client.send_message(message)
                latencies.append(time.perf_counter() - sent)
                if b"MSA|AA|" not in ack:
                    not_accepted += 1
            elapsed = time.perf_counter() - started
    finally:
        listener.stop()
        counts = app.storage.feeds.outcome_counts()
        app.close()
    return {
        "messages": len(batch),
        "seconds": elapsed,
        "msg_per_s": len(batch) / elapsed,
        "p50_ms": common.percentile(latencies, 0.5) * 1000,
        "p99_ms": common.percentile(latencies, 0.99) * 1000,
        "not_aa": not_accepted,
        "outcomes": {outcome.value: n for outcome, n in sorted(counts.items())},
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=10000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--sqlite-only", action="store_true")
    parser.add_argument("--database-url", help="Run only on this database.")
    args = parser.parse_args(argv)
    rows = []
    for kind in common.database_kinds(args.database_url, not args.sqlite_only):
        results = []
        for _ in range(args.runs):
            with common.workdir() as work, common.database(kind, work) as url:
                results.append(run_once(url, work, args.messages))
            last = results[-1]
            print(
                f"{common.label(kind)} run {len(results)}: {last['msg_per_s']:.0f} msg/s, "
                f"p99 {last['p99_ms']:.1f} ms, outcomes {last['outcomes']}"
            )
        rows.append(
            [
                common.label(kind),
                results[0]["messages"],
                len(results),
                f"{statistics.median(r['msg_per_s'] for r in results):.0f}",
                f"{statistics.median(r['p50_ms'] for r in results):.1f}",
                f"{statistics.median(r['p99_ms'] for r in results):.1f}",
                sum(r["not_aa"] for r in results),
            ]
        )
    common.print_table(
        "SIU over one MLLP connection (median of runs)",
        ["database", "messages", "runs", "msg/s", "ACK p50 ms", "ACK p99 ms", "not AA"],
        rows,
    )


if __name__ == "__main__":
    main()
