"""Read plan files from YAML, keeping each key's line so every error can point at it."""

from __future__ import annotations

import difflib
import re
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from reminders.errors import PlanError, PlanProblem
from reminders.plans.model import Plan

Path_ = tuple[str | int, ...]

MAX_PLAN_BYTES = 1_000_000
_BaseLoader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _PlanYamlLoader(_BaseLoader):  # type: ignore[valid-type,misc]
    """SafeLoader (libyaml's when built in) without YAML 1.1's surprises: "9:30" stays text."""


_PlanYamlLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:int"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_PlanYamlLoader.add_implicit_resolver(
    "tag:yaml.org,2002:int",
    re.compile(r"^(?:[-+]?0b[0-1_]+|[-+]?0[0-7_]+|[-+]?(?:0|[1-9][0-9_]*)|[-+]?0x[0-9a-fA-F_]+)$"),
    list("-+0123456789"),
)


class AliasRefused(yaml.MarkedYAMLError):
    """A plan file used a YAML alias: refused, since aliases can nest into huge or endless data."""


def _to_python(
    node: yaml.Node,
    path: Path_,
    lines: dict[Path_, int],
    loader: yaml.SafeLoader,
    seen: set[int],
) -> Any:
    """Turn a composed YAML node into plain data, recording the line of every path.

    A node met twice is an alias (`*name`): refused, which also stops billion-laughs files and
    self-referencing aliases before they are expanded.
    """
    if id(node) in seen:
        raise AliasRefused(
            context=field_name(path),
            problem="YAML aliases (*name) are not allowed in plan files; write the value out",
            problem_mark=_mark_at(line_of(lines, path) or node.start_mark.line + 1),
        )
    seen.add(id(node))
    lines[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        result: dict[str, Any] = {}
        for key_node, value_node in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                raise AliasRefused(
                    context=field_name(path),
                    problem="YAML merge keys (<<) are not allowed in plan files; "
                    "write the keys out",
                    problem_mark=key_node.start_mark,
                )
            key = loader.construct_object(key_node, deep=True)
            key = str(key)
            if key in result:
                raise yaml.MarkedYAMLError(
                    problem=f"duplicate key '{key}'", problem_mark=key_node.start_mark
                )
            lines[(*path, key)] = key_node.start_mark.line + 1
            result[key] = _to_python(value_node, (*path, key), lines, loader, seen)
            lines[(*path, key)] = key_node.start_mark.line + 1
        return result
    if isinstance(node, yaml.SequenceNode):
        return [
            _to_python(item, (*path, i), lines, loader, seen) for i, item in enumerate(node.value)
        ]
    return loader.construct_object(node, deep=True)


def _mark_at(line: int) -> yaml.Mark:
    return yaml.Mark("plan", 0, line - 1, 0, "", 0)


def read_yaml_with_lines(text: str) -> tuple[Any, dict[Path_, int]]:
    """Parse YAML text into data plus a map from key path to 1-based line number."""
    loader = _PlanYamlLoader(text)
    try:
        node = loader.get_single_node()
        lines: dict[Path_, int] = {}
        data = None if node is None else _to_python(node, (), lines, loader, set())
    finally:
        loader.dispose()
    return data, lines


def line_of(lines: dict[Path_, int], loc: Path_) -> int | None:
    """The line of the deepest known prefix of a path."""
    for end in range(len(loc), -1, -1):
        if loc[:end] in lines:
            return lines[loc[:end]]
    return None


def field_name(loc: Path_) -> str:
    """Render a path as a plan author would read it: steps[2].offset.days."""
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "(plan)"


def _model_at(loc: Path_, root: type[BaseModel] = Plan) -> type[BaseModel] | None:
    """The pydantic model that owns the mapping at a path (for suggesting known keys)."""
    model: Any = root
    for part in loc:
        if isinstance(part, int):
            continue
        fields = getattr(model, "model_fields", {})
        field = fields.get(part)
        if field is None:
            return None
        annotation = field.annotation
        inner = getattr(annotation, "__args__", (annotation,))
        model = next((a for a in inner if isinstance(a, type) and issubclass(a, BaseModel)), None)
        if model is None:
            return None
    return model if isinstance(model, type) and issubclass(model, BaseModel) else None


def _explain(error: Any, root: type[BaseModel] = Plan) -> str:
    """A plan author's message for one pydantic error."""
    loc = tuple(error["loc"])
    kind = error["type"]
    if kind == "extra_forbidden":
        owner = _model_at(loc[:-1], root)
        known = sorted(owner.model_fields) if owner else []
        close = difflib.get_close_matches(str(loc[-1]), known, n=1)
        hint = f"; did you mean '{close[0]}'?" if close else ""
        allowed = f" (expected one of: {', '.join(known)})" if known else ""
        return f"unknown key '{loc[-1]}'{hint}{allowed}"
    if kind == "missing":
        return "required field is missing"
    message = str(error["msg"])
    return message.removeprefix("Value error, ")


def problems_from_validation(
    error: ValidationError,
    file: str,
    lines: dict[Path_, int],
    root: type[BaseModel] = Plan,
) -> list[PlanProblem]:
    """One PlanProblem per pydantic error, each with file, line and field (keys of `root`)."""
    problems = []
    for item in error.errors():
        loc = tuple(item["loc"])
        problems.append(
            PlanProblem(file, line_of(lines, loc), field_name(loc), _explain(item, root))
        )
    return problems


class LoadedPlan:
    """A validated plan with where it came from and the line of each of its keys."""

    def __init__(self, plan: Plan, path: Path, lines: dict[Path_, int]) -> None:
        self.plan = plan
        self.path = path
        self.lines = lines

    def line(self, *loc: str | int) -> int | None:
        """The line of a key path in the plan file."""
        return line_of(self.lines, loc)


def parse_plan(text: str, file: str) -> tuple[Plan, dict[Path_, int]]:
    """Validate plan YAML text; raise PlanError with every problem of the file."""
    try:
        data, lines = read_yaml_with_lines(text)
    except AliasRefused as exc:
        line = exc.problem_mark.line + 1 if exc.problem_mark else None
        raise PlanError([PlanProblem(file, line, str(exc.context), str(exc.problem))]) from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        raise PlanError(
            [PlanProblem(file, line, "yaml", f"not valid YAML: {exc.problem or exc}")]
        ) from None
    except yaml.YAMLError as exc:
        raise PlanError([PlanProblem(file, None, "yaml", f"not valid YAML: {exc}")]) from None
    except RecursionError:
        raise PlanError(
            [PlanProblem(file, None, "yaml", "nested too deeply; a plan needs a few levels")]
        ) from None
    if not isinstance(data, dict):
        raise PlanError([PlanProblem(file, 1, "(plan)", "expected a mapping of plan keys")])
    try:
        plan = Plan.model_validate(data)
    except ValidationError as exc:
        raise PlanError(problems_from_validation(exc, file, lines)) from None
    return plan, lines


def read_plan_text(path: Path) -> str:
    """A plan file's text, refused past MAX_PLAN_BYTES (read no further) or when not UTF-8."""
    file = str(path)
    try:
        with path.open("rb") as stream:
            raw = stream.read(MAX_PLAN_BYTES + 1)
    except OSError as exc:
        raise PlanError([PlanProblem(file, None, "file", f"cannot read: {exc.strerror}")]) from None
    if len(raw) > MAX_PLAN_BYTES:
        raise PlanError(
            [
                PlanProblem(
                    file,
                    None,
                    "file",
                    f"larger than {MAX_PLAN_BYTES:,} bytes, the limit for a plan file; "
                    "split it into several plans",
                )
            ]
        )
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise PlanError(
            [PlanProblem(file, line, "file", "not UTF-8 text; save the file as UTF-8")]
        ) from None


def load_plan(path: Path) -> LoadedPlan:
    """Load and validate one plan file (structure only; `check` does the cross-checks)."""
    plan, lines = parse_plan(read_plan_text(path), str(path))
    return LoadedPlan(plan, path, lines)


def plan_files(paths: list[Path]) -> list[Path]:
    """Expand folders into their *.yaml / *.yml files, in a stable order."""
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            files.extend(sorted([*path.glob("*.yaml"), *path.glob("*.yml")]))
        else:
            files.append(path)
    return files


def load_plans(plans_dir: Path) -> dict[str, LoadedPlan]:
    """Load every plan in a folder, keyed by plan id; raise PlanError listing all problems."""
    loaded: dict[str, LoadedPlan] = {}
    problems: list[PlanProblem] = []
    for file in plan_files([plans_dir]):
        try:
            item = load_plan(file)
        except PlanError as exc:
            problems.extend(exc.problems)
            continue
        if item.plan.id in loaded:
            problems.append(
                PlanProblem(
                    str(file),
                    item.line("id"),
                    "id",
                    f"plan id '{item.plan.id}' is also used by {loaded[item.plan.id].path}",
                )
            )
            continue
        loaded[item.plan.id] = item
    if problems:
        raise PlanError(problems)
    return loaded
