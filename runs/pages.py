"""A page of runs, for every list of them: the studio's table and the REST API plan their pages here.

The page's runs are picked by a narrow query (primary keys only, one more than a page, so that it
knows whether there is a next page) and then loaded by primary key, with whatever the list shows.
Loading the rows in the page query itself makes the database read every matching run's whole row
(description, search text) and sort them all before taking the first page, because a row wide with
joins cannot be sorted through an index; the keys can. A page sorted by one metric's last value
walks that metric's index and stops after the page (``keys_by_last_value``).

Counting every match can cost more than the page (a tag filter matching a sixth of 100,000 runs),
so a plan counts only when asked (``count_all``: an unfiltered list, whose count reads one index)
or when it can say without asking: a page that is the last one knows where the matches end.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from django.db import connection

from runs.models import Run, RunQuerySet
from runs.query import keys_by_last_value, parse, tests_keyed_values

# How many runs, in the sort's order, a page filtered by tags, properties or metrics looks through for
# its matches before it asks the database for every match (``_walked_keys``), and on which databases:
# PostgreSQL's planner, with the statistics of migration 0014, finds such a page by itself, several
# times faster than the walk (bench/RESULTS.md).
WALK = 1000
WALKING_DATABASES = ("sqlite",)


@dataclass(frozen=True)
class PagePlan:
    keys: list[int]  # the page's runs, in order
    number: int  # the page's number, from 1
    has_next: bool
    count: int | None  # the runs that match; None when not counted

    @property
    def has_previous(self) -> bool:
        return self.number > 1


def plan_page(listed: RunQuerySet, query: str, sort: str, number: int, size: int, *, count_all: bool) -> PagePlan:
    """Page ``number`` (from 1) of ``size`` runs of ``listed`` that ``query`` matches, in ``sort``'s
    order. A page past the last one has no keys; ``last_page`` finds the last."""
    start = (number - 1) * size
    matching = listed.search(query)
    walks = connection.vendor in WALKING_DATABASES and tests_keyed_values(parse(query))
    walked = _walked_keys(listed, query, sort, start + size + 1) if walks else None
    keys = walked[start:] if walked is not None else keys_by_last_value(matching, sort, start, start + size + 1)
    if keys is None:
        keys = list(matching.sorted_by(sort).values_list("pk", flat=True)[start : start + size + 1])
    has_next = len(keys) > size
    keys = keys[:size]
    if not has_next and (keys or number == 1):
        count: int | None = start + len(keys)  # the last page: the matches end here
    elif count_all or not keys:  # past the last page: how many there are says which is the last
        count = matching.count()
    else:
        count = None
    return PagePlan(keys, number, has_next, count)


def last_page(listed: RunQuerySet, query: str, sort: str, size: int, count: int) -> PagePlan:
    """The last page of ``count`` matches (page 1 when there are none)."""
    number = max(1, math.ceil(count / size))
    plan = plan_page(listed, query, sort, number, size, count_all=False)
    return PagePlan(plan.keys, plan.number, plan.has_next, count)


def _walked_keys(listed: RunQuerySet, query: str, sort: str, needed: int) -> list[int] | None:
    """The first ``needed`` matches in ``sort``'s order, found among the first ``WALK`` runs of all
    the listed ones, when ``sort`` is one that an index serves (the newest or oldest first, one
    metric's last value) and there are that many matches among them; None otherwise.

    A filter that matches many runs (a tag on a sixth of them) finds a page in the first few hundred
    runs of the sort's index. Left to itself, SQLite reads every match first, because its sampled
    statistics cannot tell a common tag from a rare one, then sorts them all. Here the index gives the first
    ``WALK`` runs in order and one query tests each of them (``search(correlated=True)``); a rare
    filter, with too few matches among them, falls back to the database's own plan, which suits it.
    Free text is left to the database: it walks the index itself, testing each run's search text."""
    if needed > WALK:
        return None
    walked = keys_by_last_value(listed, sort, 0, WALK)
    if walked is None:
        if sort.strip() not in ("-created", "created"):
            return None
        walked = list(listed.sorted_by(sort).values_list("pk", flat=True)[:WALK])
    # The walked runs are listed runs: testing them by key alone leaves the database nothing to start
    # from but their keys (given the listed runs' conditions too, SQLite may walk all of them).
    tested = Run.objects.filter(pk__in=walked).search(query, correlated=True)
    kept = set(tested.values_list("pk", flat=True))
    found = [pk for pk in walked if pk in kept]
    if len(found) >= needed or len(walked) < WALK:  # enough, or every listed run was walked
        return found[:needed]
    return None
