"""Binance's rules for control messages (schemas/control_messages.py), the one home the fake
exchange and the replay answer by: the request id, and what a refused id gets."""

import json
import string

from hypothesis import given
from hypothesis import strategies as st

from schemas.control_messages import handle_control, valid_request_id

ID_CHARACTERS = string.ascii_letters + string.digits + "_-"
REFUSED_ID = '{"error":{"code":2,"msg":"Invalid request: request ID must be an unsigned integer"},"id":null}'

good_ids = st.one_of(
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.text(alphabet=ID_CHARACTERS, min_size=1, max_size=36),
    st.none(),
)
bad_ids = st.one_of(
    st.integers(min_value=2**63, max_value=2**70),
    st.integers(min_value=-(2**70), max_value=-(2**63) - 1),
    st.booleans(),
    st.floats(allow_nan=False),
    st.text(alphabet=ID_CHARACTERS, min_size=37, max_size=60),
    # A string with anything else in it, a trailing newline included.
    st.tuples(st.text(alphabet=ID_CHARACTERS, max_size=30), st.characters(blacklist_characters=ID_CHARACTERS)).map(
        "".join
    ),
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)


def listing(request_id: object) -> str:
    return json.dumps({"method": "LIST_SUBSCRIPTIONS", "id": request_id})


def answer(text: str) -> str:
    return handle_control(text, ["btcusdt@trade"], False, 1024, lambda name: name, lambda name: name).reply


@given(good_ids)
def test_an_id_binance_takes_is_answered_with_it(request_id: object) -> None:
    assert valid_request_id({"id": request_id})
    assert json.loads(answer(listing(request_id))) == {"result": ["btcusdt@trade"], "id": request_id}


@given(bad_ids)
def test_any_other_id_is_refused_without_echoing_it(request_id: object) -> None:
    assert not valid_request_id({"id": request_id})
    assert answer(listing(request_id)) == REFUSED_ID


def test_a_request_without_an_id_is_refused() -> None:
    assert not valid_request_id({})
    assert answer('{"method":"LIST_SUBSCRIPTIONS"}') == REFUSED_ID
