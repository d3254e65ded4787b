"""HTTP/1.1 for `clientdesk serve`: uvicorn's httptools protocol with a bound on a request's
head (request line and headers).

httptools keeps a request line or a header it is still reading in memory, however long: a
client that sends `GET /graphql?query=` and a gigabyte without a line break holds a
gigabyte of the server's memory. Here a head longer than MAX_HEAD_BYTES is answered 431
and the connection closed; bodies are bounded by the app (gql/guards.py).
"""

from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

MAX_HEAD_BYTES = 64 * 1024  # nginx and Node.js allow 8-16 KiB of headers; a long URL fits


class BoundedHttpToolsProtocol(HttpToolsProtocol):
    """Counts the bytes of each request's head as they arrive and stops at the bound."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.head_bytes = 0
        self.in_head = True  # until a request's headers are complete

    def data_received(self, data: bytes) -> None:
        counting = self.in_head
        super().data_received(data)
        if counting and self.in_head:  # the whole of `data` was head
            self.head_bytes += len(data)
            if self.head_bytes > MAX_HEAD_BYTES and not self.transport.is_closing():
                self.send_431_response()

    def on_headers_complete(self) -> None:
        self.in_head = False
        self.head_bytes = 0
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self.in_head = True  # the next request on this connection

    def send_431_response(self) -> None:
        message = b"Request line and headers are too large."
        self.transport.write(
            b"HTTP/1.1 431 Request Header Fields Too Large\r\n"
            b"content-type: text/plain; charset=utf-8\r\n"
            b"content-length: " + str(len(message)).encode() + b"\r\n"
            b"connection: close\r\n\r\n" + message
        )
        self.transport.close()
