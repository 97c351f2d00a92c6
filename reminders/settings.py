"""Service settings from environment variables (prefix REMINDERS_) and an optional .env file."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from reminders.errors import InputProblem


class Settings(BaseSettings):
    """Everything the service reads from its environment; every field has a safe default."""

    model_config = SettingsConfigDict(
        env_prefix="REMINDERS_", env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

    database_url: str = Field(
        default="sqlite:///var/reminders.sqlite3",
        description="SQLAlchemy URL: a SQLite file by default; postgresql+psycopg://... to scale.",
    )
    plans_dir: Path = Path("plans")
    templates_dir: Path = Path("templates")
    default_region: str = "US"
    default_language: str = "en"

    clinic_name: str = "Your clinic"
    clinic_phone: str = "+15555550100"

    outbox_file: Path = Path("var/outbox.log")

    twilio_account_sid: str | None = None
    twilio_auth_token: str | None = None
    twilio_from_number: str | None = None
    twilio_messaging_service_sid: str | None = None
    twilio_base_url: str | None = Field(
        default=None, description="Override Twilio's API host (tests use a loopback stand-in)."
    )
    twilio_timeout_seconds: float = 15.0
    public_base_url: str = "http://127.0.0.1:8000"

    smtp_host: str | None = None
    smtp_port: int = 587
    smtp_username: str | None = None
    smtp_password: str | None = None
    smtp_starttls: bool = True
    smtp_from: str = "reminders@example.org"

    sms_per_second: float = 10.0
    email_per_second: float = 10.0
    max_attempts: int = 5
    retry_base_seconds: float = 30.0
    claim_timeout_seconds: float = 300.0
    dispatch_batch_size: int = 200

    api_host: str = "127.0.0.1"
    api_port: int = 8000

    scheduling_mapping: Path = Field(
        default=Path("integrations/scheduling.yaml"),
        description="Which booked appointments (HL7 SIU, FHIR Appointment) start which plan.",
    )
    hl7_mllp_port: int | None = Field(
        default=None, description="Listen for HL7 v2 over MLLP on this port (off when unset)."
    )
    hl7_mllp_host: str = "127.0.0.1"
    feed_raw_retention_days: int = Field(
        default=30, ge=1, description="Days a received HL7/FHIR message's raw text is kept."
    )

    # Replies (reminders/replies).
    no_reply_after_hours: int = Field(
        default=72,
        ge=1,
        le=720,
        description="Hours a relief check may go unanswered (1 to 720) before staff are "
        "flagged to call the patient.",
    )

    # The staff console and API access (reminders/access, reminders/console).
    session_timeout_minutes: float = Field(
        default=30, gt=0, description="Sign a console user out after this long idle."
    )
    sign_in_lock_after: int = Field(
        default=5, ge=1, description="Failed sign-ins in a row that lock a console user."
    )
    sign_in_lock_minutes: float = Field(default=15, gt=0, description="How long a lockout lasts.")
    password_hash_memory_kib: int = Field(
        default=65536, ge=8, description="Argon2id memory cost for staff passwords."
    )
    public_api_docs: bool = Field(
        default=False,
        description="Serve /docs and /openapi.json to all (else: an API key or a console admin).",
    )

    def live_sending_problems(self) -> list[InputProblem]:
        """What must be set before real texts or emails go to patients (none on the console)."""
        live = bool((self.twilio_account_sid and self.twilio_auth_token) or self.smtp_host)
        defaults = type(self).model_fields
        problems = []
        if live and self.clinic_name == defaults["clinic_name"].default:
            problems.append(
                InputProblem(
                    "REMINDERS_CLINIC_NAME", "set the clinic's name; every message names it"
                )
            )
        if live and self.clinic_phone == defaults["clinic_phone"].default:
            problems.append(
                InputProblem(
                    "REMINDERS_CLINIC_PHONE",
                    "set the number patients call; HELP replies and warning-sign messages give it",
                )
            )
        return problems
