"""The rule editor of the TriggerRule admin: conditions and actions as rows, each a "type"
select walked from its registry and that type's own options form (the very form that
validates stored JSON), with the JSON kept as an escape hatch.

It works without JavaScript: "Show fields", "Add" and "Remove" are submit buttons, and the
page comes back re-rendered with nothing saved. The inline script of
admin/triggers/triggerrule/change_form.html only does the same in the page.

Row fields are named after the error paths: `conditions-1-count` is `conditions[1].count`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, TypedDict

from django import forms
from django.core.exceptions import ValidationError
from django.forms.fields import InvalidJSONInput
from django.template.loader import render_to_string
from django.utils.datastructures import MultiValueDict
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

REFRESH = "_rule_editor_refresh"  # re-render with the chosen types' fields
ADD = "_rule_editor_add"  # value: "conditions" or "actions"
REMOVE = "_rule_editor_remove"  # value: a row's prefix, e.g. "conditions-2"
EDITOR_BUTTONS = (REFRESH, ADD, REMOVE)
ROW_LIMIT = 50
BLANK: tuple[Any, ...] = (None, "", [])
ACRONYMS = {"rfm": "RFM", "sms": "SMS", "url": "URL"}


class EntryType(Protocol):
    """A condition type or an action type, as the editor sees it."""

    @property
    def id(self) -> str: ...

    @property
    def label(self) -> str: ...

    @property
    def form(self) -> type[forms.Form]: ...

    def describe(self, options: dict[str, Any]) -> str: ...

    def clean_options(
        self, options: dict[str, Any]
    ) -> tuple[dict[str, Any], dict[str, list[str]]]: ...


class Registry(Protocol):
    def get(self, type_id: str) -> EntryType | None: ...

    def __iter__(self) -> Iterator[EntryType]: ...


class FieldContext(TypedDict):
    """One option field of a row, as rule_options.html renders it."""

    bound: forms.BoundField
    errors: list[str]


class RowContext(TypedDict):
    """One row, as rule_row.html renders it."""

    index: int | Literal["__prefix__"]  # the blank row the script copies has no number
    prefix: str  # e.g. "conditions-1"
    path: str  # e.g. "conditions[1]"
    type_select: SafeString
    type_errors: list[str]
    row_errors: list[str]
    phrase: str  # the type's label
    in_words: str  # the label filled in with the row's options, when they are valid
    fields: list[FieldContext]


class TypeTemplate(TypedDict):
    """The option fields of one type, for the script to show when a type is picked."""

    type: str
    phrase: str
    fields: list[FieldContext]


def editor_requested(data: Mapping[str, Any]) -> bool:
    """True when the POST asks the editor for another look, not for a save."""
    return any(key in data for key in EDITOR_BUTTONS)


def type_title(item: EntryType) -> str:
    """The name a marketer picks from, e.g. "Event count" for event_count."""
    title = getattr(item, "title", None)
    if isinstance(title, str) and title:
        return title
    words = [ACRONYMS.get(word, word) for word in item.id.split("_")]
    text = " ".join(words)
    return text[:1].upper() + text[1:]


def type_choices(registry: Registry) -> list[tuple[str, Any]]:
    """Grouped by the module that registers them (events, activity, segments, ...), with the
    type's title and its label, e.g. "Event count: {event} at least {count} times in ..."."""
    groups: dict[str, list[tuple[str, str]]] = {}
    for item in registry:
        group = type(item).__module__.rsplit(".", 1)[-1].replace("_", " ").capitalize()
        groups.setdefault(group, []).append((item.id, f"{type_title(item)}: {item.label}"))
    return [("", "— choose a type —"), *groups.items()]


@dataclass
class Row:
    """One row as the editor shows it: `raw` is what was posted (rendered back as typed),
    `options` what was stored or read from JSON; `problem` marks an entry that is no object."""

    type: str
    raw: dict[str, Any] | None = None
    options: Mapping[str, Any] | None = None
    problem: bool = False


@dataclass
class EntriesValue:
    """What the widget reads from a POST: the rows or the JSON, and the entries to validate."""

    source: Literal["rows", "json"]
    rows: list[Row] = field(default_factory=list)
    entries: list[Any] | None = None
    json_text: str = ""
    json_error: str = ""
    explicit_json: bool = False  # the marketer ticked "save this JSON instead"
    too_many: bool = False


def _row_from_entry(entry: Any) -> Row:
    if not isinstance(entry, dict):
        return Row(type="", problem=True)
    type_id = entry.get("id")
    options = {key: value for key, value in entry.items() if key != "id"}
    return Row(type=type_id if isinstance(type_id, str) else "", options=options)


def _entry_from_row(row: Row) -> dict[str, Any]:
    options = row.raw or {}
    return {"id": row.type, **{k: v for k, v in options.items() if v not in BLANK}}


def entries_normalise(registry: Registry, entries: Iterable[Any]) -> list[Any]:
    """Each entry as its form cleans it when valid (e.g. "3" becomes 3), else as given."""
    out: list[Any] = []
    for entry in entries:
        type_id = entry.get("id") if isinstance(entry, dict) else None
        handler = registry.get(type_id) if isinstance(type_id, str) else None
        if handler is None:
            out.append(entry)
            continue
        options = {key: value for key, value in entry.items() if key != "id"}
        clean, problems = handler.clean_options(options)
        out.append(entry if problems else clean)
    return out


def _initial(form_class: type[forms.Form], options: Mapping[str, Any]) -> dict[str, Any]:
    """Options as initial values; an empty JSON option shows as an empty box, not "null"."""
    initial = dict(options)
    for name, option in form_class.base_fields.items():
        if isinstance(option, forms.JSONField) and initial.get(name) is None:
            initial[name] = InvalidJSONInput("")
    return initial


def _dumps(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False, default=str)


def registry_reference(registry: Registry, *, kind: str) -> SafeString:
    """The types and their options as a table, walked from the registry."""
    rows = format_html_join(
        "",
        "<tr><td><code>{}</code></td><td>{}</td><td>{}</td></tr>",
        (
            (
                item.id,
                item.label,
                format_html_join(
                    ", ",
                    "<code>{}</code>{}",
                    (
                        (name, "" if option.required else " (optional)")
                        for name, option in item.form.base_fields.items()
                    ),
                ),
            )
            for item in registry
        ),
    )
    return format_html(
        '<table class="trigger-registry"><thead><tr><th>{} id</th><th>reads as</th>'
        "<th>options</th></tr></thead><tbody>{}</tbody></table>",
        kind.rstrip("s"),
        rows,
    )


class RuleEntriesWidget(forms.Widget):
    """Renders the rows, one template per type for the script, and the JSON escape hatch.
    `path_errors` ({"conditions[1].count": [...]}) is set by the form after validation so
    each message is shown next to its field."""

    def __init__(self, *, kind: str, registry: Registry, add_label: str) -> None:
        super().__init__()
        self.kind = kind
        self.registry = registry
        self.add_label = add_label
        self.path_errors: dict[str, list[str]] = {}

    def __deepcopy__(self, memo: dict[int, Any]) -> RuleEntriesWidget:
        copy = super().__deepcopy__(memo)
        copy.path_errors = {}
        return copy

    def use_required_attribute(self, initial: Any) -> bool:
        return False

    def id_for_label(self, id_: str) -> str:
        return ""  # many inputs: the label names the whole editor

    # --- reading a POST ------------------------------------------------------------------

    def _raw_options(
        self, data: Any, files: Any, prefix: str, handler: EntryType
    ) -> dict[str, Any]:
        blank = handler.form(prefix=prefix)
        return {
            name: bound.field.widget.value_from_datadict(data, files, bound.html_name)
            for name, bound in ((name, blank[name]) for name in blank.fields)
        }

    def value_from_datadict(self, data: Any, files: Any, name: str) -> Any:
        json_text = data.get(name, "")
        total_key = f"{name}-TOTAL"
        if total_key not in data:
            # No rows were posted (the YAML-minded or an API client): the JSON is the rule.
            return self._from_json(str(json_text), explicit=False)
        if data.get(f"{name}-use_json"):
            return self._from_json(str(json_text), explicit=True)
        try:
            total = int(data.get(total_key) or 0)
        except ValueError:
            total = 0
        value = EntriesValue(source="rows", json_text=str(json_text))
        if total > ROW_LIMIT:
            value.too_many, total = True, ROW_LIMIT
        for index in range(max(total, 0)):
            prefix = f"{name}-{index}"
            type_key = f"{prefix}-type"
            if type_key not in data or data.get(REMOVE) == prefix:
                continue  # removed in the page, or by its "Remove" button
            type_id = str(data.get(type_key) or "")
            handler = self.registry.get(type_id) if type_id else None
            raw = self._raw_options(data, files, prefix, handler) if handler else {}
            value.rows.append(Row(type=type_id, raw=raw))
        if data.get(ADD) == name:
            value.rows.append(Row(type=""))
        value.entries = [_entry_from_row(row) for row in value.rows]
        return value

    def _from_json(self, text: str, *, explicit: bool) -> EntriesValue:
        value = EntriesValue(source="json", json_text=text, explicit_json=explicit)
        try:
            parsed = json.loads(text) if text.strip() else []
        except ValueError as exc:
            value.json_error = f"not valid JSON: {exc}"
            return value
        value.entries = parsed
        if isinstance(parsed, list):
            value.rows = [_row_from_entry(entry) for entry in parsed[:ROW_LIMIT]]
        return value

    # --- rendering -----------------------------------------------------------------------

    def _type_select(self, *, prefix: str, value: str) -> SafeString:
        select = forms.Select(choices=type_choices(self.registry))
        return select.render(
            f"{prefix}-type",
            value,
            attrs={"id": f"id_{prefix}-type", "class": "rule-type"},
        )

    def _options_form(self, handler: EntryType, row: Row, prefix: str) -> forms.Form:
        if row.raw is not None:
            data: MultiValueDict[str, Any] = MultiValueDict()
            for key, raw in row.raw.items():
                data.setlist(f"{prefix}-{key}", raw if isinstance(raw, list) else [raw])
            return handler.form(data=data, prefix=prefix)
        return handler.form(initial=_initial(handler.form, row.options or {}), prefix=prefix)

    def _row_context(self, index: int, row: Row) -> RowContext:
        prefix = f"{self.kind}-{index}"
        path = f"{self.kind}[{index}]"
        handler = self.registry.get(row.type) if row.type else None
        fields: list[FieldContext] = []
        in_words = ""
        if handler is not None:
            form = self._options_form(handler, row, prefix)
            for name in form.fields:
                fields.append(
                    {"bound": form[name], "errors": self.path_errors.get(f"{path}.{name}", [])}
                )
            options = _entry_from_row(row) if row.raw is not None else dict(row.options or {})
            options.pop("id", None)
            if not any(key.startswith(f"{path}.") for key in self.path_errors):
                clean, problems = handler.clean_options(options)
                in_words = "" if problems else handler.describe(clean)
        row_errors = list(self.path_errors.get(path, []))
        if row.problem and not row_errors:
            row_errors.append("not an object: fix it in the JSON below.")
        return {
            "index": index,
            "prefix": prefix,
            "path": path,
            "type_select": self._type_select(prefix=prefix, value=row.type),
            "type_errors": self.path_errors.get(f"{path}.id", []),
            "row_errors": row_errors,
            "phrase": handler.label if handler is not None else "",
            "in_words": in_words,
            "fields": fields,
        }

    def _blank_row(self) -> RowContext:
        prefix = f"{self.kind}-__prefix__"
        return {
            "index": "__prefix__",
            "prefix": prefix,
            "path": f"{self.kind}[__prefix__]",
            "type_select": self._type_select(prefix=prefix, value=""),
            "type_errors": [],
            "row_errors": [],
            "phrase": "",
            "in_words": "",
            "fields": [],
        }

    def _type_templates(self) -> list[TypeTemplate]:
        prefix = f"{self.kind}-__prefix__"
        return [
            {
                "type": item.id,
                "phrase": item.label,
                "fields": [
                    {"bound": bound, "errors": []}
                    for bound in item.form(initial=_initial(item.form, {}), prefix=prefix)
                ],
            }
            for item in self.registry
        ]

    def render(
        self,
        name: str,
        value: Any,
        attrs: dict[str, Any] | None = None,
        renderer: Any = None,
    ) -> SafeString:
        if isinstance(value, EntriesValue):
            state = value
        else:  # the stored list (or a list handed in as initial)
            entries = list(value or []) if isinstance(value, list) else []
            state = EntriesValue(
                source="json",
                rows=[_row_from_entry(entry) for entry in entries],
                entries=entries,
                json_text=_dumps(entries),
            )
        if state.source == "rows" and state.entries is not None:
            state.json_text = _dumps(entries_normalise(self.registry, state.entries))
        rows = [self._row_context(index, row) for index, row in enumerate(state.rows)]
        context = {
            "kind": name,
            "rows": rows,
            "total": len(rows),
            "templates": self._type_templates(),
            "row_template": self._blank_row(),
            "add_label": self.add_label,
            "json_text": state.json_text,
            "use_json": state.explicit_json,
            "json_open": state.explicit_json or bool(state.json_error),
            "reference": registry_reference(self.registry, kind=name),
            "refresh": REFRESH,
            "add": ADD,
            "remove": REMOVE,
        }
        return SafeString(render_to_string("admin/triggers/triggerrule/rule_entries.html", context))


class RuleEntriesField(forms.Field):
    """The list of conditions or actions; validation proper is rule_validate's, in the form."""

    def __init__(self, *, kind: str, registry: Registry, add_label: str, **kwargs: Any) -> None:
        kwargs.setdefault("required", False)
        super().__init__(
            widget=RuleEntriesWidget(kind=kind, registry=registry, add_label=add_label), **kwargs
        )
        self.kind = kind
        self.registry = registry

    def clean(self, value: Any) -> Any:
        if isinstance(value, EntriesValue):
            if value.json_error:
                raise ValidationError(f"{self.kind}: {value.json_error}", code="invalid")
            if value.too_many:
                raise ValidationError(f"{self.kind}: at most {ROW_LIMIT} rows.", code="too_many")
            return value.entries
        return value

    def has_changed(self, initial: Any, data: Any) -> bool:
        try:
            entries = self.clean(data)
        except ValidationError:
            return True
        if not isinstance(entries, list):
            return True
        return entries_normalise(self.registry, entries) != list(initial or [])


def path_errors_by_kind(paths: Iterable[tuple[str, str]], kind: str) -> dict[str, list[str]]:
    """{path: [message]} for the paths inside one list, e.g. conditions[1].count."""
    out: dict[str, list[str]] = {}
    for path, message in paths:
        if path.startswith(f"{kind}["):
            out.setdefault(path, []).append(message)
    return out
