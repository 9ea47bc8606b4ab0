"""Data frames written to a client in batches, below the WebSocket library, with backpressure.

A replay at speed=0 sends as many frames as the cursor gives; one library call and one socket
write per frame would cost more CPU than building the frame, and a TCP segment per frame a client
wakeup per frame. Frames are therefore appended to a batch, written in one transport write when
the replay next waits (a fetch, the schedule, the client), as server frames are: unmasked,
uncompressed (the server offers no compression), text, whole. The library still owns the
connection: its handshake, control frames, pings and close; replies to control messages are sent
after the batch before them is written, so they keep their place among the frames.
"""

import asyncio

from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosedError
from websockets.protocol import State

_TEXT_FIN = 0x81
# A full buffer is polled this often until the client has taken a quarter of it.
_DRAIN_POLL_S = 0.005


# The headers of frames shorter than 64 KiB, by length, made once: every frame needs one.
_SHORT_HEADERS = [
    *(bytes((_TEXT_FIN, length)) for length in range(126)),
    *(bytes((_TEXT_FIN, 126)) + length.to_bytes(2, "big") for length in range(126, 1 << 16)),
]


def frame_header(length: int) -> bytes:
    """The header of an unmasked, final text frame (RFC 6455 5.2) of `length` payload bytes."""
    if length < 1 << 16:
        return _SHORT_HEADERS[length]
    return bytes((_TEXT_FIN, 127)) + length.to_bytes(8, "big")


def text_frame(payload: str) -> bytes:
    """An unmasked, final text frame holding `payload`."""
    data = payload.encode()
    return frame_header(len(data)) + data


class Outbox:
    def __init__(self, ws: ServerConnection, buffer_bytes: int) -> None:
        self._ws = ws
        self._buffer_bytes = buffer_bytes
        self._batch: list[bytes] = []
        self._flush_scheduled = False
        self.waiting = False  # for the stall watchdog: the client has a full buffer

    def append(self, payload: str) -> bool:
        """Queues one frame if the client's buffer is known to have room; False if put() must
        look first. Between two turns of the event loop neither the transport's buffer nor the
        connection's state can change but by this batch's flush (written at the next turn, or
        by flush()): what put() found holds until then, and is not asked again per frame."""
        if not self._flush_scheduled:
            return False
        data = payload.encode()
        self._batch += (frame_header(len(data)), data)
        return True

    async def put(self, payload: str) -> None:
        """Queues one frame; waits first while the client leaves more than buffer_bytes unread."""
        transport = self._ws.transport
        if transport.get_write_buffer_size() > self._buffer_bytes:
            self.flush()
            self.waiting = True
            try:
                while transport.get_write_buffer_size() > self._buffer_bytes // 4:
                    self._check_open()
                    await asyncio.sleep(_DRAIN_POLL_S)
            finally:
                self.waiting = False
        self._check_open()
        data = payload.encode()
        self._batch += (frame_header(len(data)), data)
        if not self._flush_scheduled:
            self._flush_scheduled = True
            asyncio.get_running_loop().call_soon(self.flush)

    def flush(self) -> None:
        """Writes the batch (if the connection is still open)."""
        # From here on put() looks at the buffer and the state again.
        self._flush_scheduled = False
        if self._batch and self._ws.protocol.state is State.OPEN:
            self._ws.transport.write(b"".join(self._batch))
        self._batch.clear()

    def _check_open(self) -> None:
        if self._ws.protocol.state is not State.OPEN:
            raise ConnectionClosedError(None, None)
