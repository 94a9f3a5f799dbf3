"""authentik's page envelope (``authentik/api/pagination.py``), which its outposts and clients page through.

``{"pagination": {next, previous, count, current, total_pages, start_index, end_index},
"results": [...], "autocomplete": {}}``; ``next``/``previous`` are page numbers, 0 when there is none.
"""

from __future__ import annotations

from rest_framework.pagination import PageNumberPagination
from rest_framework.response import Response

MAX_PAGE_SIZE = 1000


class Pagination(PageNumberPagination):
    page_query_param = "page"
    page_size_query_param = "page_size"
    max_page_size = MAX_PAGE_SIZE

    def get_paginated_response(self, data):
        page = self.page
        paginator = page.paginator
        return Response({
            "pagination": {
                "next": page.next_page_number() if page.has_next() else 0,
                "previous": page.previous_page_number() if page.has_previous() else 0,
                "count": paginator.count,
                "current": page.number,
                "total_pages": paginator.num_pages,
                "start_index": page.start_index(),
                "end_index": page.end_index(),
            },
            "results": data,
            "autocomplete": {},
        })

    def get_paginated_response_schema(self, schema):
        number = {"type": "number"}
        return {
            "type": "object",
            "properties": {
                "pagination": {
                    "type": "object",
                    "properties": {k: number for k in ("next", "previous", "count", "current", "total_pages",
                                                        "start_index", "end_index")},
                    "required": ["next", "previous", "count", "current", "total_pages", "start_index",
                                 "end_index"],
                },
                "results": schema,
                "autocomplete": {"type": "object"},
            },
            "required": ["pagination", "results", "autocomplete"],
        }
