"""vbrsite.lists: sorting by allowed keys only, filters through a form, pages that keep the query."""

import pytest
from django import forms
from django.template import Context, Template
from django.test import RequestFactory

from inventory.models import VM, Manager
from vbrsite.lists import Listing, with_params

pytestmark = pytest.mark.django_db

SORTS = {"name": "name", "cpus": ("cpus", "name")}


class VmFilter(forms.Form):
    q = forms.CharField(required=False)
    status = forms.ChoiceField(choices=[("", "any"), ("up", "up"), ("down", "down")], required=False)
    min_cpus = forms.IntegerField(required=False, min_value=1)


FILTERS = {"q": ("name__icontains", "description__icontains"), "status": "status",
           "min_cpus": lambda qs, value: qs.filter(cpus__gte=value)}


@pytest.fixture
def vms():
    manager = Manager.objects.create(name="m", url="https://m/ovirt-engine/api")
    return [VM.objects.create(manager=manager, engine_id=str(i), name=f"vm{i:02d}", cpus=1 + i % 4,
                              status="up" if i % 2 else "down") for i in range(25)]


def listing(query: str, **options) -> Listing:
    request = RequestFactory().get("/vms/?" + query)
    form = VmFilter(request.GET or None)
    return Listing(request, VM.objects.all(), sorts=SORTS, default_sort="name", form=form,
                   filters=FILTERS, **{"per_page": 10, **options})


def names(result: Listing) -> list[str]:
    return [vm.name for vm in result.rows]


def test_pages_of_rows_in_the_default_order(vms):
    first = listing("")
    assert names(first) == [f"vm{i:02d}" for i in range(10)]
    assert first.page.paginator.num_pages == 3
    assert names(listing("page=3")) == [f"vm{i:02d}" for i in range(20, 25)]


def test_sorting_by_an_allowed_key_and_reversed(vms):
    assert names(listing("sort=-name"))[0] == "vm24"
    by_cpus = listing("sort=cpus&per_page=25")
    assert [vm.cpus for vm in by_cpus.rows] == sorted(vm.cpus for vm in by_cpus.rows)


def test_an_unknown_sort_key_falls_back_to_the_default(vms):
    result = listing("sort=engine_id")
    assert result.sort == "name"
    assert names(result)[0] == "vm00"


def test_filters_narrow_the_list(vms):
    assert names(listing("status=up&min_cpus=4")) == ["vm03", "vm07", "vm11", "vm15", "vm19", "vm23"]
    assert names(listing("q=VM1")) == [f"vm1{i}" for i in range(10)]
    assert listing("q=vm1").filtered and not listing("").filtered


def test_invalid_filter_input_filters_nothing_and_the_form_says_why(vms):
    result = listing("min_cpus=zero")
    assert result.page.paginator.count == 25
    assert "min_cpus" in result.form.errors


def test_links_keep_the_query_and_reset_the_page_on_sorting(vms):
    result = listing("status=up&page=2&sort=name")
    assert result.sort_url("name") == "?status=up&sort=-name"
    assert result.page_url(1) == "?status=up&page=1&sort=name"
    assert with_params(result.query, status=None, page=None, sort=None) == "?"


def test_the_template_tags_draw_headers_and_page_links(vms):
    result = listing("status=down&sort=-name")
    html = Template('{% load lists %}{% sort_header listing "name" "Name" %}{% pagination listing %}').render(
        Context({"listing": result}))
    assert 'aria-sort="descending"' in html
    assert 'href="?status=down&amp;sort=name"' in html
    assert "Page 1 of 2" in html and 'href="?status=down&amp;sort=-name&amp;page=2"' in html


def test_sorting_alone_for_views_that_page_on_their_own(vms):
    from vbrsite.lists import Sorting

    sorting = Sorting(RequestFactory().get("/vms/?sort=-cpus&q=x"), SORTS, "name")
    ordered = list(sorting.apply(VM.objects.all()))
    assert [vm.cpus for vm in ordered] == sorted((vm.cpus for vm in ordered), reverse=True)
    assert sorting.sort_url("cpus") == "?sort=cpus&q=x"
    html = Template('{% load lists %}{% sort_header sorting "cpus" "CPUs" "num" %}').render(
        Context({"sorting": sorting}))
    assert '<th class="num" aria-sort="descending">' in html


def test_an_aggregate_list_pages_by_its_grouping_key(vms):
    from django.db.models import Count, Max

    rows = VM.objects.values("status").annotate(n=Count("pk"), top=Max("name"))
    request = RequestFactory().get("/?sort=-n&per_page=1")
    result = Listing(request, rows, sorts={"n": "n", "status": "status"}, default_sort="status",
                     tiebreak="status")
    assert result.page.paginator.count == 2
    assert result.rows[0] == {"status": "down", "n": 13, "top": "vm24"}


def test_the_search_form_filters_a_short_list(vms):
    from vbrsite.lists import SearchForm

    request = RequestFactory().get("/?q=vm2")
    result = Listing(request, VM.objects.all(), sorts=SORTS, default_sort="name",
                     form=SearchForm(request.GET), filters={"q": ("name__icontains",)})
    assert names(result) == ["vm20", "vm21", "vm22", "vm23", "vm24"]
