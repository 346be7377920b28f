from django.urls import path

from inventory import views

app_name = "inventory"
urlpatterns = [
    path("", views.index, name="index"),
    path("vms/<int:pk>/", views.vm_detail, name="vm_detail"),
    path("managers/", views.managers, name="managers"),
    path("managers/add/", views.manager_add, name="manager_add"),
    path("managers/test/", views.manager_test, name="manager_test"),
    path("managers/<int:pk>/", views.manager_edit, name="manager_edit"),
    path("managers/<int:pk>/test/", views.manager_test, name="manager_test_existing"),
    path("managers/<int:pk>/sync/", views.manager_sync, name="manager_sync"),
    path("managers/<int:pk>/row/", views.manager_row, name="manager_row"),
]
