from __future__ import annotations

from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from studio import views

urlpatterns = [
    path("", views.home, name="home"),
    path("accounts/", include("django.contrib.auth.urls")),
    path("", include("studio.account_urls")),
    path("w/<str:workspace>/experiments/", views.experiment_list, name="experiment_list"),
    path("w/<str:workspace>/experiments/<str:experiment>/", views.run_list, name="experiment_runs"),
    path("w/<str:workspace>/runs/", views.run_list, name="run_list"),
    path("w/<str:workspace>/runs/<str:run_id>/", views.run_detail, name="run_detail"),
    path("admin/", admin.site.urls),
    path("api/v1/", include("runs.api.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
    path("api-auth/", include("rest_framework.urls")),
]

handler404 = "studio.views.not_found"
handler500 = "studio.views.server_failed"
