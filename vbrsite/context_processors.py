NAVIGATION = (
    ("dashboard", "Dashboard"),
    ("inventory:index", "Inventory"),
    ("repositories:index", "Repositories"),
    ("workers:index", "Workers"),
    ("jobs:index", "Jobs"),
    ("jobs:sessions", "Sessions"),
    ("jobs:restore", "Restore"),
)
NAVIGATION_URL_NAMES = {url_name for url_name, _ in NAVIGATION}


def _is_active(url_name: str, current: str) -> bool:
    if current == url_name:
        return True
    if current in NAVIGATION_URL_NAMES or not url_name.endswith(":index"):
        return False
    return current.split(":")[0] == url_name.split(":")[0]


def navigation(request):
    """The main menu, with the current section marked."""
    match = getattr(request, "resolver_match", None)
    current = match.view_name if match else ""
    return {
        "navigation": [
            {"url_name": url_name, "label": label, "active": _is_active(url_name, current)}
            for url_name, label in NAVIGATION
        ]
    }
