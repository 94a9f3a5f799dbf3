"""authentik's duration strings ("hours=1;minutes=30", "days=30", "seconds=0") as timedeltas."""

from __future__ import annotations

from datetime import timedelta

UNITS = ("weeks", "days", "hours", "minutes", "seconds", "microseconds", "milliseconds")


def parse(text: str) -> timedelta:
    """Parse "unit=N;unit=N". Raises ValueError naming the bad part and the expected form."""
    kwargs: dict[str, float] = {}
    for part in (p.strip() for p in (text or "").split(";")):
        if not part:
            continue
        unit, sep, amount = part.partition("=")
        unit = unit.strip().lower()
        try:
            if not sep or unit not in UNITS:
                raise ValueError
            kwargs[unit] = kwargs.get(unit, 0) + float(amount)
        except ValueError:
            raise ValueError(f"{part!r} in duration {text!r}: expected unit=number with unit one of "
                             f"{', '.join(UNITS)}, e.g. hours=1;minutes=30") from None
    if not kwargs:
        raise ValueError(f"duration {text!r} is empty: expected e.g. minutes=5")
    return timedelta(**kwargs)


def seconds(text: str) -> float:
    return parse(text).total_seconds()
