"""Template tags of vbrsite.lists: sortable column headers and page links that keep the query."""

from django import template

from vbrsite.lists import Listing, Sorting

register = template.Library()


@register.inclusion_tag("vbrsite/lists/sort_header.html")
def sort_header(listing: Listing | Sorting, key: str, label: str, css: str = "") -> dict:
    """A ``<th>`` linking to the list sorted by ``key`` (again: reversed), with aria-sort."""
    return {"label": label, "url": listing.sort_url(key), "state": listing.sort_state(key),
            "css": css}


@register.inclusion_tag("vbrsite/lists/pagination.html")
def pagination(listing: Listing) -> dict:
    """Previous / next and first / last page links, with the count of rows."""
    page = listing.page
    return {"page": page, "listing": listing,
            "first": listing.page_url(1) if page.number > 2 else "",
            "previous": listing.page_url(page.previous_page_number()) if page.has_previous() else "",
            "next": listing.page_url(page.next_page_number()) if page.has_next() else "",
            "last": (listing.page_url(page.paginator.num_pages)
                     if page.number < page.paginator.num_pages - 1 else "")}
