"""The API's JSON parser: DRF's, with nesting too deep to parse answered as malformed JSON."""

from django.utils.translation import gettext_lazy as _
from rest_framework import parsers
from rest_framework.exceptions import ParseError


class JSONParser(parsers.JSONParser):
    def parse(self, stream, media_type=None, parser_context=None):
        try:
            return super().parse(stream, media_type, parser_context)
        except RecursionError:
            # Python's parser gives up about a thousand levels deep; no body of ours nests so.
            raise ParseError(_("JSON parse error - nested too deeply.")) from None
