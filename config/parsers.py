"""Request parsers: JSON that refuses deep nesting with a 400 instead of a recursion error."""
from __future__ import annotations

import io

from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser

# No body this API accepts nests deeper than a few levels; 64 leaves room and stays far below
# Python's recursion limit, so the check never depends on how deep the stack already is.
MAX_JSON_DEPTH = 64


class BoundedJSONParser(JSONParser):
    def parse(self, stream, media_type=None, parser_context=None):
        # DRF's parser reads the stream; read it here once so the depth can be checked before
        # the recursive decoder runs.
        data = stream.read() if stream is not None else b""
        depth = json_depth(data)
        if depth > MAX_JSON_DEPTH:
            raise ParseError(f"JSON parse error - the body nests {depth} levels deep; at most {MAX_JSON_DEPTH} are accepted.")
        try:
            return super().parse(io.BytesIO(data), media_type, parser_context)
        except RecursionError:  # belt and braces: the count above should have refused it already
            raise ParseError("JSON parse error - the body nests too deeply.") from None


def json_depth(data: bytes) -> int:
    """The deepest bracket nesting in a JSON text, counted without parsing (strings skipped);
    0 for a text with too few brackets to exceed the limit."""
    if data.count(b"[") + data.count(b"{") <= MAX_JSON_DEPTH:
        return 0  # cannot be deeper than the limit: the common case costs two byte counts
    depth = deepest = 0
    in_string = escaped = False
    for byte in data:
        if in_string:
            if escaped:
                escaped = False
            elif byte == 0x5C:  # backslash
                escaped = True
            elif byte == 0x22:  # quote
                in_string = False
        elif byte == 0x22:
            in_string = True
        elif byte in (0x5B, 0x7B):  # [ {
            depth += 1
            deepest = max(deepest, depth)
        elif byte in (0x5D, 0x7D):
            depth -= 1
    return deepest
