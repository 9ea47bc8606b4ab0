"""The replay's own data frames are RFC 6455 server frames: what the websockets library reads."""

from hypothesis import given
from hypothesis import strategies as st
from websockets.frames import Frame, Opcode
from websockets.streams import StreamReader

from replay.outbox import text_frame


def parse(data: bytes) -> Frame:
    """websockets' own frame parser, fed the bytes (a server's frames are unmasked)."""
    reader = StreamReader()
    reader.feed_data(data)
    reader.feed_eof()
    parser = Frame.parse(reader.read_exact, mask=False)
    try:
        next(parser)
    except StopIteration as done:
        frame: Frame = done.value
        assert not reader.buffer, "bytes left after the frame"
        return frame
    raise AssertionError("the frame is incomplete")


@given(st.text(max_size=70_000))
def test_a_text_frame_of_any_length_reads_back_as_its_text(payload):
    frame = parse(text_frame(payload))
    assert frame.opcode is Opcode.TEXT
    assert frame.fin
    assert bytes(frame.data).decode() == payload
