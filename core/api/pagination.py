from rest_framework.pagination import CursorPagination


class NewestFirstCursorPagination(CursorPagination):
    """Stable pages over growing tables: newest first, by primary key."""

    ordering = "-id"
    page_size_query_param = "page_size"
    max_page_size = 500
