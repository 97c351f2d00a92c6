"""Cross-checks a plan beyond its shape: unique steps, templates present and rendering."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from reminders.errors import PlanError, PlanProblem, TemplateError
from reminders.plan_check.compliance import cap_warnings, sms_content_problems
from reminders.plans.attributes import did_you_mean
from reminders.plans.loader import LoadedPlan, load_plan, plan_files
from reminders.plans.model import Plan, Step, StepChannel
from reminders.templating.context import sample_context
from reminders.templating.render import RenderedMessage, TemplateRenderer


@dataclass(frozen=True)
class RenderedSample:
    """One template rendered with sample data, for the check's summary."""

    plan_id: str
    step_id: str
    channel: str
    language: str
    message: RenderedMessage


@dataclass
class CheckResult:
    """Everything `plans check` found."""

    plans: list[LoadedPlan] = field(default_factory=list)
    problems: list[PlanProblem] = field(default_factory=list)
    samples: list[RenderedSample] = field(default_factory=list)

    @property
    def errors(self) -> list[PlanProblem]:
        """Problems that fail the check."""
        return [p for p in self.problems if p.severity == "error"]

    @property
    def warnings(self) -> list[PlanProblem]:
        """Problems worth reading that do not fail the check."""
        return [p for p in self.problems if p.severity == "warning"]


def channels_of(plan: Plan, step: Step) -> list[str]:
    """Every channel a step may be sent on (an SMS step that falls back to email: both)."""
    wanted = plan.channel_of(step)
    if wanted is StepChannel.PREFERRED or plan.email_if_undelivered(step):
        return ["sms", "email"]
    return [wanted.value]


def _email_fallbacks(loaded: LoadedPlan) -> Iterable[PlanProblem]:
    """`email_if_undelivered` on a step sent by email has nothing to fall back from."""
    plan = loaded.plan
    for index, step in enumerate(plan.steps):
        if step.email_if_undelivered and plan.channel_of(step) is StepChannel.EMAIL:
            yield PlanProblem(
                str(loaded.path),
                loaded.line("steps", index, "email_if_undelivered"),
                f"steps[{index}].email_if_undelivered",
                "this step goes by email: only an SMS (or preferred-channel) step can fall back "
                "to email when the text is undelivered",
            )


def _unique_step_ids(loaded: LoadedPlan) -> Iterable[PlanProblem]:
    seen: dict[str, int] = {}
    for index, step in enumerate(loaded.plan.steps):
        if step.id in seen:
            first = loaded.line("steps", seen[step.id], "id")
            yield PlanProblem(
                str(loaded.path),
                loaded.line("steps", index, "id"),
                f"steps[{index}].id",
                f"step id '{step.id}' is already used by the step at line {first}",
            )
        else:
            seen[step.id] = index


def _languages(loaded: LoadedPlan) -> Iterable[PlanProblem]:
    plan = loaded.plan
    if plan.defaults.language not in plan.languages:
        yield PlanProblem(
            str(loaded.path),
            loaded.line("defaults", "language"),
            "defaults.language",
            f"'{plan.defaults.language}' is not one of the plan's languages "
            f"({', '.join(plan.languages)})",
        )


def _when_conditions(loaded: LoadedPlan) -> Iterable[PlanProblem]:
    """Every `when:` names a declared attribute with values it can take."""
    plan = loaded.plan
    for index, step in enumerate(plan.steps):
        for name, expected in step.when.items():
            where = (str(loaded.path), loaded.line("steps", index, "when", name))
            field = f"steps[{index}].when.{name}"
            declaration = plan.attributes.get(name)
            if not plan.attributes:
                yield PlanProblem(
                    *where,
                    field,
                    f"'{name}' is not declared under attributes:, so enrollment cannot refuse a "
                    "misspelt name or value; declare it (see docs/plans.md)",
                    severity="warning",
                )
                continue
            if declaration is None:
                yield PlanProblem(*where, field, did_you_mean(name, list(plan.attributes)))
                continue
            for value in expected if isinstance(expected, list) else [expected]:
                try:
                    declaration.read(value)
                except ValueError as exc:
                    yield PlanProblem(*where, field, str(exc))


def _templates(
    loaded: LoadedPlan, renderer: TemplateRenderer, samples: list[RenderedSample]
) -> Iterable[PlanProblem]:
    plan = loaded.plan
    file = str(loaded.path)
    for index, step in enumerate(plan.steps):
        line = loaded.line("steps", index, "template")
        where = f"steps[{index}].template"
        for channel in channels_of(plan, step):
            for language in plan.languages:
                name = renderer.template_name(
                    plan.templates_folder, language, step.template, channel
                )
                if not (renderer.templates_dir / name).is_file():
                    if language == plan.defaults.language:
                        yield PlanProblem(
                            file,
                            line,
                            where,
                            f"{channel} template missing: {renderer.templates_dir / name}",
                        )
                    else:
                        yield PlanProblem(
                            file,
                            line,
                            where,
                            f"no {language} {channel} template ({name}); "
                            f"{language} patients get the {plan.defaults.language} text",
                            "warning",
                        )
                    continue
                if channel == "email":
                    yield from _text_outside_blocks(renderer, name, where)
                yield from _render_sample(loaded, renderer, step, index, channel, language, samples)


def _text_outside_blocks(
    renderer: TemplateRenderer, name: str, where: str
) -> Iterable[PlanProblem]:
    for line, text in renderer.text_outside_blocks(name):
        yield PlanProblem(
            str(renderer.templates_dir / name),
            line,
            where,
            f"text outside the subject/text/html blocks is never sent: {text!r}; "
            "move it into a block or delete it",
        )


def _render_sample(
    loaded: LoadedPlan,
    renderer: TemplateRenderer,
    step: Step,
    index: int,
    channel: str,
    language: str,
    samples: list[RenderedSample],
) -> Iterable[PlanProblem]:
    plan = loaded.plan
    variants = [True, False] if channel == "sms" else [False]
    for first_sms in variants:
        try:
            message = renderer.render(
                plan.templates_folder,
                step.template,
                channel,
                language,
                plan.defaults.language,
                sample_context(plan, step.id, first_sms=first_sms),
            )
        except TemplateError as exc:
            file = str(renderer.templates_dir / exc.template)
            yield PlanProblem(
                file, exc.line, f"steps[{index}].template", str(exc).split(": ", 1)[-1]
            )
            return
        size = message.sms
        if size is not None and size.segments > plan.defaults.sms_max_segments:
            yield PlanProblem(
                str(renderer.templates_dir / message.template_path),
                None,
                f"steps[{index}].template",
                f"renders to {size.units} {size.encoding} characters = {size.segments} SMS "
                f"segments; the plan allows {plan.defaults.sms_max_segments} "
                "(defaults.sms_max_segments)",
            )
        if channel == "sms" and first_sms:
            template_file = str(renderer.templates_dir / message.template_path)
            yield from sms_content_problems(
                loaded, f"steps[{index}].template", template_file, message
            )
        if first_sms or channel == "email":
            samples.append(RenderedSample(plan.id, step.id, channel, language, message))


def check_loaded(loaded: LoadedPlan, renderer: TemplateRenderer) -> CheckResult:
    """Run every cross-check on a plan that parsed."""
    result = CheckResult(plans=[loaded])
    result.problems.extend(_unique_step_ids(loaded))
    result.problems.extend(_languages(loaded))
    result.problems.extend(_when_conditions(loaded))
    result.problems.extend(_email_fallbacks(loaded))
    result.problems.extend(_templates(loaded, renderer, result.samples))
    result.problems.extend(cap_warnings(loaded))
    return result


def check_paths(paths: list[Path], templates_dir: Path) -> CheckResult:
    """Check every plan file under the given files and folders; collect all problems."""
    renderer = TemplateRenderer(templates_dir)
    result = CheckResult()
    files = plan_files(paths)
    if not files:
        result.problems.append(
            PlanProblem(", ".join(map(str, paths)) or ".", None, "files", "no plan files found")
        )
    for file in files:
        try:
            loaded = load_plan(file)
        except PlanError as exc:
            result.problems.extend(exc.problems)
            continue
        one = check_loaded(loaded, renderer)
        result.plans.extend(one.plans)
        result.problems.extend(one.problems)
        result.samples.extend(one.samples)
    return result
