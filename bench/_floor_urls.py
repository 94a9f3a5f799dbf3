"""The core's URLs plus ``/-/bench/floor/``: a view that answers 200 with nothing else to do, through the same
middleware and WSGI thread pool as every other Django view. Its time is the framework's floor that the bench
prints beside the executor's and the token endpoint's. Only bench/_floor_settings.py routes here."""

from django.http import HttpResponse
from django.urls import include, path
from django.views.decorators.csrf import csrf_exempt

FLOOR_PATH = "-/bench/floor/"


@csrf_exempt
def floor(request):
    return HttpResponse(b"ok", content_type="text/plain")


urlpatterns = [path(FLOOR_PATH, floor), path("", include("core.urls"))]
