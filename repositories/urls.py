from django.urls import path

from repositories import views

app_name = "repositories"
urlpatterns = [
    path("", views.index, name="index"),
    path("add/", views.add, name="add"),
    path("test/", views.test, name="test"),
    path("<int:pk>/", views.detail, name="detail"),
    path("<int:pk>/row/", views.row, name="row"),
    path("<int:pk>/edit/", views.edit, name="edit"),
    path("<int:pk>/test/", views.test, name="test_existing"),
    path("<int:pk>/verify/", views.verify, name="verify"),
    path("gateways/", views.gateways, name="gateways"),
    path("gateways/add/", views.gateway_add, name="gateway_add"),
]
