"""The open-incident list on SQLite and PostgreSQL: newest first, pages keyed on an incident number
both ways (ties on `created_at` broken by id, nothing skipped or repeated), the owner filters, and
the list's columns equal to the full incident."""

from __future__ import annotations

from dataclasses import fields

from ctid.core.clock import FakeClock
from ctid.tickets.incident_list import MAX_PAGE_ROWS
from ctid.tickets.incidents import IncidentStore
from ctid.tickets.views import IncidentPage, IncidentRow


async def _open_ten(store: IncidentStore, clock: FakeClock) -> list[str]:
    """Ten open incidents, newest first; pairs share their `created_at`."""
    numbers = []
    for i in range(10):
        if i % 2 == 0:
            clock.advance(60)
        view = await store.create(
            actor="E100",
            summary=f"incident {i}",
            owner_seat="seat1" if i % 3 == 0 else None,
            owner_employee="E200" if i % 4 == 0 else None,
        )
        numbers.append(view.number)
    return numbers[::-1]


def _numbers(page: IncidentPage) -> list[str]:
    return [r.number for r in page.rows]


async def test_pages_walk_the_list_both_ways(store: IncidentStore, clock: FakeClock) -> None:
    newest_first = await _open_ten(store, clock)
    listing = store.listing
    first = await listing.page(limit=4)
    assert _numbers(first) == newest_first[:4]
    assert (first.newer, first.older) == (None, newest_first[3])
    second = await listing.page(before=first.older, limit=4)
    assert _numbers(second) == newest_first[4:8]
    assert (second.newer, second.older) == (newest_first[4], newest_first[7])
    last = await listing.page(before=second.older, limit=4)
    assert _numbers(last) == newest_first[8:]
    assert (last.newer, last.older) == (newest_first[8], None)
    back = await listing.page(after=last.newer, limit=4)
    assert _numbers(back) == newest_first[4:8]
    assert (back.newer, back.older) == (newest_first[4], newest_first[7])
    # Fewer than a page newer than the cursor: the newest page instead.
    top = await listing.page(after=back.newer, limit=4)
    assert top == first
    # An unknown cursor, and a cursor with nothing older, give the newest page too.
    assert await listing.page(before="INC-20991231-0001", limit=4) == first
    assert await listing.page(before=newest_first[-1], limit=4) == first
    # Typed digits are a number too.
    digits = newest_first[3].replace("INC-", "").replace("-", "")
    assert await listing.page(before=digits, limit=4) == second
    assert len((await listing.page(limit=10_000)).rows) == 10 <= MAX_PAGE_ROWS


async def test_filters_and_columns(store: IncidentStore, clock: FakeClock) -> None:
    newest_first = await _open_ten(store, clock)
    listing = store.listing
    await store.apply(newest_first[0], "start", "E100")
    mine = await listing.page(owner_employee="E200")
    assert _numbers(mine) == [n for n in newest_first if int(n[-4:]) % 4 == 1]
    seat1 = await listing.page(owner_seat="seat1", limit=2)
    assert _numbers(seat1) == [n for n in newest_first if int(n[-4:]) % 3 == 1][:2]
    working = await listing.page(statuses=["in_progress"])
    assert _numbers(working) == [newest_first[0]]
    full = await store.get(newest_first[0])
    assert full is not None
    row = working.rows[0]
    for f in fields(IncidentRow):
        assert getattr(row, f.name) == getattr(full, f.name), f.name
    done = newest_first[1]
    await store.apply(done, "classify", "E100", request_type="fault", category="hardware")
    await store.apply(done, "prioritize", "E100", impact="low", urgency="low")
    await store.apply(done, "resolve", "E100", resolution="ok")
    assert done not in _numbers(await listing.page())
