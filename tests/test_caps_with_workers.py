"""SMS caps hold with several workers on one database: no patient gets more texts in a day than
the plan allows, counted from what the Twilio stand-in (its own process) created."""

from __future__ import annotations

import threading
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import pytest
from outbox_fixtures import due_now_requests
from plan_fixtures import CLINIC, write_demo_plan
from twilio_process import standin_process

from reminders.catalog import PlanCatalog
from reminders.channels.twilio_sms import TwilioSmsChannel
from reminders.dispatch.dispatcher import Dispatcher
from reminders.dispatch.settings import DispatchSettings
from reminders.store.storage import Storage
from reminders.testing.memory_channel import InMemoryChannel
from reminders.testing.twilio_standin import TEST_ACCOUNT_SID, TEST_AUTH_TOKEN

PATIENTS = 60
WORKERS = 3


def one_text_a_day_plan(root: Path) -> PlanCatalog:
    plans, templates = write_demo_plan(root)
    plan = plans / "demo.yaml"
    plan.write_text(plan.read_text().replace("per_day: 3", "per_day: 1"))
    return PlanCatalog(plans, templates)


@pytest.mark.parametrize("batch_size", [1, 7])
def test_no_patient_goes_over_the_daily_cap_with_three_workers(
    storage: Storage, database_url: str, tmp_path: Path, batch_size: int
) -> None:
    catalog = one_text_a_day_plan(tmp_path)
    now = datetime.now(UTC)
    storage.patients.enroll_many(
        due_now_requests(catalog, now, PATIENTS, steps=("discharge", "week-one")), now
    )
    reports: list[Counter[str]] = []
    with standin_process(tmp_path) as twilio:

        def work(name: str) -> None:
            own = Storage.open(database_url, migrate_schema=False)
            sms = TwilioSmsChannel(
                TEST_ACCOUNT_SID, TEST_AUTH_TOKEN, from_number="+15005550006", base_url=twilio.url
            )
            settings = DispatchSettings(
                clinic=CLINIC,
                batch_size=batch_size,
                per_second={"sms": 0},
            )
            channels = {"sms": sms, "email": InMemoryChannel("email")}
            dispatcher = Dispatcher(own, catalog, channels, settings, worker_id=name)
            reports.append(dispatcher.run_once().outcomes)
            sms.close()
            own.close()

        workers = [threading.Thread(target=work, args=(f"w{n}",)) for n in range(WORKERS)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join(timeout=120)
        created = twilio.created()

    texts = Counter(item["to"] for item in created)
    assert len(texts) == PATIENTS  # every patient got their first text today
    assert [to for to, count in texts.items() if count > 1] == []
    assert storage.message_views.status_counts() == {"sent": PATIENTS, "pending": PATIENTS}
    total = sum(reports, Counter())
    assert (total["sent"], total["deferred"]) == (PATIENTS, PATIENTS)
