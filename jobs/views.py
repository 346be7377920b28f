from django.shortcuts import render


def index(request):
    return render(request, "placeholder.html", {"title": "Jobs"})


def sessions(request):
    return render(request, "placeholder.html", {"title": "Sessions"})


def restore(request):
    return render(request, "placeholder.html", {"title": "Restore"})
