"""Exact decimal arithmetic, and the one way every decimal the product prints is written. Pure.

Python's default decimal context keeps 28 significant digits, so a product or sum of long
NUMERICs (a quote quantity of a 1e20 volume at 8 decimals, a moving average of such closes)
would be rounded silently. PostgreSQL's NUMERIC holds up to 131,072 digits before the point and
16,383 after: arithmetic here runs in a context that wide, where sums, differences and products
of stored values are exact.
"""

from decimal import MAX_EMAX, MIN_EMIN, ROUND_HALF_EVEN, Context, Decimal, DivisionByZero, InvalidOperation

NUMERIC_MAX_DIGITS = 131_072 + 16_383

EXACT = Context(
    prec=NUMERIC_MAX_DIGITS,
    rounding=ROUND_HALF_EVEN,
    Emax=MAX_EMAX,
    Emin=MIN_EMIN,
    traps=[InvalidOperation, DivisionByZero],
)

# A quotient that does not terminate keeps this many significant digits past those of its
# dividend; one that does (a mean over 10, 20 or any 2^a 5^b values of at most 20 factors) is
# exact.
QUOTIENT_EXTRA_DIGITS = 20


def plain(value: Decimal) -> str:
    """Fixed-point text, never an exponent: 0.00000099, not 9.9E-7; 100000000000000000000, not
    1E+20. Trailing zeros stay as stored ("0.35280000")."""
    return f"{value:f}"


def add(left: Decimal, right: Decimal) -> Decimal:
    return EXACT.add(left, right)


def subtract(left: Decimal, right: Decimal) -> Decimal:
    return EXACT.subtract(left, right)


def multiply(left: Decimal, right: Decimal) -> Decimal:
    return EXACT.multiply(left, right)


def divide(dividend: Decimal, divisor: Decimal | int) -> Decimal:
    """dividend / divisor: exact when the quotient terminates within QUOTIENT_EXTRA_DIGITS more
    digits than the dividend has, else rounded (half even) to that many."""
    digits = max(len(dividend.as_tuple().digits), 1) + QUOTIENT_EXTRA_DIGITS
    context = EXACT.copy()
    context.prec = digits
    return context.divide(dividend, Decimal(divisor))
