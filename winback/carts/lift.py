"""The difference of two conversion rates with a 95% confidence interval.

Newcombe's hybrid score interval (Newcombe 1998, "Interval estimation for the difference between
independent proportions", method 10): a Wilson score interval for each rate, combined. Unlike
the simple Wald interval it stays inside [-1, 1] and behaves with small groups and rates near 0,
which is where a fresh holdout starts; with large groups the two agree closely. Pure functions,
standard library only.
"""

import math
from dataclasses import dataclass

Z_95 = 1.959963984540054  # the standard normal's 97.5th percentile


@dataclass(frozen=True)
class Interval:
    low: float
    high: float


def wilson(successes: int, trials: int, z: float = Z_95) -> Interval:
    """The Wilson score interval of one proportion."""
    if trials <= 0:
        raise ValueError("no trials")
    p = successes / trials
    z2 = z * z
    denominator = 1 + z2 / trials
    centre = (p + z2 / (2 * trials)) / denominator
    half = z * math.sqrt(p * (1 - p) / trials + z2 / (4 * trials * trials)) / denominator
    return Interval(max(0.0, centre - half), min(1.0, centre + half))


def newcombe_difference(
    successes_a: int, trials_a: int, successes_b: int, trials_b: int, z: float = Z_95
) -> Interval:
    """The interval of rate(a) - rate(b) by Newcombe's hybrid score method."""
    p_a, p_b = successes_a / trials_a, successes_b / trials_b
    a, b = wilson(successes_a, trials_a, z), wilson(successes_b, trials_b, z)
    difference = p_a - p_b
    low = difference - math.sqrt((p_a - a.low) ** 2 + (b.high - p_b) ** 2)
    high = difference + math.sqrt((a.high - p_a) ** 2 + (p_b - b.low) ** 2)
    return Interval(low, high)
