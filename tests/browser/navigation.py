"""Moving around the site the way a person does: through the main menu."""


def nav(page, label: str) -> None:
    """Click ``label`` in the main menu (other links on a page may carry the same words)."""
    page.get_by_role("navigation", name="Main").get_by_role("link", name=label, exact=True).click()
