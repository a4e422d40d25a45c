from django.urls import path

from audit.api.views import AuditListView

urlpatterns = [
    path("audit", AuditListView.as_view(), name="audit-list"),
]
