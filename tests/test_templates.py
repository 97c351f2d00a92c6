"""Templates render sandboxed and strict, escape only HTML, fall back by language; SMS sizing."""

from __future__ import annotations

from datetime import date, time
from pathlib import Path
from typing import Any

import pytest

from reminders.errors import TemplateError
from reminders.templating.render import TemplateRenderer
from reminders.templating.segments import sms_size

EMAIL = """\
{% block subject %}News from {{ clinic.name }}{% endblock %}
{% block text %}Hello from {{ clinic.name }}{% endblock %}
{% block html %}<p>Hello from {{ clinic.name }}</p>{% endblock %}
"""


def context(clinic_name: str = "Riverside Spine Clinic", **extra: Any) -> dict[str, Any]:
    return {
        "patient": {"first_name": "Alex"},
        "clinic": {"name": clinic_name, "phone": "(555) 010-0100"},
        "procedure": {"name": "MILD", "date": date(2026, 3, 10), "time": time(7, 30)},
        "settings": {},
        "step": {"id": "welcome"},
        "first_sms": True,
        **extra,
    }


def renderer_with(tmp_path: Path, files: dict[str, str]) -> TemplateRenderer:
    for name, text in files.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return TemplateRenderer(tmp_path)


def render_sms(tmp_path: Path, text: str, **extra: Any) -> str:
    renderer = renderer_with(tmp_path, {"demo/en/t.sms.j2": text})
    return renderer.render("demo", "t", "sms", "en", "en", context(**extra)).body


@pytest.mark.parametrize(
    "attack",
    [
        "{{ ''.__class__.__mro__ }}",
        "{{ ''.__class__.__mro__[1].__subclasses__() }}",
        "{{ cycler.__init__.__globals__ }}",
        "{{ patient.__class__ }}",
    ],
)
def test_sandbox_refuses_access_to_python_internals(tmp_path: Path, attack: str) -> None:
    with pytest.raises(TemplateError, match="unsafe"):
        render_sms(tmp_path, attack)


def test_unknown_variable_is_an_error_not_blank_text(tmp_path: Path) -> None:
    with pytest.raises(TemplateError, match="unknown variable"):
        render_sms(tmp_path, "Hi {{ patient.nickname }}")


def test_email_html_block_is_autoescaped(tmp_path: Path) -> None:
    renderer = renderer_with(tmp_path, {"demo/en/t.email.j2": EMAIL})
    message = renderer.render("demo", "t", "email", "en", "en", context("Smith & <Jones>"))
    assert message.html == "<p>Hello from Smith &amp; &lt;Jones&gt;</p>"


def test_email_text_and_subject_are_not_escaped(tmp_path: Path) -> None:
    renderer = renderer_with(tmp_path, {"demo/en/t.email.j2": EMAIL})
    message = renderer.render("demo", "t", "email", "en", "en", context("Smith & <Jones>"))
    assert (message.subject, message.body) == (
        "News from Smith & <Jones>",
        "Hello from Smith & <Jones>",
    )


def test_sms_is_not_escaped(tmp_path: Path) -> None:
    assert render_sms(tmp_path, "{{ clinic.name }}", clinic_name="A & B") == "A & B"


def test_email_without_html_block_has_no_html(tmp_path: Path) -> None:
    text_only = "{% block subject %}S{% endblock %}{% block text %}T{% endblock %}"
    renderer = renderer_with(tmp_path, {"demo/en/t.email.j2": text_only})
    assert renderer.render("demo", "t", "email", "en", "en", context()).html is None


def test_email_without_subject_block_is_an_error(tmp_path: Path) -> None:
    renderer = renderer_with(tmp_path, {"demo/en/t.email.j2": "{% block text %}T{% endblock %}"})
    with pytest.raises(TemplateError, match="an email template needs blocks: subject"):
        renderer.render("demo", "t", "email", "en", "en", context())


def test_missing_language_falls_back_to_the_default(tmp_path: Path) -> None:
    renderer = renderer_with(tmp_path, {"demo/en/t.sms.j2": "Hello {{ language }}"})
    message = renderer.render("demo", "t", "sms", "es", "en", context())
    assert (message.language, message.body, message.template_path) == (
        "en",
        "Hello en",
        "demo/en/t.sms.j2",
    )


def test_patient_language_is_used_when_its_template_exists(tmp_path: Path) -> None:
    renderer = renderer_with(
        tmp_path, {"demo/en/t.sms.j2": "Hello", "demo/es/t.sms.j2": "Hola {{ language }}"}
    )
    message = renderer.render("demo", "t", "sms", "es", "en", context())
    assert (message.language, message.body) == ("es", "Hola es")


def test_template_missing_in_every_language_is_an_error(tmp_path: Path) -> None:
    renderer = renderer_with(tmp_path, {"demo/en/other.sms.j2": "Hello"})
    with pytest.raises(TemplateError, match="template not found"):
        renderer.render("demo", "t", "sms", "es", "en", context())


def test_the_disk_is_asked_once_for_a_template_not_per_message(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    renderer = renderer_with(tmp_path, {"demo/en/t.sms.j2": "Hello"})
    asked: list[Path] = []
    is_file = Path.is_file

    def counting(path: Path) -> bool:
        asked.append(path)
        return is_file(path)

    monkeypatch.setattr(Path, "is_file", counting)
    for _ in range(100):
        renderer.render("demo", "t", "sms", "es", "en", context())

    assert len(asked) == 2  # once for the patient's language, once for the fallback


def test_a_template_added_later_is_used_after_forget(tmp_path: Path) -> None:
    renderer = renderer_with(tmp_path, {"demo/en/t.sms.j2": "Hello"})
    assert renderer.render("demo", "t", "sms", "es", "en", context()).language == "en"
    (tmp_path / "demo/es").mkdir()
    (tmp_path / "demo/es/t.sms.j2").write_text("Hola", encoding="utf-8")

    renderer.forget()  # what PlanCatalog.reload does

    message = renderer.render("demo", "t", "sms", "es", "en", context())
    assert (message.language, message.body) == ("es", "Hola")


def test_sms_lines_lose_trailing_space_and_outer_blank_lines(tmp_path: Path) -> None:
    assert render_sms(tmp_path, "\n\nHello   \nthere  \n\n") == "Hello\nthere"


def test_clock_filter_uses_a_plain_space_so_english_sms_stays_gsm7(tmp_path: Path) -> None:
    body = render_sms(tmp_path, "{{ procedure.time|clock('en') }}")
    assert body == "7:30 AM"
    assert sms_size(body).encoding == "GSM-7"


def test_longdate_filter_in_english(tmp_path: Path) -> None:
    assert render_sms(tmp_path, "{{ procedure.date|longdate('en') }}") == "Tuesday, March 10"


def test_longdate_filter_in_spanish_follows_spanish_word_order(tmp_path: Path) -> None:
    assert render_sms(tmp_path, "{{ procedure.date|longdate('es') }}") == "martes, 10 de marzo"


@pytest.mark.parametrize(
    ("text", "encoding", "units", "segments"),
    [
        ("", "GSM-7", 0, 0),
        ("a" * 160, "GSM-7", 160, 1),
        ("a" * 161, "GSM-7", 161, 2),
        ("a" * 306, "GSM-7", 306, 2),
        ("a" * 307, "GSM-7", 307, 3),
        ("Señor Müller, café à 9h", "GSM-7", 23, 1),
        ("€" * 80, "GSM-7", 160, 1),
        ("€" * 81, "GSM-7", 162, 2),
        ("a" * 159 + "^", "GSM-7", 161, 2),
        ("á" * 70, "UCS-2", 70, 1),
        ("á" * 71, "UCS-2", 71, 2),
        ("á" * 134, "UCS-2", 134, 2),
        ("á" * 135, "UCS-2", 135, 3),
        ("😀" * 35, "UCS-2", 70, 1),
        ("😀" * 36, "UCS-2", 72, 2),
    ],
    ids=[
        "empty",
        "gsm7-160-one-segment",
        "gsm7-161-two-segments",
        "gsm7-306-two-segments",
        "gsm7-307-three-segments",
        "gsm7-accents-é-ñ-ü-à",
        "gsm7-extension-80x2",
        "gsm7-extension-81x2",
        "gsm7-caret-counts-two",
        "ucs2-70-one-segment",
        "ucs2-71-two-segments",
        "ucs2-134-two-segments",
        "ucs2-135-three-segments",
        "emoji-35x2-one-segment",
        "emoji-36x2-two-segments",
    ],
)
def test_sms_size(text: str, encoding: str, units: int, segments: int) -> None:
    size = sms_size(text)
    assert (size.encoding, size.units, size.segments) == (encoding, units, segments)


@pytest.mark.parametrize("letter", ["á", "í", "ó", "ú"])
def test_one_spanish_accent_outside_gsm7_switches_the_whole_text_to_ucs2(letter: str) -> None:
    size = sms_size("a" * 100 + letter)
    assert (size.encoding, size.segments) == ("UCS-2", 2)


def test_segment_capacity_per_encoding() -> None:
    assert (sms_size("a").characters_per_segment, sms_size("á").characters_per_segment) == (
        153,
        67,
    )
