from django.shortcuts import render


def dashboard(request):
    """Whether everything is protected, at a glance (figures arrive with the components)."""
    return render(request, "vbrsite/dashboard.html", {})
