from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from vbrsite import views

urlpatterns = [
    path("", views.dashboard, name="dashboard"),
    path("dashboard/running/", views.dashboard_running, name="dashboard_running"),
    path("dashboard/repositories/", views.dashboard_repositories, name="dashboard_repositories"),
    path("login/", auth_views.LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("admin/", admin.site.urls),
    path("inventory/", include("inventory.urls")),
    path("repositories/", include("repositories.urls")),
    path("workers/", include("workers.urls")),
    path("jobs/", include("jobs.urls")),
]
