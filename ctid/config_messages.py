"""How a config document's problems are told: one line per problem with its key path (list indexes
kept after pruning), "did you mean" for unknown keys, and the lenient re-validation with the failing
keys dropped so one mistake hides no other. Generic over the root model (`ctid.config.Config`)."""

from __future__ import annotations

import copy
import difflib
import re
import types
import typing
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

M = TypeVar("M", bound=BaseModel)


def fmt_loc(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + part
    return out or "(top level)"


def short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _model_at(root: type[BaseModel], loc: tuple[int | str, ...]) -> type[BaseModel] | None:
    """The model class that owns the keys at `loc` (list indexes and dict keys skipped)."""
    model: type[BaseModel] = root
    pending: list[Any] = []
    for part in loc:
        if isinstance(part, int):
            continue
        if pending:  # a dict key (e.g. incidents.sla.P1): its value's type is next
            ann = pending.pop()
        elif part in model.model_fields:
            ann = model.model_fields[part].annotation
        else:
            return None
        found = _find_model(ann)
        if found is None:
            return None
        model, is_dict = found
        if is_dict:
            pending.append(model)
    return None if pending else model


def _find_model(ann: Any) -> tuple[type[BaseModel], bool] | None:
    """The first pydantic model inside an annotation, and whether it sits in a dict's values."""
    if isinstance(ann, type) and issubclass(ann, BaseModel):
        return ann, False
    origin = typing.get_origin(ann)
    args = typing.get_args(ann)
    if origin is dict and len(args) == 2:
        inner = _find_model(args[1])
        return (inner[0], True) if inner else None
    if origin in (tuple, list, typing.Union, types.UnionType, typing.Annotated):
        for arg in args:
            inner = _find_model(arg)
            if inner is not None:
                return inner
    return None


def _did_you_mean(root: type[BaseModel], loc: tuple[int | str, ...]) -> str:
    model = _model_at(root, loc[:-1])
    if model is None or not isinstance(loc[-1], str):
        return ""
    close = difflib.get_close_matches(loc[-1], list(model.model_fields), n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""


def field_lines(root: type[BaseModel], exc: ValidationError, source: str) -> list[str]:
    lines = []
    errors = exc.errors(include_url=False)
    locs = [tuple(e["loc"]) for e in errors]
    for err in errors:
        here = tuple(err["loc"])
        if err["type"] == "too_short" and any(
            other[: len(here)] == here and other != here for other in locs
        ):
            continue  # a failing item already explains why the list came out short
        loc = fmt_loc(here)
        msg = err["msg"]
        if err["type"] == "missing":
            lines.append(f"{source}: {loc}: is required but missing")
        elif err["type"] == "extra_forbidden":
            hint = _did_you_mean(root, here)
            lines.append(f"{source}: {loc}: is not a known key (got {short(err['input'])}){hint}")
        else:
            msg = msg.removeprefix("Value error, ")
            lines.append(f"{source}: {loc}: {msg} (got {short(err['input'])})")
    return lines


def _prune(
    root: type[BaseModel], raw: Any, loc: tuple[int | str, ...], removed: dict[str, list[int]]
) -> bool:
    """Drop what failed at `loc` so the rest can still be validated for cross-field checks: the
    key itself, or the whole list item when the item cannot stand without it. `removed` keeps,
    per list path, the original index of each surviving item so messages keep their indexes."""
    for depth in range(len(loc), 0, -1):
        parent_loc, key = loc[: depth - 1], loc[depth - 1]
        node = raw
        for part in parent_loc:
            try:
                node = node[part]
            except (KeyError, IndexError, TypeError):
                return False
        if isinstance(key, str) and isinstance(node, dict) and key in node:
            owner = _model_at(root, parent_loc)
            if owner is None:
                continue  # an entry of a dict-valued key: drop the whole key (its default)
            if depth < len(loc) or key not in _required(owner):
                del node[key]
                return True
        if isinstance(key, int) and isinstance(node, list) and 0 <= key < len(node):
            path = fmt_loc(parent_loc)
            index = removed.setdefault(path, list(range(len(node))))
            del node[key]
            del index[key]
            return True
    return False


def _required(model: type[BaseModel] | None) -> tuple[str, ...]:
    if model is None:
        return ()
    return tuple(name for name, f in model.model_fields.items() if f.is_required())


def renumber(key: str, removed: dict[str, list[int]]) -> str:
    for path, index in removed.items():
        m = re.match(re.escape(path) + r"\[(\d+)\]", key)
        if m:
            key = f"{path}[{index[int(m.group(1))]}]" + key[m.end() :]
    return key


def lenient(
    root: type[M], raw: dict[str, Any], removed: dict[str, list[int]] | None = None
) -> M | None:
    """The config with what failed dropped (defaults used), or None when that is not enough."""
    work = copy.deepcopy(raw)
    removed = {} if removed is None else removed
    for _ in range(8):
        try:
            return root.model_validate(work)
        except ValidationError as exc:
            pruned = False
            for err in exc.errors(include_url=False):
                loc = tuple(err["loc"])
                target = loc[:-1] if err["type"] == "missing" else loc
                if target:
                    pruned |= _prune(root, work, target, removed)
            if not pruned:
                return None
    return None
