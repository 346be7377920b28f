from django.urls import path

from jobs import views, views_restore

app_name = "jobs"
urlpatterns = [
    path("", views.index, name="index"),
    path("new/<str:step>/", views.wizard, name="new"),
    path("<int:pk>/", views.detail, name="detail"),
    path("<int:pk>/edit/<str:step>/", views.wizard, name="edit"),
    path("<int:pk>/run/", views.job_run, name="run"),
    path("<int:pk>/enable/", views.job_enable, name="enable"),
    path("<int:pk>/delete/", views.job_delete, name="delete"),
    path("sessions/", views.sessions, name="sessions"),
    path("sessions/<int:pk>/", views.session_detail, name="session"),
    path("sessions/<int:pk>/progress/", views.session_progress, name="session_progress"),
    path("sessions/<int:pk>/cancel/", views.session_cancel, name="session_cancel"),
    path("restore-points/<int:pk>/", views.restore_point, name="restore_point"),
    # The restore wizard (issue 9): the entry, then one URL per step.
    path("restore/", views_restore.restore, name="restore"),
    path("restore/<str:step>/", views_restore.restore_step, name="restore_step"),
]
