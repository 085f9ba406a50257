"""Progress bars of chains that report their own progress (BKMR's Gibbs engine; PyMC draws its
own): one `rich` bar per chain, on stderr, with its phase (warm-up, then sampling), the
iterations done, the time elapsed and the time left.

`rich` comes with PyMC, whose bars look the same. On a terminal the bars move; written to a
file or a pipe, `rich` prints their final state once, a line per chain.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

Report = Callable[[int, int], None]  # (chain, iterations done, warm-up included)


class ChainBars:
    """The bars of `chains` chains of `tune` warm-up and `draws` kept iterations each; `update`
    is the `Report` the sampler calls. A chain's clock starts with its first report, so a
    chain queued behind others (more chains than processes) shows 'waiting', not a slow
    start."""

    def __init__(self, chains: int, tune: int, draws: int, console: Console | None = None):
        self.tune, self.total = tune, tune + draws
        self.bars = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("elapsed"),
            TimeElapsedColumn(),
            TextColumn("left"),
            TimeRemainingColumn(),
            console=console or Console(stderr=True),
            refresh_per_second=2,  # the parent shares the cores with the chains
        )
        self.tasks: list[TaskID] = [
            self.bars.add_task(self._label(c, -1), total=self.total, start=False)
            for c in range(chains)
        ]

    def _label(self, chain: int, done: int) -> str:
        if done < 0:
            phase = "waiting"
        elif done >= self.total:
            phase = "done"
        elif done < self.tune:
            phase = "warm-up"
        else:
            phase = "sampling"
        return f"chain {chain}  {phase:<8}"

    def update(self, chain: int, done: int) -> None:
        task = self.tasks[chain]
        if done >= 0 and not self.bars.tasks[task].started:
            self.bars.start_task(task)
        self.bars.update(task, completed=max(done, 0), description=self._label(chain, done))


@contextlib.contextmanager
def chain_bars(
    chains: int, tune: int, draws: int, enabled: bool = True, title: str = ""
) -> Iterator[Report | None]:
    """Bars for the duration of the block; yields their `Report`, or None when `enabled` is
    false (nothing printed: the sampler then reports nothing either)."""
    if not enabled:
        yield None
        return
    shown = ChainBars(chains, tune, draws)
    if title:
        shown.bars.console.print(title, highlight=False)
    with shown.bars:
        yield shown.update
