"""The thread tuner on a simulated machine: tokens take as long as the machine's load says they take."""

from __future__ import annotations

from covey.device_node.threads import ThreadTuner


class Machine:
    """Seconds per token for each thread count; `busy` is another process taking one of the 2 cores.
    Every thread is on CPU the whole time (llama.cpp's threads spin while they wait)."""

    def __init__(self, speeds: dict[int, float] | None = None) -> None:
        self.now = 0.0
        self.cpu = 0.0
        self.speeds = speeds  # tokens/s per thread count, when given (no `busy` then)
        self.threads = max(speeds) if speeds else 2
        self.busy = False
        self.calls: list[int] = []

    def set_threads(self, n: int) -> None:
        self.threads = n
        self.calls.append(n)

    def token_seconds(self) -> float:
        if self.speeds:
            return 1 / self.speeds[self.threads]
        if self.busy:  # two threads wait on the descheduled one at every barrier
            return {1: 1 / 80, 2: 1 / 8}[self.threads]
        return {1: 1 / 80, 2: 1 / 120}[self.threads]

    def generate(self, tuner: ThreadTuner, tokens: int) -> list[int]:
        tuner.begin()
        seen = []
        for n in range(1, tokens + 1):
            took = self.token_seconds()
            self.now += took
            self.cpu += took * self.threads
            tuner.step(n)
            seen.append(self.threads)
        return seen


def tuner_on(machine: Machine, goal="speed") -> ThreadTuner:
    return ThreadTuner(max(machine.speeds) if machine.speeds else 2, machine.set_threads, goal=goal,
                       clock=lambda: machine.now, cpu_clock=lambda: machine.cpu)


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


def test_the_energy_goal_takes_the_count_with_the_least_cpu_per_token_that_is_not_much_slower() -> None:
    two_cores = {1: 85.0, 2: 93.0}  # bench/bench_threads.py on 2 idle cores
    speed, energy = Machine(two_cores), Machine(two_cores)
    fast, frugal = tuner_on(speed), tuner_on(energy, goal="energy")
    speed.generate(fast, 600)
    energy.generate(frugal, 600)
    assert fast.threads == 2 and frugal.threads == 1
    assert energy.cpu < 0.7 * speed.cpu and energy.now < 1.15 * speed.now


def test_the_energy_goal_stops_where_fewer_threads_would_be_much_slower() -> None:
    four = Machine({1: 12.0, 2: 22.0, 3: 30.0, 4: 35.0})
    tuner = tuner_on(four, goal="energy")
    four.generate(tuner, 3000)
    assert tuner.threads == 3  # 2 threads would be 37% slower than 4; 3 are 14% slower for 14% less CPU
