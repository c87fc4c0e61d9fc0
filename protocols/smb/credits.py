"""SMB2 credits: the CreditCharge rule and the server's MessageId window. Sans-IO.

Each request spends credits: its MessageId and the ``CreditCharge - 1`` ids after it must lie
in the connection's *command sequence window* (MS-SMB2 3.3.1.1, 3.3.5.2.3); each response
grants more (CreditResponse), widening the window at the top. A request's CreditCharge must
pay for the larger of what it sends and what it may get back, one credit per 64 KiB
(3.3.5.2.5); dialect 2.0.2 has no multi-credit requests (every request costs one).

Public interface: :func:`credit_charge`, :func:`check_credits` and :class:`CreditCheck` (pure
functions), :class:`SequenceWindow` (the per-connection window). A request outside the window
means a broken or hostile client: the server terminates the connection. A charge too small
is answered with INVALID_PARAMETER.

>>> w = SequenceWindow()              # a new connection may send MessageId 0 (NEGOTIATE)
>>> w.consume(0), w.available
(True, 0)
>>> w.grant(130)
>>> check_credits(128, 49, 8 << 20, available=w.available), w.consume(1, 128), w.available
(<CreditCheck.OK: 0>, True, 2)
"""

from __future__ import annotations

from enum import IntEnum
from typing import Final

CREDIT_UNIT: Final = 65536   # bytes one credit pays for (large MTU)


class CreditCheck(IntEnum):
    """The outcome of :func:`check_credits`."""

    OK = 0
    BAD_CHARGE = 1       # answer INVALID_PARAMETER (3.3.5.2.5)
    OUT_OF_WINDOW = 2    # more credits than the client holds: terminate the connection (3.3.5.2.3)


def credit_charge(send: int, expected_response: int = 0) -> int:
    """The CreditCharge a request must carry in a multi-credit dialect (MS-SMB2 3.3.5.2.5):
    ``1 + (max(send, expected_response) - 1) // 65536``, at least 1.

    >>> credit_charge(0), credit_charge(1), credit_charge(65536), credit_charge(65537)
    (1, 1, 1, 2)
    >>> credit_charge(100, expected_response=8 << 20)
    128
    """
    return 1 + (max(send, expected_response, 1) - 1) // CREDIT_UNIT


def check_credits(charge: int, send: int, expected_response: int, available: int,
                  multi_credit: bool = True) -> CreditCheck:
    """Whether a request is within its credit window and pays enough for its size.

    ``charge`` is the header's CreditCharge, ``send`` the request's payload size (a WRITE's
    data, an IOCTL's input), ``expected_response`` the most it asks back (a READ's Length,
    a QUERY_DIRECTORY's OutputBufferLength), ``available`` the credits the client holds
    (granted less used). Without multi-credit (2.0.2) every request costs one credit and
    CreditCharge is ignored. With it, a charge of 0 counts as 1 but only for payloads up
    to 64 KiB, and a charge smaller than :func:`credit_charge` is BAD_CHARGE.

    >>> check_credits(1, 65536, 0, available=1)
    <CreditCheck.OK: 0>
    >>> check_credits(1, 0, 65537, available=10)
    <CreditCheck.BAD_CHARGE: 1>
    >>> check_credits(0, 70000, 0, available=10)
    <CreditCheck.BAD_CHARGE: 1>
    >>> check_credits(128, 0, 8 << 20, available=127)
    <CreditCheck.OUT_OF_WINDOW: 2>
    >>> check_credits(0, 0, 0, available=0)
    <CreditCheck.OUT_OF_WINDOW: 2>
    >>> check_credits(0, 1 << 20, 0, available=1, multi_credit=False)
    <CreditCheck.OK: 0>
    """
    cost = max(charge, 1) if multi_credit else 1
    if cost > available:
        return CreditCheck.OUT_OF_WINDOW
    if multi_credit and max(charge, 1) < credit_charge(send, expected_response):
        return CreditCheck.BAD_CHARGE
    return CreditCheck.OK


class SequenceWindow:
    """The MessageIds a connection's client may still use (MS-SMB2 3.3.1.1).

    Starts as {0}. :meth:`grant` adds ids at the top as responses grant credits;
    :meth:`consume` takes the ids a request spends (all of them must be free and inside), in
    any order, so holes left by requests still in flight are fine. Memory is bounded by the
    credits outstanding. CANCEL requests are not checked (MS-SMB2 3.3.5.2.3): do not consume
    their ids.

    >>> w = SequenceWindow()
    >>> w.grant(4)                       # window: 0..4
    >>> w.consume(2, 2), w.consume(3), w.consume(5), w.available
    (True, False, False, 3)
    >>> w.consume(0), w.low, w.consume(1), w.low, w.available
    (True, 1, True, 4, 1)
    """

    __slots__ = ("_used", "high", "low")

    def __init__(self, first: int = 0, size: int = 1) -> None:
        self.low = first              # the lowest id not yet spent
        self.high = first + size      # one past the highest id granted
        self._used: set[int] = set()  # spent ids above ``low``

    @property
    def available(self) -> int:
        """Credits the client holds: ids granted and not yet spent."""
        return self.high - self.low - len(self._used)

    def grant(self, credits: int) -> None:
        """Widen the window by ``credits`` ids at the top (a response's CreditResponse)."""
        if credits < 0:
            raise ValueError(f"cannot grant {credits} credits")
        self.high += credits

    def contains(self, message_id: int, charge: int = 1) -> bool:
        """Whether ids ``message_id`` .. ``message_id + max(charge, 1) - 1`` are all free."""
        n = max(charge, 1)
        if message_id < self.low or message_id + n > self.high:
            return False
        return not any(i in self._used for i in range(message_id, message_id + n))

    def consume(self, message_id: int, charge: int = 1) -> bool:
        """Spend the ids of a request with this MessageId and CreditCharge (0 counts as 1);
        False, spending nothing, if any of them is outside the window or already spent."""
        if not self.contains(message_id, charge):
            return False
        self._used.update(range(message_id, message_id + max(charge, 1)))
        used = self._used
        while self.low in used:
            used.discard(self.low)
            self.low += 1
        return True
