from django.urls import path

from core.web import views

urlpatterns = [
    path("", views.root, name="root"),
    path("if/user/", views.portal, name="user-portal"),
    path("if/user/sessions/<uuid:uuid>/revoke/", views.revoke_session, name="user-session-revoke"),
    path("if/user/devices/<str:kind>/<int:pk>/delete/", views.delete_device, name="user-device-delete"),
    path("if/user/network-passwords/", views.create_network_password, name="user-network-password-create"),
    path("if/user/network-passwords/<slug:identifier>/delete/", views.delete_network_password,
         name="user-network-password-delete"),
]
