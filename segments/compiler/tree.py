"""Parsing a stored definition into its typed tree, with every problem named by its path.

`definition_parse` never touches the database: it checks the shape of the tree and each leaf
with the form of its condition type. Whether a referenced segment exists, and whether
references form a cycle, are questions for the database: segments.selectors answers them.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any

from segments.compiler.forms import CONDITION_FORMS
from segments.compiler.types import (
    BehaviourCondition,
    Condition,
    Group,
    Node,
    RecencyCondition,
    SegmentCondition,
)

GROUP_OPS = ("and", "or", "not")
MAX_DEPTH = 10
MAX_CONDITIONS = 200


class DefinitionError(ValueError):
    """A definition that cannot be used. `errors` holds (path, message) pairs such as
    ("conditions[2].days", "must be a positive integer"); str() joins them one per line."""

    def __init__(self, errors: list[tuple[str, str]]) -> None:
        self.errors = errors
        super().__init__("\n".join(self.messages))

    @property
    def messages(self) -> list[str]:
        return [f"{path}: {message}" if path else message for path, message in self.errors]


def _join(path: str, name: str) -> str:
    if not name:
        return path
    if name.startswith("["):
        return f"{path}{name}"
    return f"{path}.{name}" if path else name


class _Parser:
    def __init__(self) -> None:
        self.errors: list[tuple[str, str]] = []
        self.leaves = 0

    def node(self, data: Any, path: str, depth: int) -> Node | None:
        if not isinstance(data, dict):
            self.errors.append((path, f"must be an object with op or type, got {data!r}"))
            return None
        if "op" in data and "type" in data:
            self.errors.append((path, "has both op and type: a node is a group or a condition"))
            return None
        if "op" in data:
            return self.group(data, path, depth)
        if "type" in data:
            return self.leaf(data, path)
        self.errors.append(
            (path, 'needs "op" (and, or, not) for a group or "type" for a condition')
        )
        return None

    def group(self, data: dict[str, Any], path: str, depth: int) -> Group | None:
        op = data.get("op")
        if op not in GROUP_OPS:
            self.errors.append((_join(path, "op"), f"{op!r} is not one of and, or, not"))
            return None
        if depth > MAX_DEPTH:
            self.errors.append((path, f"groups nest deeper than {MAX_DEPTH} levels"))
            return None
        for key in sorted(set(data) - {"op", "conditions"}):
            self.errors.append((_join(path, key), "is not a group option (op, conditions)"))
        conditions = data.get("conditions", [])
        if not isinstance(conditions, list):
            self.errors.append((_join(path, "conditions"), "must be a list"))
            return None
        if op == "not" and len(conditions) != 1:
            self.errors.append(
                (
                    _join(path, "conditions"),
                    f'"not" takes exactly one condition, got {len(conditions)}',
                )
            )
        if op == "or" and not conditions:
            self.errors.append((_join(path, "conditions"), '"or" needs at least one condition'))
        children = [
            self.node(child, _join(path, f"conditions[{index}]"), depth + 1)
            for index, child in enumerate(conditions)
        ]
        if any(child is None for child in children):
            return None
        return Group(op=op, children=tuple(child for child in children if child is not None))

    def leaf(self, data: dict[str, Any], path: str) -> Condition | None:
        self.leaves += 1
        if self.leaves == MAX_CONDITIONS + 1:
            self.errors.append((path, f"a definition holds at most {MAX_CONDITIONS} conditions"))
        kind = data["type"]
        form_class = CONDITION_FORMS.get(kind) if isinstance(kind, str) else None
        if form_class is None:
            self.errors.append(
                (
                    _join(path, "type"),
                    f"{kind!r} is not a condition type ({', '.join(CONDITION_FORMS)})",
                )
            )
            return None
        options = {key: value for key, value in data.items() if key != "type"}
        known = set(form_class.base_fields)
        unknown = sorted(set(options) - known)
        for key in unknown:
            self.errors.append(
                (
                    _join(path, key),
                    f"is not an option of a {kind} condition ({', '.join(sorted(known))})",
                )
            )
        form = form_class(data=options)
        if not form.is_valid():
            for name, message in form.path_errors():
                self.errors.append((_join(path, name), message))
            return None
        return None if unknown else form.to_condition()


def definition_parse(definition: Any) -> Node:
    """The typed tree of a stored definition; raises DefinitionError naming every problem."""
    parser = _Parser()
    node = parser.node(definition, "", 0)
    if parser.errors or node is None:
        raise DefinitionError(parser.errors or [("", "is not a definition")])
    return node


def iter_conditions(node: Node) -> Iterator[Condition]:
    if isinstance(node, Group):
        for child in node.children:
            yield from iter_conditions(child)
    else:
        yield node


def segment_references(node: Node) -> set[str]:
    """Slugs of the segments this tree asks about."""
    return {c.segment for c in iter_conditions(node) if isinstance(c, SegmentCondition)}


def depends_on_clock(node: Node) -> bool:
    """Whether the answer can change with time alone (a sliding window, days since): such
    segments are refreshed on a schedule as well as when events arrive."""
    return any(isinstance(c, BehaviourCondition | RecencyCondition) for c in iter_conditions(node))


def condition_types(node: Node) -> set[str]:
    return {c.type for c in iter_conditions(node)}


def _json(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {
            field.name: _json(getattr(value, field.name)) for field in dataclasses.fields(value)
        }
    if isinstance(value, tuple | list):
        return [_json(item) for item in value]
    return value


def definition_dump(node: Node) -> dict[str, Any]:
    """The normalised JSON of a parsed tree (what Segment.clean stores): defaults filled in,
    text trimmed, codes uppercased."""
    if isinstance(node, Group):
        return {"op": node.op, "conditions": [definition_dump(child) for child in node.children]}
    data: dict[str, Any] = {"type": node.type}
    for field in dataclasses.fields(node):
        value = getattr(node, field.name)
        if field.name in ("test",):
            data["operator"] = value.operator
            if value.value is not None:
                data["value"] = _json(value.value)
        elif field.name == "where":
            if value:
                data["where"] = [item.as_data() for item in value]
        elif value is not None:
            data[field.name] = _json(value)
    if data["type"] == "behaviour" and data.get("operator") == "none":
        data.pop("count", None)
    return data


def definition_describe(node: Node) -> str:
    """The tree in words, for admin lists and previews."""
    if isinstance(node, Group):
        parts = [definition_describe(child) for child in node.children]
        if node.op == "not":
            return f"not ({parts[0]})"
        if not parts:
            return "every contact"
        joined = f" {node.op} ".join(
            f"({part})" if " and " in part or " or " in part else part for part in parts
        )
        return joined
    return CONDITION_FORMS[node.type].describe(node)
