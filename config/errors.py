"""Error answers for URLs no view matched: JSON under /api/, the site's page elsewhere."""
from __future__ import annotations

from django.http import JsonResponse
from django.views import defaults


def page_not_found(request, exception):
    # An API client that sends `/api/assignments/abc/` matches no URL pattern, so no DRF view
    # answers; it still gets the JSON its schema documents, not an HTML page.
    if request.path.startswith("/api/"):
        return JsonResponse({"detail": "Not found."}, status=404)
    return defaults.page_not_found(request, exception)
