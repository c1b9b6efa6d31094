"""Plans: the planner's `submit_plan` arguments validated, overlaps serialized, subtasks layered into waves.

`parse_plan` collects every problem before refusing, each as a sentence the planner model can act on, so
one retry can fix them all. Everything here is pure: no git, no filesystem.
"""

from __future__ import annotations

import heapq
import json
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from gitteam.errors import GitteamError
from gitteam.locks.ownership import Ownership
from gitteam.locks.paths import PathRefused, normalize_entry, show_path
from gitteam.names import ref_component_problem

# gitteam's own agent names: the integration branch and review, and the planner's transcript and status row
_SUBTASK_FIELDS = ("id", "title", "instructions", "files", "depends_on", "provides", "consumes", "priority")
PRIORITIES = ("critical", "normal", "low")  # how much model a subtask deserves: [routing] maps them to models
_PLAN_FIELDS = ("subtasks", "summary")
_SUBTASK_SHAPE = '{"id", "title", "instructions", "files": [path, ...], "depends_on": [id, ...]}'
_INTERFACE_EXAMPLE = '"calc/ops.py: def power(base: float, exp: int) -> float"'


@dataclass(frozen=True, slots=True)
class Subtask:
    id: str
    title: str
    instructions: str
    files: tuple[str, ...]
    depends_on: tuple[str, ...] = ()
    provides: tuple[str, ...] = ()  # interfaces it defines for siblings: "path: signature"
    consumes: tuple[str, ...] = ()  # interfaces it uses, a sibling's or the repository's: "path: signature"
    priority: str = "normal"  # one of PRIORITIES

    @property
    def ownership(self) -> Ownership:
        return Ownership(self.files)

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "id": self.id,
            "title": self.title,
            "instructions": self.instructions,
            "files": list(self.files),
            "depends_on": list(self.depends_on),
        }
        if self.provides:  # left out when empty: plans (and journals) without interfaces read as before
            data["provides"] = list(self.provides)
        if self.consumes:
            data["consumes"] = list(self.consumes)
        if self.priority != "normal":  # left out when normal: plans without priorities read as before
            data["priority"] = self.priority
        return data


@dataclass(frozen=True, slots=True)
class Plan:
    subtasks: tuple[Subtask, ...]
    summary: str = ""

    def by_id(self) -> dict[str, Subtask]:
        return {subtask.id: subtask for subtask in self.subtasks}

    def replacing(self, old: str, new: Subtask) -> Plan:
        """The plan with subtask `old` replaced by `new` in its place, and what depended on `old` depending on
        `new` (a failed subtask's next attempt, run/replan.py)."""
        moved = tuple(new if s.id == old else replace(s, depends_on=tuple(new.id if d == old else d
                                                                             for d in s.depends_on))
                      for s in self.subtasks)
        return Plan(moved, self.summary)

    def to_json(self) -> dict[str, Any]:
        """The plan in the shape of `submit_plan`'s arguments (so `parse_plan` accepts it too)."""
        return {"subtasks": [subtask.to_json() for subtask in self.subtasks], "summary": self.summary}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Plan:
        """Exact inverse of `to_json` (no normalization, no validation beyond the shape)."""
        try:
            subtasks = tuple(
                Subtask(
                    id=_typed(item["id"], str),
                    title=_typed(item["title"], str),
                    instructions=_typed(item["instructions"], str),
                    files=tuple(_typed(path, str) for path in _typed(item["files"], list)),
                    depends_on=tuple(_typed(dep, str) for dep in _typed(item.get("depends_on", []), list)),
                    provides=tuple(_typed(sig, str) for sig in _typed(item.get("provides", []), list)),
                    consumes=tuple(_typed(sig, str) for sig in _typed(item.get("consumes", []), list)),
                    priority=_typed(item.get("priority", "normal"), str),
                )
                for item in _typed(data["subtasks"], list)
            )
            return cls(subtasks, _typed(data.get("summary", ""), str))
        except (KeyError, TypeError, AttributeError) as exc:
            raise PlanError([f"the stored plan is malformed ({exc!r}); start a new run"]) from exc


def _typed(value: Any, kind: type) -> Any:
    if not isinstance(value, kind):
        raise TypeError(f"expected {kind.__name__}, got {type(value).__name__}")
    return value


@dataclass(frozen=True, slots=True)
class Handoff:
    """What a merged subtask hands its dependents: the interfaces it declared and the ones its merged code holds
    (their signatures as written), the files it changed, and what its coder said it did and decided."""

    id: str
    title: str
    provides: tuple[str, ...]
    interfaces: tuple[str, ...]  # the provided names' signatures in the merged code; empty when none was found
    files_changed: tuple[str, ...]
    summary: str

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"id": self.id, "title": self.title}
        if self.provides:
            data["provides"] = list(self.provides)
            data["interfaces_as_merged"] = list(self.interfaces)
        data["files_changed"] = list(self.files_changed)
        data["summary"] = self.summary
        return data


class PlanError(GitteamError):
    """A plan that cannot run. `problems` are sentences for the planner model; str() is one line."""

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems = list(problems)
        first = self.problems[0] if self.problems else "no details"
        more = f" (and {len(self.problems) - 1} more problems)" if len(self.problems) > 1 else ""
        super().__init__(f"the plan was refused: {first}{more}")

    def for_model(self) -> str:
        """All problems as a tool result: what the planner reads before it calls submit_plan again."""
        lines = [f"The plan was refused; {len(self.problems)} problem(s):"]
        lines += [f"- {problem}" for problem in self.problems]
        lines.append("Fix all of them and call submit_plan again with the whole plan.")
        return "\n".join(lines)




def _kind(value: object) -> str:
    names = {str: "a string", list: "a list", dict: "an object", bool: "a boolean", type(None): "null"}
    return names.get(type(value), "a number" if isinstance(value, int | float) else type(value).__name__)


def _quote(value: str) -> str:
    return json.dumps(value, ensure_ascii=False)


@dataclass(slots=True)
class _Draft:
    """One subtask as far as it could be read; None fields had a problem that is already reported."""

    index: int
    id: str | None
    title: str | None
    instructions: str | None
    files: tuple[str, ...] | None
    depends_on: tuple[str, ...]
    provides: tuple[str, ...] = ()
    consumes: tuple[str, ...] = ()
    priority: str = "normal"

    @property
    def label(self) -> str:
        return f"subtask {_quote(self.id)}" if self.id is not None else f"subtask #{self.index + 1}"

    def build(self) -> Subtask | None:
        if self.id is None or self.title is None or self.instructions is None or self.files is None:
            return None
        return Subtask(self.id, self.title, self.instructions, self.files, self.depends_on, self.provides,
                       self.consumes, self.priority)


def parse_plan(raw: object) -> Plan:
    """Validate `submit_plan`'s arguments (`{"subtasks": [...], "summary": ...}`, or the bare subtasks
    list) and return the Plan, or raise PlanError with every problem found."""
    problems: list[str] = []
    items, summary = _unpack(raw, problems)
    read = (_read_subtask(index, item, problems) for index, item in enumerate(items))
    drafts = [draft for draft in read if draft is not None]
    _check_ids(drafts, problems)
    _link_interfaces(drafts, problems)
    _check_dependencies(drafts, problems)
    subtasks = [subtask for draft in drafts if (subtask := draft.build()) is not None]
    if problems or len(subtasks) != len(drafts):
        raise PlanError(problems or ["some subtasks are incomplete"])
    return Plan(tuple(subtasks), summary)


def _unpack(raw: object, problems: list[str]) -> tuple[list[object], str]:
    summary = ""
    if isinstance(raw, Mapping):
        unknown = sorted(str(key) for key in raw if key not in _PLAN_FIELDS)
        if unknown:
            problems.append(
                f"submit_plan got unknown argument(s) {', '.join(map(_quote, unknown))}; "
                "its arguments are subtasks and summary."
            )
        value = raw.get("summary", "")
        if isinstance(value, str):
            summary = value
        elif value is not None:
            problems.append(f"summary must be a string, not {_kind(value)}.")
        if "subtasks" not in raw:
            problems.append(f"submit_plan needs subtasks: a list of objects like {_SUBTASK_SHAPE}.")
            return [], summary
        raw = raw["subtasks"]
    if not isinstance(raw, list):
        problems.append(f"subtasks must be a list of objects like {_SUBTASK_SHAPE}, not {_kind(raw)}.")
        return [], summary
    if not raw:
        problems.append("The plan has no subtasks; submit at least one.")
    return raw, summary


def _read_subtask(index: int, item: object, problems: list[str]) -> _Draft | None:
    if not isinstance(item, Mapping):
        problems.append(f"subtask #{index + 1} must be an object like {_SUBTASK_SHAPE}, not {_kind(item)}.")
        return None
    raw_id = item.get("id")
    draft = _Draft(index, raw_id if isinstance(raw_id, str) else None, None, None, None, ())
    label = draft.label
    unknown = sorted(str(key) for key in item if key not in _SUBTASK_FIELDS)
    if unknown:
        problems.append(
            f"{label} has unknown field(s) {', '.join(map(_quote, unknown))}; "
            f"the fields are {', '.join(_SUBTASK_FIELDS)}."
        )
    if "id" not in item:
        problems.append(f'{label} has no "id": give it a short unique id such as "api-client".')
    elif raw_id is None or not isinstance(raw_id, str):
        problems.append(f'{label}: "id" must be a string such as "api-client", not {_kind(raw_id)}.')
    draft.title = _read_text(item, "title", label, problems)
    draft.instructions = _read_text(item, "instructions", label, problems)
    draft.files = _read_files(item, label, problems)
    draft.depends_on = _read_depends_on(item, label, problems)
    draft.provides = _read_interfaces(item, "provides", label, problems)
    draft.consumes = _read_interfaces(item, "consumes", label, problems)
    priority = item.get("priority", "normal")
    if priority not in PRIORITIES:
        problems.append(f'{label}: "priority" must be one of {", ".join(map(_quote, PRIORITIES))}, not '
                        f'{_quote(priority) if isinstance(priority, str) else _kind(priority)}.')
    else:
        draft.priority = priority
    return draft


def _read_text(item: Mapping[Any, Any], field: str, label: str, problems: list[str]) -> str | None:
    if field not in item:
        problems.append(f'{label} has no "{field}": give it a non-empty string.')
        return None
    value = item[field]
    if not isinstance(value, str) or not value.strip():
        shown = "an empty string" if isinstance(value, str) else _kind(value)
        problems.append(f'{label}: "{field}" must be a non-empty string, not {shown}.')
        return None
    return value


def _read_files(item: Mapping[Any, Any], label: str, problems: list[str]) -> tuple[str, ...] | None:
    advice = "list every path it will create, change or delete, relative to the repository root"
    if "files" not in item:
        problems.append(f'{label} has no "files": {advice}.')
        return None
    value = item["files"]
    if not isinstance(value, list):
        problems.append(f'{label}: "files" must be a list of paths, not {_kind(value)}: {advice}.')
        return None
    if not value:
        problems.append(f'{label} has an empty "files" list: {advice}.')
        return None
    files: list[str] = []
    ok = True
    for position, path in enumerate(value):
        if not isinstance(path, str):
            problems.append(f"{label}: files[{position}] must be a path string, not {_kind(path)}.")
            ok = False
            continue
        try:
            files.append(normalize_entry(path))
        except PathRefused as exc:
            problems.append(
                f"{label}: file {show_path(path)} {exc.reason}; list it relative to the repository root, "
                "or drop it."
            )
            ok = False
    return tuple(dict.fromkeys(files)) if ok else None


def _read_depends_on(item: Mapping[Any, Any], label: str, problems: list[str]) -> tuple[str, ...]:
    value = item.get("depends_on")
    if value is None:
        return ()
    if not isinstance(value, list):
        problems.append(f'{label}: "depends_on" must be a list of subtask ids, not {_kind(value)}.')
        return ()
    deps: list[str] = []
    for position, dep in enumerate(value):
        if isinstance(dep, str):
            deps.append(dep)
        else:
            problems.append(f"{label}: depends_on[{position}] must be a subtask id string, not {_kind(dep)}.")
    return tuple(dict.fromkeys(deps))


def _read_interfaces(item: Mapping[Any, Any], field: str, label: str, problems: list[str]) -> tuple[str, ...]:
    value = item.get(field)
    if value is None:
        return ()
    if not isinstance(value, list):
        problems.append(f'{label}: "{field}" must be a list of interface signatures such as {_INTERFACE_EXAMPLE}, '
                        f"not {_kind(value)}.")
        return ()
    found: list[str] = []
    for position, text in enumerate(value):
        if not isinstance(text, str):
            problems.append(f"{label}: {field}[{position}] must be a string, not {_kind(text)}.")
        elif (key := interface_key(text)) is None:
            problems.append(f"{label}: {field}[{position}] {_quote(text)} is not \"path: signature\"; write the "
                            f"file that defines it, a colon and its signature, e.g. {_INTERFACE_EXAMPLE}.")
        elif key[0] is None:
            where = show_path(text.split(":")[0])
            problems.append(f"{label}: {field}[{position}] {_quote(text)} names the file {where}, which is not a "
                            "path inside the repository; give it relative to the root.")
        else:
            found.append(" ".join(text.split()))
    return tuple(dict.fromkeys(found))


_KEYWORDS = frozenset((  # words before the defined name in the signatures of common languages
    "def", "class", "async", "function", "fn", "func", "pub", "export", "default", "const", "let", "var", "type",
    "interface", "struct", "enum", "static", "public", "private", "protected", "abstract", "final", "val",
    "trait", "impl", "module", "extern", "declare", "readonly",
))
_INTERFACE = re.compile(r"^\s*([^\s:][^:]*?)\s*:\s*(\S.*)$", re.DOTALL)


def interface_key(text: str) -> tuple[str | None, str] | None:
    """What an interface entry names: (the repository path that defines it, the name it defines); the path is
    None when it is not a repository path. "calc/ops.py: def power(base: float, exp: int) -> float" gives
    ("calc/ops.py", "power"). None when the text is not "path: signature" with a name in the signature."""
    match = _INTERFACE.match(text)
    if match is None:
        return None
    names = [word for word in re.findall(r"[A-Za-z_$][\w$]*", match.group(2)) if word not in _KEYWORDS]
    if not names:
        return None
    try:
        path: str | None = normalize_entry(match.group(1))
    except PathRefused:
        path = None
    return path, names[0]


def _link_interfaces(drafts: list[_Draft], problems: list[str]) -> None:
    """A provide must be defined in one of its subtask's own files. A consume that names a sibling's provide (the
    same path and name) makes the consumer wait for that sibling (a later wave): it starts from, and its test
    command runs against, what the provider merged. Any other consume is the repository's own, as it stands."""
    provided = {interface_key(text): draft.id for draft in drafts for text in draft.provides if draft.id is not None}
    for draft in drafts:
        mine = Ownership(draft.files or ())
        for text in draft.provides:
            key = interface_key(text)
            if key is not None and key[0] is not None and draft.files is not None and not mine.owns(key[0]):
                problems.append(f"{draft.label} provides {_quote(text)}, but {key[0]} is not one of its files; "
                                "add the file to its files, or list the interface under the subtask that owns it.")
    for draft in drafts:
        waits: list[str] = []
        for text in draft.consumes:
            provider = provided.get(interface_key(text))
            if provider is not None and provider != draft.id:
                waits.append(provider)
        draft.depends_on = tuple(dict.fromkeys([*draft.depends_on, *waits]))


def _check_ids(drafts: list[_Draft], problems: list[str]) -> None:
    first_of: dict[str, int] = {}
    for draft in drafts:
        if draft.id is None:
            continue
        reason = ref_component_problem(draft.id)
        if reason:
            problems.append(
                f"subtask id {_quote(draft.id)} {reason}; ids become branch names, e.g. \"api-client\"."
            )
        if draft.id in first_of:
            problems.append(
                f"subtask id {_quote(draft.id)} is used by subtasks #{first_of[draft.id] + 1} and "
                f"#{draft.index + 1}; give every subtask its own id."
            )
        else:
            first_of[draft.id] = draft.index


def _check_dependencies(drafts: list[_Draft], problems: list[str]) -> None:
    first: dict[str, int] = {}
    for draft in drafts:
        if draft.id is not None:
            first.setdefault(draft.id, draft.index)
    graph: dict[str, tuple[str, ...]] = dict.fromkeys(first, ())
    known = ", ".join(_quote(name) for name in list(graph)[:20])
    for draft in drafts:
        edges: list[str] = []
        for dep in draft.depends_on:
            if dep == draft.id:
                problems.append(f"{draft.label} depends on itself; remove {_quote(dep)} from its depends_on.")
            elif dep not in graph:
                problems.append(
                    f"{draft.label} depends on {_quote(dep)}, which is not a subtask id in this plan "
                    f"(the ids are {known or 'missing'})."
                )
            else:
                edges.append(dep)
        if draft.id is not None and first[draft.id] == draft.index:
            graph[draft.id] = tuple(edges)  # a duplicate id is reported already; its edges would mislead
    problems.extend(_cycle_problem(cycle) for cycle in find_cycles(graph))


def _cycle_problem(cycle: Sequence[str]) -> str:
    return (
        f"dependency cycle {' -> '.join(map(show_path, cycle))} (each waits for the next), so none of them "
        "could ever start; remove one of these depends_on entries (consuming a sibling's provides counts as "
        "depending on it: move the shared interface to one side)."
    )


def find_cycles(graph: Mapping[str, Sequence[str]]) -> list[list[str]]:
    """Dependency cycles as node paths that end where they start (`["a", "b", "a"]`: a waits for b waits
    for a); one per back edge of a depth-first search in graph order, each node set reported once."""
    state: dict[str, int] = {}  # 1: on the current path, 2: finished
    cycles: list[list[str]] = []
    seen: set[frozenset[str]] = set()
    for start in graph:
        if start in state:
            continue
        path = [start]
        stack: list[Iterator[str]] = [iter(graph[start])]
        state[start] = 1
        while stack:
            nxt = next(stack[-1], None)
            if nxt is None:
                state[path.pop()] = 2
                stack.pop()
            elif nxt not in graph or state.get(nxt) == 2:
                continue
            elif state.get(nxt) == 1:
                cycle = [*path[path.index(nxt) :], nxt]
                if (key := frozenset(cycle)) not in seen:
                    seen.add(key)
                    cycles.append(cycle)
            else:
                state[nxt] = 1
                path.append(nxt)
                stack.append(iter(graph[nxt]))
    return cycles


def _graph_error(plan: Plan, stuck: Sequence[Subtask]) -> PlanError:
    """Why `stuck` subtasks can never start: unknown dependencies or cycles."""
    ids = plan.by_id()
    problems = [
        f"subtask {_quote(s.id)} depends on {_quote(dep)}, which is not a subtask id in this plan."
        for s in stuck
        for dep in s.depends_on
        if dep not in ids
    ]
    problems += [_cycle_problem(cycle) for cycle in find_cycles({s.id: s.depends_on for s in stuck})]
    return PlanError(problems or ["some subtasks can never start"])


def topological_order(plan: Plan) -> list[Subtask]:
    """Every subtask after its dependencies; among the ready ones, plan order first (stable)."""
    position = {s.id: index for index, s in enumerate(plan.subtasks)}
    waiting = {s.id: len(set(s.depends_on)) for s in plan.subtasks}
    dependents: dict[str, list[str]] = {s.id: [] for s in plan.subtasks}
    for s in plan.subtasks:
        for dep in set(s.depends_on):
            if dep in dependents:
                dependents[dep].append(s.id)
    ready = [position[name] for name, count in waiting.items() if count == 0]
    heapq.heapify(ready)
    order: list[Subtask] = []
    while ready:
        subtask = plan.subtasks[heapq.heappop(ready)]
        order.append(subtask)
        for name in dependents[subtask.id]:
            waiting[name] -= 1
            if waiting[name] == 0:
                heapq.heappush(ready, position[name])
    if len(order) != len(plan.subtasks):
        done = {s.id for s in order}
        raise _graph_error(plan, [s for s in plan.subtasks if s.id not in done])
    return order


def serialize_overlaps(plan: Plan) -> tuple[Plan, list[str]]:
    """Make subtasks that own a common file (or a directory holding the other's file) run one after the
    other: when neither already waits for the other, the later one in topological order now waits for the
    earlier one. Returns the new plan and one message per added dependency. Never creates a cycle: every
    new edge points backwards in a topological order.
    """
    order = topological_order(plan)
    ownership = {s.id: s.ownership for s in plan.subtasks}
    ancestors: dict[str, set[str]] = {}
    added: dict[str, list[str]] = {}
    messages: list[str] = []
    for position, later in enumerate(order):
        waits_for: set[str] = set()
        for dep in later.depends_on:
            waits_for |= {dep} | ancestors[dep]
        # Nearest first: waiting for the nearest overlapping subtask often covers earlier ones transitively.
        for earlier in reversed(order[:position]):
            if earlier.id in waits_for:
                continue
            shared = ownership[later.id].overlap(ownership[earlier.id])
            if not shared:
                continue
            added.setdefault(later.id, []).append(earlier.id)
            waits_for |= {earlier.id} | ancestors[earlier.id]
            more = f" and {len(shared) - 3} more" if len(shared) > 3 else ""
            messages.append(
                f"serialized: {_quote(later.id)} now waits for {_quote(earlier.id)} "
                f"(both own {', '.join(shared[:3])}{more})"
            )
        ancestors[later.id] = waits_for
    subtasks = tuple(
        replace(s, depends_on=(*s.depends_on, *added[s.id])) if s.id in added else s for s in plan.subtasks
    )
    return Plan(subtasks, plan.summary), messages


def waves(plan: Plan) -> list[list[Subtask]]:
    """Kahn layering: wave 0 has no dependencies, wave k depends only on earlier waves; plan order within."""
    placed: set[str] = set()
    remaining = list(plan.subtasks)
    result: list[list[Subtask]] = []
    while remaining:
        wave = [s for s in remaining if all(dep in placed for dep in s.depends_on)]
        if not wave:
            raise _graph_error(plan, remaining)
        placed.update(s.id for s in wave)
        result.append(wave)
        remaining = [s for s in remaining if s.id not in placed]
    return result
