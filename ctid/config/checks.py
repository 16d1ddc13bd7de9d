"""Everything the config loader says about a document: the cross-field checks, one message line per
problem with its key path (indexes kept after pruning), "did you mean" for unknown keys."""

from __future__ import annotations

import copy
import difflib
import re
import types
import typing
from typing import Any

from pydantic import BaseModel, ValidationError

from ctid.config.models import ANSWER_MEDIA_S, Config


def _fmt_loc(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + part
    return out or "(top level)"


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def cross_checks(cfg: Config) -> list[tuple[str, str, object]]:
    """Checks that span several keys; each is (key.path, what is wrong, got)."""
    problems: list[tuple[str, str, object]] = []
    seat_ids = [s.id for s in cfg.seats]
    for i, seat in enumerate(cfg.seats):
        if seat_ids.count(seat.id) > 1 and seat_ids.index(seat.id) != i:
            problems.append((f"seats[{i}].id", "is used by another seat", seat.id))
    ifaces = [s.interface for s in cfg.seats]
    for i, seat in enumerate(cfg.seats):
        if ifaces.index(seat.interface) != i:
            problems.append((f"seats[{i}].interface", "is used by another seat", seat.interface))
    staff = [s.staffed_by for s in cfg.seats]
    for i, seat in enumerate(cfg.seats):
        if seat.staffed_by and staff.index(seat.staffed_by) != i:
            first = cfg.seats[staff.index(seat.staffed_by)].id
            problems.append(
                (f"seats[{i}].staffed_by", f"already staffs seat {first!r}", seat.staffed_by)
            )
    served = {tier for q in cfg.queues for tier in q.tiers}
    for i, seat in enumerate(cfg.seats):
        if seat.tier not in served:
            problems.append((f"seats[{i}].tier", "is not served by any queue", seat.tier))
    queue_names = [q.name for q in cfg.queues]
    for i, q in enumerate(cfg.queues):
        if queue_names.index(q.name) != i:
            problems.append((f"queues[{i}].name", "is used by another queue", q.name))
    if cfg.ivr.default_queue not in queue_names:
        problems.append(("ivr.default_queue", "names no configured queue", cfg.ivr.default_queue))
    digits = [o.digit for o in cfg.ivr.options]
    for i, opt in enumerate(cfg.ivr.options):
        if digits.index(opt.digit) != i:
            problems.append((f"ivr.options[{i}].digit", "is used by another option", opt.digit))
        if opt.action == "queue" and opt.queue not in queue_names:
            problems.append((f"ivr.options[{i}].queue", "names no configured queue", opt.queue))
    waits = cfg.ivr.no_input_path_s({})
    if waits > cfg.ivr.no_input_max_s:
        problems.append(
            (
                "ivr.digit_timeout_s",
                f"a caller who presses nothing waits {waits:g} s before any prompt plays "
                f"((silence_replays + 1) x digit_timeout_s + {ANSWER_MEDIA_S:g} s Answer), over "
                f"ivr.no_input_max_s = {cfg.ivr.no_input_max_s:g}",
                cfg.ivr.digit_timeout_s,
            )
        )
    if cfg.talk_cap.action == "transfer_expert" and cfg.talk_cap.expert_queue not in queue_names:
        problems.append(
            ("talk_cap.expert_queue", "names no configured queue", cfg.talk_cap.expert_queue)
        )
    for i, point in enumerate(cfg.talk_cap.warn_at_s):
        if point >= cfg.talk_cap.talk_cap_s:
            problems.append(
                (f"talk_cap.warn_at_s[{i}]", "warns at or after the cap (talk_cap_s)", point)
            )
    if list(cfg.talk_cap.warn_at_s) != sorted(set(cfg.talk_cap.warn_at_s)):
        problems.append(("talk_cap.warn_at_s", "must be increasing", cfg.talk_cap.warn_at_s))
    if cfg.hours.close <= cfg.hours.open:
        problems.append(("hours.close", "must be after hours.open", cfg.hours.close))
    both = set(cfg.hours.holidays) & set(cfg.hours.makeup_workdays)
    if both:
        problems.append(
            ("hours.makeup_workdays", "lists days that are also holidays", sorted(both))
        )
    if cfg.ami.reconnect_max_s < cfg.ami.reconnect_min_s:
        problems.append(
            ("ami.reconnect_max_s", "must be >= ami.reconnect_min_s", cfg.ami.reconnect_max_s)
        )
    for i, sup in enumerate(cfg.supervisors):
        if [s.employee_id for s in cfg.supervisors].index(sup.employee_id) != i:
            problems.append(
                (f"supervisors[{i}].employee_id", "is used by another supervisor", sup.employee_id)
            )
    for impact, row in cfg.incidents.priority_matrix.items():
        for urgency, prio in row.items():
            if prio not in cfg.incidents.sla:
                problems.append(
                    (
                        f"incidents.priority_matrix.{impact}.{urgency}",
                        "names a priority with no incidents.sla entry",
                        prio,
                    )
                )
    lunch = cfg.lunch
    if lunch.enabled and lunch.groups:
        if lunch.end <= lunch.start:
            problems.append(("lunch.end", "must be after lunch.start", lunch.end))
        elif not (cfg.hours.open <= lunch.start and lunch.end <= cfg.hours.close):
            problems.append(("lunch.start", "lunch must lie within service hours", lunch.start))
        seen: dict[str, str] = {}
        for gi, group in enumerate(lunch.groups):
            for si, sid in enumerate(group.seats):
                if sid not in seat_ids:
                    problems.append((f"lunch.groups[{gi}].seats[{si}]", "names no seat", sid))
                elif sid in seen:
                    problems.append(
                        (
                            f"lunch.groups[{gi}].seats[{si}]",
                            f"is already in lunch group {seen[sid]!r}",
                            sid,
                        )
                    )
                else:
                    seen[sid] = group.name
        if not lunch.allow_overflow:
            tiers = {s.tier for s in cfg.seats}
            by_id = {s.id: s for s in cfg.seats}
            for gi, group in enumerate(lunch.groups):
                have = {by_id[s].tier for s in group.seats if s in by_id}
                for tier in sorted(tiers - have):
                    problems.append(
                        (
                            f"lunch.groups[{gi}].seats",
                            f"leaves the {tier} tier with nobody on the phones when group "
                            f"{group.name!r} is on lunch duty (add a {tier} seat or set "
                            "lunch.allow_overflow = true)",
                            list(group.seats),
                        )
                    )
    return problems


def _model_at(loc: tuple[int | str, ...]) -> type[BaseModel] | None:
    """The model class that owns the keys at `loc` (list indexes and dict keys skipped)."""
    model: type[BaseModel] = Config
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


def _did_you_mean(loc: tuple[int | str, ...]) -> str:
    model = _model_at(loc[:-1])
    if model is None or not isinstance(loc[-1], str):
        return ""
    close = difflib.get_close_matches(loc[-1], list(model.model_fields), n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""


def _field_lines(exc: ValidationError, source: str) -> list[str]:
    lines = []
    errors = exc.errors(include_url=False)
    locs = [tuple(e["loc"]) for e in errors]
    for err in errors:
        here = tuple(err["loc"])
        if err["type"] == "too_short" and any(
            other[: len(here)] == here and other != here for other in locs
        ):
            continue  # a failing item already explains why the list came out short
        loc = _fmt_loc(here)
        msg = err["msg"]
        if err["type"] == "missing":
            lines.append(f"{source}: {loc}: is required but missing")
        elif err["type"] == "extra_forbidden":
            hint = _did_you_mean(here)
            lines.append(f"{source}: {loc}: is not a known key (got {_short(err['input'])}){hint}")
        else:
            msg = msg.removeprefix("Value error, ")
            lines.append(f"{source}: {loc}: {msg} (got {_short(err['input'])})")
    return lines


def _prune(raw: Any, loc: tuple[int | str, ...], removed: dict[str, list[int]]) -> bool:
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
            owner = _model_at(parent_loc)
            if owner is None:
                continue  # an entry of a dict-valued key: drop the whole key (its default)
            if depth < len(loc) or key not in _required(owner):
                del node[key]
                return True
        if isinstance(key, int) and isinstance(node, list) and 0 <= key < len(node):
            path = _fmt_loc(parent_loc)
            index = removed.setdefault(path, list(range(len(node))))
            del node[key]
            del index[key]
            return True
    return False


def _required(model: type[BaseModel] | None) -> tuple[str, ...]:
    if model is None:
        return ()
    return tuple(name for name, f in model.model_fields.items() if f.is_required())


def _renumber(key: str, removed: dict[str, list[int]]) -> str:
    for path, index in removed.items():
        m = re.match(re.escape(path) + r"\[(\d+)\]", key)
        if m:
            key = f"{path}[{index[int(m.group(1))]}]" + key[m.end() :]
    return key


def check_config(raw: dict[str, Any], source: str = "config") -> tuple[Config | None, list[str]]:
    """Every problem at once: field problems, then the cross-field ones of what did validate
    (the failing keys are dropped and their defaults used, so one mistake hides no other)."""
    removed: dict[str, list[int]] = {}
    lines: list[str] = []
    try:
        cfg: Config | None = Config.model_validate(raw)
    except ValidationError as exc:
        lines = _field_lines(exc, source)
        cfg = lenient_config(raw, removed)
    if cfg is None:
        return None, lines
    lines += [
        f"{source}: {_renumber(k, removed)}: {what} (got {_short(got)})"
        for k, what, got in cross_checks(cfg)
    ]
    return (cfg if not lines else None), lines


def lenient_config(
    raw: dict[str, Any], removed: dict[str, list[int]] | None = None
) -> Config | None:
    """The config with what failed dropped (defaults used), or None when that is not enough."""
    work = copy.deepcopy(raw)
    removed = {} if removed is None else removed
    for _ in range(8):
        try:
            return Config.model_validate(work)
        except ValidationError as exc:
            pruned = False
            for err in exc.errors(include_url=False):
                loc = tuple(err["loc"])
                target = loc[:-1] if err["type"] == "missing" else loc
                if target:
                    pruned |= _prune(work, target, removed)
            if not pruned:
                return None
    return None
