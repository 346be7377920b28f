"""Paginated, sortable, filterable lists for every page, with the query string kept.

A view builds a ``Listing`` from the request and its queryset:

    listing = Listing(request, Session.objects.all(), sorts={"name": "name", "started": ("started", "pk")},
                      default_sort="-started", form=SessionFilterForm(request.GET or None),
                      filters={"state": "state", "q": ("name__icontains", "tasks__vm_name__icontains")})
    return render(request, "jobs/sessions.html", {"listing": listing})

and its template shows ``listing.page.object_list`` with headers and page links:

    {% load lists %}
    <tr>{% sort_header listing "name" "Name" %}{% sort_header listing "size" "Size" "num" %}</tr>
    {% pagination listing %}

Sorting takes only the keys the view allows (``?sort=name``, ``?sort=-name``),
so a user can't order by an arbitrary field; filtering goes through a form, so
bad input is reported at the field; every link keeps the other parameters.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cached_property, reduce
from operator import or_
from typing import Any

from django import forms
from django.core.paginator import Page, Paginator
from django.db.models import Q, QuerySet
from django.http import HttpRequest, QueryDict

PER_PAGE = 50
MAX_PER_PAGE = 500
SORT_PARAM = "sort"
PAGE_PARAM = "page"

# A filter: a lookup ("state", "created__date__gte"), several lookups OR-ed
# together (a search box over many fields), or a function (queryset, value) -> queryset.
Filter = str | tuple[str, ...] | Callable[[QuerySet, Any], QuerySet]


class SearchForm(forms.Form):
    """The one-box filter of a short list: ``filters={"q": ("name__icontains", ...)}``."""

    q = forms.CharField(required=False, max_length=200, label="Search",
                        widget=forms.TextInput(attrs={"type": "search", "placeholder": "Search"}))


def with_params(query: QueryDict, **changes) -> str:
    """The query string with ``changes`` applied (None removes a parameter), as "?a=1&b=2"."""
    query = query.copy()
    for name, value in changes.items():
        if value is None:
            query.pop(name, None)
        else:
            query[name] = str(value)
    encoded = query.urlencode()
    return f"?{encoded}" if encoded else "?"


def apply_filters(queryset: QuerySet, form: forms.Form | None,
                  filters: Mapping[str, Filter]) -> QuerySet:
    """Narrow the queryset by each filled-in field of a valid form; an invalid form filters nothing."""
    if form is None or not form.is_bound or not form.is_valid():
        return queryset
    distinct = False
    for name, how in filters.items():
        value = form.cleaned_data.get(name)
        if value in (None, "", [], ()):
            continue
        if callable(how):
            queryset = how(queryset, value)
        elif isinstance(how, tuple):
            queryset = queryset.filter(reduce(or_, (Q(**{lookup: value}) for lookup in how)))
        else:
            queryset = queryset.filter(**{how: value})
        distinct = distinct or any(_crosses_relation(queryset, lookup)
                                   for lookup in (() if callable(how) else _as_tuple(how)))
    # A search across a relation may match one row many times.
    return queryset.distinct() if distinct else queryset


def _crosses_relation(queryset: QuerySet, lookup: str) -> bool:
    from django.core.exceptions import FieldDoesNotExist

    try:
        field = queryset.model._meta.get_field(lookup.split("__")[0])
    except FieldDoesNotExist:
        return False
    return field.is_relation and (field.many_to_many or field.one_to_many)


def _as_tuple(ordering: str | tuple[str, ...]) -> tuple[str, ...]:
    return (ordering,) if isinstance(ordering, str) else tuple(ordering)


def _reverse(field: str) -> str:
    return field[1:] if field.startswith("-") else f"-{field}"


def sort_queryset(queryset: QuerySet, sort: str, sorts: Mapping[str, str | tuple[str, ...]],
                  default_sort: str, tiebreak: str = "pk") -> tuple[QuerySet, str]:
    """Order by the allowed key ``sort`` ("name" or "-name"), else by ``default_sort``.

    Returns the ordered queryset and the sort actually used. ``tiebreak`` (a
    unique field: the primary key, or the grouping key of an aggregate
    ``values()`` query) ends every ordering so pages never repeat or skip rows.
    """
    key = sort.lstrip("-")
    if key not in sorts:
        sort, key = default_sort, default_sort.lstrip("-")
    fields = _as_tuple(sorts[key])
    if sort.startswith("-"):
        fields = tuple(_reverse(f) for f in fields)
    if tiebreak and not any(f.lstrip("-") == tiebreak for f in fields):
        fields = (*fields, f"-{tiebreak}" if sort.startswith("-") else tiebreak)
    return queryset.order_by(*fields), sort


def _per_page(request: HttpRequest, default: int) -> int:
    try:
        value = int(request.GET.get("per_page", default))
    except ValueError:
        return default
    return max(1, min(MAX_PER_PAGE, value))


class Sorting:
    """The sort a request asks for, among the keys a view allows; for views that page on their own.

        sorting = Sorting(request, {"name": "name", "cpus": ("cpus", "name")}, default_sort="name")
        vms = sorting.apply(vms)            # then {% sort_header sorting "cpus" "CPUs" "num" %}
    """

    def __init__(self, request: HttpRequest, sorts: Mapping[str, str | tuple[str, ...]],
                 default_sort: str, tiebreak: str = "pk"):
        self.query = request.GET
        self.sorts = sorts
        self.default_sort = default_sort
        self.tiebreak = tiebreak
        requested = request.GET.get(SORT_PARAM, "")
        self.sort = requested if requested.lstrip("-") in sorts else default_sort

    def apply(self, queryset: QuerySet) -> QuerySet:
        return sort_queryset(queryset, self.sort, self.sorts, self.default_sort, self.tiebreak)[0]

    def sort_state(self, key: str) -> str:
        """"ascending", "descending" or "" for the column ``key`` (for aria-sort)."""
        if self.sort == key:
            return "ascending"
        if self.sort == f"-{key}":
            return "descending"
        return ""

    def sort_url(self, key: str) -> str:
        """The link of a column header: sort by it, or reverse it when it is the current sort."""
        target = f"-{key}" if self.sort == key else key
        return with_params(self.query, **{SORT_PARAM: target, PAGE_PARAM: None})


@dataclass
class Listing:
    """One page of a filtered, sorted list, and what its links need."""

    page: Page
    sort: str
    query: QueryDict
    form: forms.Form | None = None

    def __init__(self, request: HttpRequest, queryset: QuerySet, *,
                 sorts: Mapping[str, str | tuple[str, ...]], default_sort: str,
                 form: forms.Form | None = None, filters: Mapping[str, Filter] | None = None,
                 per_page: int = PER_PAGE, tiebreak: str = "pk"):
        self.form = form
        self.query = request.GET
        self.sorting = Sorting(request, sorts, default_sort, tiebreak)
        self.sort = self.sorting.sort
        queryset = self.sorting.apply(apply_filters(queryset, form, filters or {}))
        paginator = Paginator(queryset, _per_page(request, per_page))
        self.page = paginator.get_page(request.GET.get(PAGE_PARAM))

    @cached_property
    def rows(self) -> list:
        return list(self.page.object_list)

    @property
    def filtered(self) -> bool:
        """True when a filter narrows the list (the page says how to clear it)."""
        return bool(self.form is not None and self.form.is_bound and self.form.is_valid()
                    and any(v not in (None, "", [], ()) for v in self.form.cleaned_data.values()))

    def sort_state(self, key: str) -> str:
        return self.sorting.sort_state(key)

    def sort_url(self, key: str) -> str:
        return self.sorting.sort_url(key)

    def page_url(self, number: int) -> str:
        return with_params(self.query, **{PAGE_PARAM: number})


class PagedList:
    """One page of a plain list (rows read from a data mover, not the database).

    Duck-types the part of ``Listing`` that ``{% pagination %}`` uses.
    """

    def __init__(self, request: HttpRequest, rows: list, per_page: int = PER_PAGE):
        self.query = request.GET
        self.page = Paginator(rows, _per_page(request, per_page)).get_page(request.GET.get(PAGE_PARAM))

    @property
    def rows(self) -> list:
        return list(self.page.object_list)

    def page_url(self, number: int) -> str:
        return with_params(self.query, **{PAGE_PARAM: number})
