"""Render a step's template for one patient: sandboxed, strict, autoescaped only for HTML.

Layout: ``templates/<plan folder>/<language>/<template>.sms.j2`` for texts and
``<template>.email.j2`` for emails, whose blocks ``subject``, ``text`` and (optional) ``html``
become the message's parts. A missing language falls back to the plan's default language.
"""

from __future__ import annotations

import difflib
import re
import traceback
from dataclasses import dataclass
from datetime import date, time
from pathlib import Path
from typing import Any

import jinja2
from babel import Locale
from babel.dates import format_date, format_time
from jinja2 import nodes

from reminders.errors import TemplateError
from reminders.templating.limits import (
    BoundedSandbox,
    RenderLimitExceeded,
    bounded_output,
    render_budget,
)
from reminders.templating.segments import SmsSize, sms_size

KINDS = {"sms": "sms.j2", "email": "email.j2"}


@dataclass(frozen=True)
class RenderedMessage:
    """The text of one message as the patient will receive it."""

    channel: str
    body: str
    subject: str | None = None
    html: str | None = None
    language: str = "en"
    template_path: str = ""

    @property
    def sms(self) -> SmsSize | None:
        """Encoded size, for SMS only."""
        return sms_size(self.body) if self.channel == "sms" else None


def _environment(templates_dir: Path, autoescape: bool) -> BoundedSandbox:
    env = BoundedSandbox(
        loader=jinja2.FileSystemLoader(str(templates_dir)),
        undefined=jinja2.StrictUndefined,
        autoescape=autoescape,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=False,
        auto_reload=False,
    )
    env.add_filter("longdate", _long_date)
    env.add_filter("clock", _clock)
    return env


def _long_date(value: date, language: str = "en") -> str:
    """Weekday, month and day in the language: "Tuesday, March 3", "martes, 3 de marzo"."""
    locale = Locale.parse(language)
    skeletons = locale.datetime_skeletons
    pattern = str(skeletons.get("MMMMEd") or skeletons.get("MMMEd") or "EEEE, MMMM d")
    pattern = re.sub(r"(?<!E)E{1,3}(?!E)", "EEEE", pattern)
    pattern = re.sub(r"(?<!M)M{3}(?!M)", "MMMM", pattern)
    return format_date(value, format=pattern, locale=locale)


def _clock(value: time, language: str = "en") -> str:
    """ "9:30 AM" in the patient's language."""
    return format_time(value, format="short", locale=language).replace("\u202f", " ")


def _names(context: dict[str, Any], prefix: str = "", depth: int = 2) -> dict[str, str]:
    """Each variable's last name -> its full dotted name (patient.first_name), two levels deep."""
    names: dict[str, str] = {}
    for key, value in context.items():
        full = f"{prefix}{key}"
        names.setdefault(key, full)
        if isinstance(value, dict) and depth > 1:
            for leaf, dotted in _names(value, f"{full}.", depth - 1).items():
                names.setdefault(leaf, dotted)
    return names


def explain_undefined(message: str, context: dict[str, Any]) -> str:
    """Jinja's "'dict object' has no attribute 'frist_name'" as the author can act on it."""
    match = re.search(r"'([^']+)' is undefined|has no attribute '([^']+)'", message)
    if match is None:
        return f"unknown variable: {message}"
    wrong = match.group(1) or match.group(2)
    names = _names(context)
    close = difflib.get_close_matches(wrong, list(names), n=1)
    hint = f"; did you mean {names[close[0]]}?" if close else ""
    return f"unknown variable '{wrong}'{hint}"


def _template_line(exc: BaseException, name: str) -> int | None:
    """The line of template `name` where `exc` was raised, from its traceback."""
    frames = traceback.extract_tb(exc.__traceback__)
    return next(
        (f.lineno for f in reversed(frames) if f.filename and f.filename.endswith(name)), None
    )


def _failure(exc: Exception) -> str:
    """What went wrong in a template's own code, in words where Python's are cryptic."""
    known = {
        RecursionError: "a macro calls itself too deeply",
        OverflowError: "a number is too large",
        MemoryError: "needs too much memory",
    }
    return known.get(type(exc), f"{type(exc).__name__}: {exc}")


def _tidy(text: str) -> str:
    """Strip each line's trailing space and the text's outer blank lines."""
    return "\n".join(line.rstrip() for line in text.strip().splitlines())


class TemplateRenderer:
    """Finds and renders templates below one folder; compiled templates are cached."""

    def __init__(self, templates_dir: Path) -> None:
        self.templates_dir = templates_dir
        self._text_env = _environment(templates_dir, autoescape=False)
        self._html_env = _environment(templates_dir, autoescape=True)
        self._resolved: dict[tuple[str, str, str, str, str], tuple[str, str]] = {}
        self._outside_blocks: dict[str, list[tuple[int, str]]] = {}

    def forget(self) -> None:
        """Read template files from disk again (compiled templates and found files are kept
        until then, as the service sends thousands of messages from the same few files)."""
        self._resolved.clear()
        self._outside_blocks.clear()
        for env in (self._text_env, self._html_env):
            if env.cache is not None:
                env.cache.clear()

    def template_name(self, folder: str, language: str, template: str, channel: str) -> str:
        """The loader name of one template file."""
        return f"{folder}/{language}/{template}.{KINDS[channel]}"

    def resolve(
        self, folder: str, template: str, channel: str, language: str, fallback: str
    ) -> tuple[str, str]:
        """The template file to use and its language, falling back to the default language.

        A file found is remembered (until `forget`): the disk is not asked again per message.
        """
        key = (folder, template, channel, language, fallback)
        found = self._resolved.get(key)
        if found is not None:
            return found
        for lang in dict.fromkeys([language, fallback]):
            name = self.template_name(folder, lang, template, channel)
            if (self.templates_dir / name).is_file():
                self._resolved[key] = (name, lang)
                return name, lang
        raise TemplateError(
            self.template_name(folder, fallback, template, channel),
            f"template not found under {self.templates_dir}",
        )

    def render(
        self,
        folder: str,
        template: str,
        channel: str,
        language: str,
        fallback_language: str,
        context: dict[str, Any],
    ) -> RenderedMessage:
        """Render one message; raise TemplateError naming the file and line on any mistake."""
        name, used = self.resolve(folder, template, channel, language, fallback_language)
        context = {**context, "language": used}
        try:
            with render_budget():
                if channel == "sms":
                    body = _tidy(
                        bounded_output(self._text_env.get_template(name).generate(context))
                    )
                    return RenderedMessage("sms", body, language=used, template_path=name)
                parts = self._email_parts(name, context)
        except jinja2.TemplateSyntaxError as exc:
            raise TemplateError(name, f"syntax error: {exc.message}", exc.lineno) from None
        except jinja2.UndefinedError as exc:
            message = explain_undefined(str(exc.message), context)
            raise TemplateError(name, message, _template_line(exc, name)) from None
        except RenderLimitExceeded as exc:
            raise TemplateError(name, str(exc), _template_line(exc, name)) from None
        except TemplateError:
            raise
        except jinja2.TemplateError as exc:
            raise TemplateError(name, str(exc), _template_line(exc, name)) from None
        except Exception as exc:  # a template's own arithmetic or filters failed for this patient
            raise TemplateError(name, _failure(exc), _template_line(exc, name)) from None
        return RenderedMessage(
            "email",
            parts["text"],
            subject=parts["subject"],
            html=parts.get("html"),
            language=used,
            template_path=name,
        )

    def text_outside_blocks(self, name: str) -> list[tuple[int, str]]:
        """What an email template writes outside its blocks, with its line: never sent, since
        only the `subject`, `text` and `html` blocks become the message. Empty for a template
        that does not parse (rendering reports that). Kept per file until `forget()`."""
        if name not in self._outside_blocks:
            self._outside_blocks[name] = self._find_text_outside_blocks(name)
        return list(self._outside_blocks[name])

    def _find_text_outside_blocks(self, name: str) -> list[tuple[int, str]]:
        env = self._text_env
        assert env.loader is not None
        source, _, _ = env.loader.get_source(env, name)
        try:
            tree = env.parse(source, name)
        except jinja2.TemplateSyntaxError:
            return []
        found: list[tuple[int, str]] = []

        def visit(node: nodes.Node) -> None:
            if isinstance(node, nodes.Block):
                return
            if not isinstance(node, nodes.Output):
                for inner in node.iter_child_nodes():
                    visit(inner)
                return
            for child in node.nodes:
                if not isinstance(child, nodes.TemplateData):
                    found.append((child.lineno, "{{ ... }}"))
                elif text := child.data.strip():
                    before = child.data[: child.data.index(text[0])]
                    found.append((child.lineno + before.count("\n"), text.splitlines()[0]))

        visit(tree)
        return found

    def _email_parts(self, name: str, context: dict[str, Any]) -> dict[str, str]:
        text_template = self._text_env.get_template(name)
        missing = {"subject", "text"} - set(text_template.blocks)
        if missing:
            raise TemplateError(
                name, f"an email template needs blocks: {', '.join(sorted(missing))}"
            )
        text_ctx = text_template.new_context(context)
        parts = {
            "subject": " ".join(
                _tidy(bounded_output(text_template.blocks["subject"](text_ctx))).split()
            ),
            "text": _tidy(bounded_output(text_template.blocks["text"](text_ctx))),
        }
        html_template = self._html_env.get_template(name)
        if "html" in html_template.blocks:
            html_ctx = html_template.new_context(context)
            parts["html"] = _tidy(bounded_output(html_template.blocks["html"](html_ctx)))
        return parts
