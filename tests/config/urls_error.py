"""The site's URLs plus one page that fails, to see the server-error answer's headers."""

from django.http import HttpRequest, HttpResponse
from django.urls import path

from config.urls import urlpatterns as site


def fails(request: HttpRequest) -> HttpResponse:
    raise RuntimeError("a page that fails on purpose")


urlpatterns = [path("fails/", fails), *site]
