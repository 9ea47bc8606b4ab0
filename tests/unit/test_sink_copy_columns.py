"""The sink's COPY column lists name exactly its row tuples' fields, in their order: a row is
written field by field into the columns the list names, so a list that drifts would store a value
in another column (or fail every batch)."""

import pytest

from consumer import sink
from consumer.parse import AggTradeRow, BookTickerRow, KlineRow


@pytest.mark.parametrize(
    ("columns", "fields"),
    [
        (sink.AGG_TRADE_COPY_COLUMNS, AggTradeRow._fields),
        (sink.KLINE_COPY_COLUMNS, KlineRow._fields),
        (sink.BOOK_TICKER_COPY_COLUMNS, BookTickerRow._fields),
    ],
)
def test_a_copy_column_list_is_its_rows_fields_in_order(columns: str, fields: tuple[str, ...]) -> None:
    assert [name.strip() for name in columns.split(",")] == list(fields)
