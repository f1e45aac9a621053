"""Data-loader settings that depend on the machine."""

import os


def usable_cpus():
    """Return how many CPUs this process may run on.

    The CPU affinity where the platform has one (a container or ``taskset``
    limit counts), otherwise ``os.cpu_count()``.

    Returns
    -------
    int
        At least 1.

    Example
    -------
    >>> usable_cpus() >= 1
    True
    """
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def available_workers(limit):
    """Loader worker processes: ``limit``, but no more than the usable CPUs.

    A recipe's default ``num_workers``: enough to keep a GPU fed, and no
    more processes than CPUs on a small machine (PyTorch warns about more).
    Give ``--num_workers=N`` to choose yourself.

    Arguments
    ---------
    limit : int
        The most workers wanted (0 loads in the training process).

    Returns
    -------
    int
        ``min(limit, usable_cpus())``.

    Example
    -------
    >>> available_workers(0)
    0
    >>> 1 <= available_workers(4) <= 4
    True
    """
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 0:
        raise ValueError(
            f"num_workers limit must be an integer >= 0, got {limit!r}"
        )
    return min(limit, usable_cpus())
