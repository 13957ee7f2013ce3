"""The thread tuner on a simulated machine: tokens take as long as the machine's load says they take."""

from __future__ import annotations

from covey.device_node.threads import ThreadTuner


class Machine:
    """Seconds per token for each thread count; `busy` is another process taking one of the 2 cores."""

    def __init__(self) -> None:
        self.now = 0.0
        self.threads = 2
        self.busy = False
        self.calls: list[int] = []

    def set_threads(self, n: int) -> None:
        self.threads = n
        self.calls.append(n)

    def token_seconds(self) -> float:
        if self.busy:  # two threads wait on the descheduled one at every barrier
            return {1: 1 / 80, 2: 1 / 8}[self.threads]
        return {1: 1 / 80, 2: 1 / 120}[self.threads]

    def generate(self, tuner: ThreadTuner, tokens: int) -> list[int]:
        tuner.begin()
        seen = []
        for n in range(1, tokens + 1):
            self.now += self.token_seconds()
            tuner.step(n)
            seen.append(self.threads)
        return seen


def tuner_on(machine: Machine) -> ThreadTuner:
    return ThreadTuner(2, machine.set_threads, clock=lambda: machine.now)


def test_on_an_idle_machine_all_threads_are_kept() -> None:
    machine = Machine()
    tuner = tuner_on(machine)
    seen = machine.generate(tuner, 400)
    assert tuner.threads == 2 and tuner.switches == 0
    assert 1 in machine.calls  # it did try one thread, and went back
    assert seen.count(2) > 0.9 * len(seen)  # lost probes wait longer and longer


def test_when_another_process_takes_a_core_it_drops_to_one_thread_and_comes_back_when_it_leaves() -> None:
    machine = Machine()
    tuner = tuner_on(machine)
    machine.generate(tuner, 100)
    machine.busy = True
    seen = machine.generate(tuner, 600)
    assert tuner.threads == 1
    busy_seconds = sum({1: 1 / 80, 2: 1 / 8}[n] for n in seen)
    assert busy_seconds < 0.3 * 600 / 8  # far faster than staying at two threads
    machine.busy = False
    machine.generate(tuner, 2000)
    assert tuner.threads == 2


def test_what_it_learnt_carries_to_the_next_request_and_the_gap_between_requests_is_not_counted() -> None:
    machine = Machine()
    machine.busy = True
    tuner = tuner_on(machine)
    machine.generate(tuner, 200)
    assert tuner.threads == 1
    machine.now += 60.0  # a minute with no request
    seen = machine.generate(tuner, 8)
    assert seen[0] == 1 and tuner.threads == 1


def test_one_thread_is_never_probed_below_and_max_is_never_exceeded() -> None:
    machine = Machine()
    machine.threads = 1
    tuner = ThreadTuner(1, machine.set_threads, clock=lambda: machine.now)
    machine.generate(tuner, 200)
    assert machine.calls == []
    machine2 = Machine()
    tuner2 = tuner_on(machine2)
    machine2.generate(tuner2, 1000)
    assert set(machine2.calls) <= {1, 2}
