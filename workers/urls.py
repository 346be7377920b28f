from django.urls import path

from workers import views

app_name = "workers"
urlpatterns = [
    path("", views.index, name="index"),
    path("table/", views.index_table, name="index_table"),
    path("deploy/", views.deploy, name="deploy"),
    path("<int:pk>/", views.detail, name="detail"),
    path("<int:pk>/start/", views.start, name="start"),
    path("<int:pk>/<str:action>/", views.confirm, name="confirm"),
]
