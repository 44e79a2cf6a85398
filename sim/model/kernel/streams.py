"""Random streams: Philox counters rewound per step and phase, and the draws built on them.

One :class:`numpy.random.Generator` per simulation, over a counter-based Philox
bit generator keyed by the run's seed sequence (numba's ``binomial``,
``poisson`` and ``random`` reproduce numpy's draw for draw). Each phase of each
step (set-up, exit, relocation, entry) draws from its own stream: the counter
is set to ``(0, 0, step, phase)`` when the phase begins (:func:`begin_phase`),
exactly the stream of ``Generator(Philox(key, counter=(0, 0, step, phase)))``.
So two scenarios run with the same seed share their random numbers phase by
phase (common random numbers), and a difference in one phase does not shift the
next phase's draws.
"""

from __future__ import annotations

import ctypes
import functools
from typing import NamedTuple

import numpy as np

from sim.model.kernel.cache import jit

PHASES = ("setup", "events", "exit", "relocation", "entry")
"""Phases with their own random stream, numbered as ``sim.model.model.PHASES`` (events draw nothing here)."""
SETUP, EXIT, RELOCATION, ENTRY = 0, 2, 3, 4


class Streams(NamedTuple):
    """A run's random streams: a Generator over Philox, and views of the Philox state the kernel rewinds.

    ``counter`` is the Philox counter (4 × uint64, least significant first);
    ``state`` the 64-byte ``philox_state`` struct of numpy as 8 words (word 2
    holds the buffer position, word 7 the cached 32-bit half); ``key`` the
    Philox key (2 × uint64). All are views of memory owned by ``rng``'s bit
    generator, so a batch re-keys one generator per run instead of building one.
    """

    rng: np.random.Generator
    counter: np.ndarray
    state: np.ndarray
    key: np.ndarray


def streams(seed: int | np.random.SeedSequence) -> Streams:
    """The random streams of a run with this seed sequence (Philox keyed by it, as ``np.random.Philox(seed)``)."""
    _check_philox_layout()
    bit_generator = np.random.Philox(seed)
    state = np.ctypeslib.as_array((ctypes.c_uint64 * 8).from_address(bit_generator.ctypes.state_address))
    counter = np.ctypeslib.as_array((ctypes.c_uint64 * 4).from_address(int(state[0])))
    key = np.ctypeslib.as_array((ctypes.c_uint64 * 2).from_address(int(state[1])))
    return Streams(np.random.Generator(bit_generator), counter, state, key)


def philox_keys(seeds: list[np.random.SeedSequence] | list[int]) -> np.ndarray:
    """The Philox key of each seed, ``[run, 2]`` uint64: what ``np.random.Philox(seed)`` is keyed by."""
    keys = np.empty((len(seeds), 2), dtype=np.uint64)
    for i, seed in enumerate(seeds):
        sequence = seed if isinstance(seed, np.random.SeedSequence) else np.random.SeedSequence(seed)
        keys[i] = sequence.generate_state(2, np.uint64)
    return keys


@functools.cache
def _check_philox_layout() -> None:
    """Check once that rewinding the counter as :func:`begin_phase` does gives Philox's public stream.

    Raises:
        RuntimeError: if numpy's ``philox_state`` layout is not the one assumed here.
    """
    bit_generator = np.random.Philox(key=[3, 5])
    state = np.ctypeslib.as_array((ctypes.c_uint64 * 8).from_address(bit_generator.ctypes.state_address))
    counter = np.ctypeslib.as_array((ctypes.c_uint64 * 4).from_address(int(state[0])))
    rng = np.random.Generator(bit_generator)
    rng.random(3)
    rng.integers(0, 2**31, dtype=np.uint32)  # leaves a cached 32-bit half
    getattr(begin_phase, "py_func", begin_phase)(counter, state, 7, 2)  # plain Python: no compilation here
    key = np.ctypeslib.as_array((ctypes.c_uint64 * 2).from_address(int(state[1])))
    message = f"numpy {np.__version__}'s Philox state layout differs from sim/model/kernel/streams.py's assumption"
    if not np.array_equal(key, [3, 5]):
        raise RuntimeError(message)
    expected = np.random.Generator(np.random.Philox(key=[3, 5], counter=[0, 0, 7, 2]))
    if not (np.array_equal(rng.random(6), expected.random(6))
            and rng.integers(0, 2**31, dtype=np.uint32) == expected.integers(0, 2**31, dtype=np.uint32)):
        raise RuntimeError(message)


def begin_phase(counter, state, step, phase):
    """Point the run's Generator at the stream of this step's phase: Philox counter (0, 0, step, phase).

    The buffered block and the cached 32-bit half are dropped, so the next draw
    starts a fresh block, as a new ``Philox(key, counter=(0, 0, step, phase))`` would.
    """
    counter[0] = 0
    counter[1] = 0
    counter[2] = step
    counter[3] = phase
    state[2] = 4  # buffer_pos = PHILOX_BUFFER_SIZE: the buffer is spent
    state[7] = 0  # has_uint32 = 0


begin_phase = jit(begin_phase)


def multinomial(rng, n, p, out):
    """One Multinomial(n, p) draw into ``out``, as sequential conditional binomials (numpy's algorithm)."""
    d = p.shape[0]
    for j in range(d):
        out[j] = 0
    remaining = n
    remaining_p = 1.0
    for j in range(d - 1):
        if remaining <= 0:
            return
        q = min(max(p[j] / remaining_p, 0.0), 1.0) if remaining_p > 0.0 else 1.0
        out[j] = rng.binomial(remaining, q)
        remaining -= out[j]
        remaining_p -= p[j]
    out[d - 1] = remaining


multinomial = jit(multinomial)


def categorical(rng, p):
    """One draw from the probabilities ``p``: one uniform against their cumulative sum (``firms.draw_categorical``)."""
    u = rng.random()
    cumulative = 0.0
    for j in range(p.shape[0] - 1):
        cumulative += p[j]
        if u < cumulative:
            return j
    return p.shape[0] - 1


categorical = jit(categorical)


def take_uniform(rng, pool, total, m, taken):
    """Move a uniform random subset of ``m`` of the ``total`` firms counted by class in ``pool`` into ``taken``.

    One firm at a time without replacement: a uniform position among the firms
    left, its class by the cumulative counts. Returns the firms left. (The
    position is below ``total``: a uniform is at most 1 − 2⁻⁵³, and its product
    with a count below 2⁵³ never rounds up to the count.)
    """
    for _ in range(m):
        j = int(rng.random() * total)
        k = 0
        cumulative = pool[0]
        while j >= cumulative:
            k += 1
            cumulative += pool[k]
        pool[k] -= 1
        taken[k] += 1
        total -= 1
    return total


take_uniform = jit(take_uniform)
