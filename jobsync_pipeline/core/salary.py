"""Salaries as the sources state them, and the one annualization rule of the codebase.

Every source says pay differently (Lever `per-hour-wage`, Greenhouse cents, RemoteOK bare numbers,
free text such as "$120k–$150k"). What the source said is kept as it was; the annual figures are
derived with `HOURS_PER_YEAR`-style factors defined here and nowhere else, so a search for "at least
100k a year" compares like with like. Nothing here raises on bad input: a salary that cannot be read
is `UNKNOWN` for that job.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass

# One rule for the whole codebase: a full-time year is 52 weeks of 5 days of 8 hours.
PERIODS_PER_YEAR = {"hour": 2080, "day": 260, "week": 52, "month": 12, "year": 1}

# An annual figure outside this range is a unit mistake (cents as dollars, a typo), not a salary.
PLAUSIBLE_ANNUAL = (1_000.0, 10_000_000.0)

_INTERVAL_WORDS = {
    "hour": "hour", "hourly": "hour", "hr": "hour", "h": "hour", "wage": "hour",
    "day": "day", "daily": "day", "diem": "day",
    "week": "week", "weekly": "week", "wk": "week",
    "month": "month", "monthly": "month", "mo": "month", "mth": "month",
    "year": "year", "yearly": "year", "annual": "year", "annually": "year", "annum": "year", "yr": "year",
    "salary": "year",
}

_CURRENCY_SYMBOLS = {"$": "USD", "€": "EUR", "£": "GBP", "¥": "JPY", "₹": "INR", "C$": "CAD", "A$": "AUD",
                     "CA$": "CAD", "AU$": "AUD", "US$": "USD", "R$": "BRL", "CHF": "CHF"}
_CURRENCY_CODE = re.compile(r"\b(USD|EUR|GBP|CAD|AUD|CHF|JPY|INR|BRL|SEK|NOK|DKK|PLN|NZD|SGD|MXN|ZAR|CZK|ILS)\b",
                            re.IGNORECASE)
_SYMBOL = re.compile(r"(US\$|CA\$|AU\$|C\$|A\$|R\$|[$€£¥₹])")
# an amount: digits with thousands separators or decimals, an optional k/m multiplier
_AMOUNT = re.compile(r"(\d{1,3}(?:[,.\s '’]\d{3})+(?:[.,]\d{1,2}(?!\d))?|\d+(?:[.,]\d+)?)\s*([kKmM])?(?![A-Za-z])")
_GROUPED = re.compile(r"(\d{1,3}(?:[,.\s '’]\d{3})+)(?:[.,](\d{1,2}))?")
# What a sentence that states pay says: the words, and an amount marked as money (a symbol or a code).
_PAY_WORDS = re.compile(r"\b(salary|salaries|pay|base|compensation|wage|wages|rate|ote|on[- ]target earnings|"
                        r"remuneration|stipend|earnings)\b", re.IGNORECASE)
_MONEY = re.compile(r"(?:US\$|CA\$|AU\$|C\$|A\$|R\$|[$€£¥₹])\s?\d|\d[\d,.]*\s?[kK]?\s?\b(?:USD|EUR|GBP|CAD|AUD|CHF|"
                    r"JPY|INR|BRL|SEK|NOK|DKK|PLN|NZD|SGD|MXN|ZAR|CZK|ILS)\b|\b(?:USD|EUR|GBP|CAD|AUD|CHF|INR|"
                    r"SEK|NOK|DKK|PLN|NZD|SGD)\s?\d")
MAX_PAY_TEXT = 300
# a sentence ends at . ! or ? before a space and a capital: "$90,000.00" and "U.S. base" go on
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z*])")
_PER = re.compile(r"(?:/|\bper\b|\ban\b|\ba\b|\bp\.?\s?)\s*(hour|hr|h|day|diem|week|wk|month|mo|mth|year|yr|annum)\b"
                  r"|\b(hourly|daily|weekly|monthly|yearly|annual|annually)\b", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class Salary:
    min: float | None = None
    max: float | None = None
    currency: str | None = None
    interval: str | None = None  # hour, day, week, month, year
    text: str | None = None
    annual_min: float | None = None
    annual_max: float | None = None
    # how the interval was found: stated (a field of the source), text (words beside the amounts),
    # inferred (from the amounts' size, when nothing said it); None while the interval is unknown
    period_basis: str | None = None

    @property
    def known(self) -> bool:
        return self.annual_min is not None or self.annual_max is not None


UNKNOWN = Salary()


def annualize(amount: float | None, interval: str | None) -> float | None:
    """`amount` per `interval` as a yearly figure, or None when either is unknown."""
    if amount is None or interval not in PERIODS_PER_YEAR:
        return None
    return round(amount * PERIODS_PER_YEAR[interval], 2)


def parse_interval(value: str | None) -> str | None:
    """A source's pay interval ("per-year-salary", "per-hour-wage", "Monthly", "yr") as hour, day,
    week, month or year; None when it says nothing known."""
    if not value:
        return None
    for word in re.split(r"[^a-z]+", value.lower()):
        if word in _INTERVAL_WORDS:
            return _INTERVAL_WORDS[word]
    return None


def stated_bounds(minimum: float | str | None,
                  maximum: float | str | None) -> tuple[float | None, float | None, str | None]:
    """A feed's salary bounds as it stated them: each a number, or unknown with its text kept (joined
    as the salary text) when it is not one; 0 means unknown."""
    low, low_text = _stated_amount(minimum)
    high, high_text = _stated_amount(maximum)
    return low, high, " - ".join(t for t in (low_text, high_text) if t) or None


def _stated_amount(value: float | str | None) -> tuple[float | None, str | None]:
    if value is None or value == "":
        return None, None
    try:
        amount = float(str(value).replace(",", "").strip())
    except ValueError:
        return None, str(value)
    return (amount, None) if amount > 0 else (None, None)


def salary_from_range(minimum, maximum, currency: str | None = None, interval: str | None = None,
                      text: str | None = None, *, interval_basis: str = "stated") -> Salary:
    """A salary from structured bounds. Bounds may be numbers or numeric strings; a missing interval is
    inferred from the size of the figures (an hourly rate is under 300, a yearly one at least 10,000)
    and left unknown in between, where month and year cannot be told apart. `interval_basis` says
    where a given `interval` came from (`period_basis`)."""
    low, high = _number(minimum), _number(maximum)
    if low is None and high is None:
        return parse_salary_text(text, default_currency=currency) if text else UNKNOWN
    if low is not None and high is not None and low > high:
        low, high = high, low
    period, basis = parse_interval(interval), interval_basis
    if period is None:
        period, basis = _period_by_size(high if high is not None else low), "inferred"
    annual_min, annual_max = annualize(low, period), annualize(high, period)
    if not all(_plausible(v) for v in (annual_min, annual_max)):
        annual_min = annual_max = None
    return Salary(min=low, max=high, currency=_currency(currency), interval=period, text=text or None,
                  annual_min=annual_min, annual_max=annual_max, period_basis=basis if period else None)


def parse_salary_text(text: str | None, default_currency: str | None = None) -> Salary:
    """A salary read from free text: "$120,000 - $150,000", "€50k–70k per year", "USD 60/hr", "£400 a day".
    UNKNOWN (with the text kept) when no amount can be read."""
    if not text or not isinstance(text, str):
        return UNKNOWN
    matches = [(match, _amount(match)) for match in _AMOUNT.finditer(text)]
    matches = [(match, amount) for match, amount in matches if amount is not None and amount > 0][:2]
    if not matches:
        return Salary(text=text)
    amounts = [amount for _, amount in matches]
    if len(matches) == 2 and not matches[0][0].group(2) and matches[1][0].group(2):
        # "$150-$190K", "€50–70k": the multiplier written once, after the second figure
        scaled = amounts[0] * (1_000 if matches[1][0].group(2) in "kK" else 1_000_000)
        if scaled <= amounts[1]:
            amounts[0] = scaled
    per = _PER.search(text)
    interval = parse_interval(per.group(0)) if per else None
    currency = _currency_in(text) or _currency(default_currency)
    return salary_from_range(min(amounts), max(amounts), currency, interval, text, interval_basis="text")


def pay_text_in(lines: list[str]) -> str | None:
    """The first passage of a description (its lines, as `core.text.html_lines` gives them) that states
    pay: a sentence with pay words and an amount marked as money ("Salary: $182,208 - $236,580/yr."), or
    a short pay-words heading whose amount is on the next line. None when none does."""
    for i, line in enumerate(lines):
        if not _PAY_WORDS.search(line):
            continue
        sentence = next((s for s in _SENTENCE_END.split(line) if _PAY_WORDS.search(s) and _MONEY.search(s)), None)
        if sentence is not None:
            return _passage(sentence)
        # a heading ("Salary Range:", "Compensation") and the range on the next line, starting with it
        heading = len(line) <= 60 and not line.rstrip().endswith((".", "!", "?"))
        if heading and i + 1 < len(lines) and len(lines[i + 1]) <= 120 and _MONEY.match(lines[i + 1].lstrip()):
            return _passage(f"{line} {lines[i + 1]}")
    return None


def _passage(text: str) -> str:
    """The sentence that holds the amount (the ones around it speak of bonuses and equity)."""
    sentences = _SENTENCE_END.split(text)
    text = next((sentence for sentence in sentences if _MONEY.search(sentence)), text)
    return text if len(text) <= MAX_PAY_TEXT else text[:MAX_PAY_TEXT - 1] + "…"


def _amount(match: re.Match) -> float | None:
    digits, multiplier = match.group(1), match.group(2)
    grouped = _GROUPED.fullmatch(digits)
    if grouped:
        number = float(re.sub(r"[,.\s '’]", "", grouped.group(1)))
        if grouped.group(2):
            number += float(f"0.{grouped.group(2)}")
    else:
        number = float(digits.replace(",", "."))
    if multiplier:
        number *= 1_000 if multiplier in "kK" else 1_000_000
    return number


def _number(value) -> float | None:
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, str):
        cleaned = re.sub(r"[^\d.]", "", value.replace(",", ""))
        try:
            value = float(cleaned) if cleaned else None
        except ValueError:
            return None
        if value is None:
            return None
    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError):
        return None
    if not math.isfinite(number) or number <= 0:
        return None  # sources write 0 for "not stated"
    return number


def _period_by_size(amount: float | None) -> str | None:
    if amount is None:
        return None
    if amount < 300:
        return "hour"
    if amount >= 10_000:
        return "year"
    return None


def _plausible(annual: float | None) -> bool:
    return annual is None or PLAUSIBLE_ANNUAL[0] <= annual <= PLAUSIBLE_ANNUAL[1]


def _currency(value: str | None) -> str | None:
    if not value or not isinstance(value, str):
        return None
    value = value.strip()
    if value in _CURRENCY_SYMBOLS:
        return _CURRENCY_SYMBOLS[value]
    return value.upper() if re.fullmatch(r"[A-Za-z]{3}", value) else None


def _currency_in(text: str) -> str | None:
    code = _CURRENCY_CODE.search(text)
    if code:
        return code.group(1).upper()
    symbol = _SYMBOL.search(text)
    return _CURRENCY_SYMBOLS[symbol.group(1)] if symbol else None


def annual_text(low: float | None, high: float | None, currency: str | None) -> str | None:
    """An annual salary range as people read it ("90,000–120,000 EUR a year"), or None without one: what
    search results and digests show."""
    if low is None and high is None:
        return None
    money = lambda value: f"{value:,.0f}"  # noqa: E731
    span = money(low) if high is None or high == low else (money(high) if low is None else f"{money(low)}–{money(high)}")
    return f"{span} {currency or ''} a year".replace("  ", " ")
