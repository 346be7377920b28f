"""Request bodies where the server isn't gunicorn (or its objects differ): read through wsgi.input."""

import io

import pytest

from repositories.datamover.body import BodyTruncated, read_body


class _Trickle(io.BytesIO):
    """A wsgi.input that hands out at most 1000 bytes a read, as a socket may."""

    def read(self, size=-1):
        return super().read(min(size, 1000) if size and size > 0 else 1000)


def test_a_body_is_read_whole_through_wsgi_input_in_small_pieces():
    body = bytes(range(256)) * 40
    environ = {"wsgi.input": _Trickle(body + b"next request")}
    assert read_body(environ, len(body)) == body
    assert read_body({"wsgi.input": _Trickle(body)}, len(body), reuse=True) == body


def test_a_body_cut_short_says_how_much_came():
    with pytest.raises(BodyTruncated) as cut:
        read_body({"wsgi.input": _Trickle(b"x" * 2500)}, 4000)
    assert cut.value.received == 2500
