"""What a capability above the engine watches in the event flow, registered when its app is
ready (``rewards`` watches for the action that qualifies a referral, and for its refund).

Observers run inside the recording transaction, after the chunk's rows are written: what they
write commits or rolls back with the events. They must be quick: they run for every chunk.
"""

from collections.abc import Callable, Sequence
from decimal import Decimal

from loyalty.models import Event
from loyalty.program.compiled import CompiledProgram

EventsObserver = Callable[[CompiledProgram, Sequence[Event]], None]
ReversalObserver = Callable[[Event, Decimal], None]

_on_events: list[EventsObserver] = []
_on_reversal: list[ReversalObserver] = []


def register_events_observer(observer: EventsObserver) -> None:
    """``observer(program, events)`` for each chunk's newly recorded events (not replays, not
    dry runs)."""
    if observer not in _on_events:
        _on_events.append(observer)


def register_reversal_observer(observer: ReversalObserver) -> None:
    """``observer(event, fraction)`` after an event is reversed, ``fraction`` being how much of
    it is reversed so far (1: all of it)."""
    if observer not in _on_reversal:
        _on_reversal.append(observer)


def events_recorded(program: CompiledProgram, events: Sequence[Event]) -> None:
    for observer in _on_events:
        observer(program, events)


def event_reversed(event: Event, fraction: Decimal) -> None:
    for observer in _on_reversal:
        observer(event, fraction)
