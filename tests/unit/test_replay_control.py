"""Control messages on a replay connection get Binance's answers, the fake exchange's: both answer
by schemas/control_messages.py's rules (tests/unit/test_control_messages.py), and differ only in
the stream names they take, which these requests keep to the names both take."""

import json

from hypothesis import assume, given, settings
from hypothesis import strategies as st

from fake_binance import streams as fake_streams
from fake_binance.ws_server import handle_control as fake_handle_control
from replay.control import handle_control
from replay.streams import parse_stream
from schemas.control_messages import METHODS

SERVED = ["btcusdt@trade", "ethusdt@aggTrade", "bnbbtc@bookTicker", "btcusdt@kline_1m", "btcusdt@kline_1M"]
stream_names = st.one_of(st.sampled_from(SERVED), st.text(max_size=20), st.integers(), st.none())
request_ids = st.one_of(
    st.integers(min_value=-(2**64), max_value=2**64),
    st.text(max_size=40),
    st.none(),
    st.booleans(),
    st.floats(allow_nan=False),
)
params = st.one_of(
    st.lists(stream_names, max_size=4),
    st.lists(st.one_of(st.sampled_from(["combined", "other"]), st.booleans(), st.integers()), max_size=3),
    st.text(max_size=5),
    st.integers(),
    st.none(),
)
requests = st.fixed_dictionaries(
    {},
    optional={
        "method": st.one_of(st.sampled_from(METHODS), st.text(max_size=12), st.integers()),
        "params": params,
        "id": request_ids,
    },
)


def agree_on_names(message: object) -> bool:
    """Whether both sides take the same names as streams: the replay serves only stored kinds
    in lower case, where Binance also acknowledges streams a replay cannot serve (depth, tickers)."""
    if not isinstance(message, dict) or not isinstance(message.get("params"), list):
        return True
    names = [name for name in message["params"] if isinstance(name, str)]
    return all((parse_stream(name) is not None) == fake_streams.is_valid_stream(name) for name in names)


@settings(max_examples=400, deadline=None)
@given(requests)
def test_every_request_gets_binances_answer(request):
    assume(agree_on_names(request))
    text = json.dumps(request)
    replay = handle_control(text, ["btcusdt@trade"], combined=False, max_streams=1024)
    fake = fake_handle_control(text, ["btcusdt@trade"], combined=False)
    assert replay.reply == fake.reply
    assert [stream.name for stream in replay.subscribe] == fake.subscribe
    assert replay.unsubscribe == fake.unsubscribe
    assert replay.combined == fake.combined


@given(st.text(max_size=60))
def test_any_text_gets_an_answer_and_never_an_exception(text):
    outcome = handle_control(text, [], combined=True, max_streams=1024)
    reply = json.loads(outcome.reply)
    assert "result" in reply or reply["error"]["code"] in (0, 1, 2, 3)


def test_subscribe_answers_null_and_adds_the_stream():
    outcome = handle_control('{"method":"SUBSCRIBE","params":["btcusdt@aggTrade"],"id":1}', [], False, 1024)
    assert outcome.reply == '{"result":null,"id":1}'
    assert [stream.name for stream in outcome.subscribe] == ["btcusdt@aggTrade"]


def test_list_subscriptions_answers_the_streams():
    outcome = handle_control('{"method":"LIST_SUBSCRIPTIONS","id":3}', ["btcusdt@trade"], False, 1024)
    assert outcome.reply == '{"result":["btcusdt@trade"],"id":3}'


def test_more_streams_than_the_limit_are_refused():
    outcome = handle_control('{"method":"SUBSCRIBE","params":["ethusdt@trade"],"id":2}', ["btcusdt@trade"], False, 1)
    assert outcome.reply == '{"error":{"code":2,"msg":"Invalid request: too many streams"},"id":2}'
    assert outcome.subscribe == []


def test_a_stream_the_store_does_not_hold_is_an_invalid_stream():
    outcome = handle_control('{"method":"SUBSCRIBE","params":["btcusdt@depth"],"id":4}', [], False, 1024)
    assert outcome.reply == '{"error":{"code":2,"msg":"Invalid request: invalid stream"},"id":4}'
