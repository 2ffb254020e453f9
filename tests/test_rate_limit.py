"""The rate limit's schedule (GCRA) and its in-process limiter, on a simulated clock."""

import threading

import numpy as np
import pytest

from stock_pipeline.rate_limit import LocalLimiter, RateSettings


class SimulatedClock:
    """A clock that moves only when someone sleeps."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.overshoot = 0.0  # how late a thread wakes from a wait
        self._lock = threading.Lock()

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self.now += seconds + (self.overshoot if seconds > 0 else 0.0)


def most_in_window(times: list[float], window: float) -> int:
    """The most requests in any half-open window [t, t + window)."""
    stamps = np.sort(np.asarray(times))
    return int((np.searchsorted(stamps, stamps + window) - np.arange(len(stamps))).max())


def simulated(settings: RateSettings) -> tuple[LocalLimiter, SimulatedClock]:
    """A limiter whose waits move a simulated clock."""
    clock = SimulatedClock()
    return LocalLimiter(settings, clock=clock, sleep=clock.sleep), clock


def send(limiter: LocalLimiter, clock: SimulatedClock, count: int) -> list[float]:
    """The times (from the first) at which `count` requests in a row go."""
    sent = []
    for _ in range(count):
        with limiter.request():
            sent.append(clock())
    return sent


def test_a_burst_goes_at_once_then_one_request_per_interval():
    limiter, clock = simulated(RateSettings(requests_per_second=4, burst=3))
    start = clock()
    assert [at - start for at in send(limiter, clock, 7)] == [0.0, 0.0, 0.0, 0.25, 0.5, 0.75, 1.0]


def test_a_quiet_spell_refills_the_burst_but_no_more():
    limiter, clock = simulated(RateSettings(requests_per_second=4, burst=3))
    send(limiter, clock, 3)
    clock.sleep(60.0)
    start = clock()
    assert [at - start for at in send(limiter, clock, 5)] == [0.0, 0.0, 0.0, 0.25, 0.5]


def test_a_late_wake_up_moves_the_schedule_back():
    limiter, clock = simulated(RateSettings(requests_per_second=4, burst=1))
    clock.overshoot = 0.1  # every wait ends 0.1 s late: the next slot counts from the late send
    start = clock()
    assert [round(at - start, 9) for at in send(limiter, clock, 3)] == [0.0, 0.35, 0.7]


@pytest.mark.parametrize(("rate", "burst"), [(5.0, 1), (10.0, 4), (2.5, 10)])
def test_no_window_holds_more_than_rate_plus_burst(rate: float, burst: int):
    limiter, clock = simulated(RateSettings(rate, burst))
    sent = []
    for round_ in range(6):  # bursts of demand separated by quiet spells of varying length
        sent += send(limiter, clock, int(3 * rate))
        clock.sleep(0.3 * round_)
    for window in (0.5, 1.0, 3.0):
        assert most_in_window(sent, window) <= burst + rate * window
    assert most_in_window(sent, 1.0) >= rate  # the demand was above the limit: it was binding


def test_requests_in_flight_stay_under_max_concurrent():
    limiter = LocalLimiter(RateSettings(requests_per_second=1e6, burst=100, max_concurrent=3))
    meet = threading.Barrier(3, timeout=30)  # three at a time must be let in together
    in_flight, most, lock = 0, 0, threading.Lock()

    def send() -> None:
        nonlocal in_flight, most
        with limiter.request():
            with lock:
                in_flight += 1
                most = max(most, in_flight)
            meet.wait()
            with lock:
                in_flight -= 1

    threads = [threading.Thread(target=send) for _ in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert most == 3


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"requests_per_second": 0}, "requests_per_second is 0"),
        ({"requests_per_second": 2, "burst": 0}, "burst is 0"),
        ({"requests_per_second": 2, "burst": 1.5}, "burst is 1.5"),
        ({"requests_per_second": 2, "max_concurrent": 0}, "max_concurrent is 0"),
        ({"requests_per_second": 2, "per_minute": 5}, "unknown keys \\['per_minute'\\]"),
    ],
)
def test_bad_settings_are_refused_with_the_key_named(settings: dict, message: str):
    with pytest.raises(ValueError, match=message):
        RateSettings.from_params(settings)


def test_null_means_no_limit():
    assert RateSettings.from_params(None) is None
