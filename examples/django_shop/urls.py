"""The project's own routes; ``/api/inngest`` is answered before Django sees the request."""

from django.http import HttpRequest, JsonResponse
from django.urls import path


def home(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"shop": "open"})


urlpatterns = [path("", home)]
