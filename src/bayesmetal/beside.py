"""Weighted beside unweighted: a survey run's report shows the estimates of the same analysis
without the design next to its own, as NHANES papers print both.

"The same analysis" is the newest finished fit run folder beside the new one (the same output
root) whose resolved config equals the survey run's in everything that decides a result (data
files, cohort, analysis, model, priors, summaries) and whose `survey` is off; how it was sampled
(`sampler`), the draws the design adjustment reads, where it was written and the provenance's
bookkeeping may differ. Nothing is
refitted: without such a run the report says how to make one.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import yaml

from bayesmetal import compare
from bayesmetal.runs import FAILURE_FILE, RUN_MARKER, is_run_folder
from bayesmetal.stages import Results

NAME = "weighted_vs_unweighted"  # the table's CSV, the figures' files
WEIGHTED, UNWEIGHTED = "weighted (design-adjusted)", "unweighted"
# keys that do not make it another analysis (beside compare's IGNORED_KEYS)
NOT_THE_ANALYSIS = ("survey", "sampler", "provenance", "model.summaries.draws_for_design")
# the data's place: the data themselves are compared by the provenance's checksums and n
NOT_THE_ANALYSIS += ("data.nhanes_dir", "table.path")
KEPT_PROVENANCE = ("provenance.data_files_sha256", "provenance.n")


def _analysis_keys(config: dict[str, Any]) -> dict[str, str]:
    """The flattened config keys that decide a result, apart from the survey design."""
    flat = compare.flatten(config)
    return {
        key: value
        for key, value in flat.items()
        if not compare.is_ignored(key)
        and (key.startswith(KEPT_PROVENANCE) or not key.startswith(NOT_THE_ANALYSIS))
    }


def read_config(folder: Path) -> dict[str, Any] | None:
    """A run folder's config.resolved.yaml; None where it has none that reads."""
    try:
        config = yaml.safe_load((folder / "config.resolved.yaml").read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError, UnicodeDecodeError):
        return None
    return config if isinstance(config, dict) else None


def _created(folder: Path) -> float:
    """When the run folder was completed: its marker's time (a later --summarise of it or a
    file dropped into it does not make it newer)."""
    marker = folder / RUN_MARKER
    return (marker if marker.is_file() else folder).stat().st_mtime


def _candidates(root: Path, config: dict[str, Any]) -> list[Path]:
    """Finished unweighted fit runs in `root` of `config`'s analysis, newest first: never a
    hidden folder (one being written, or set aside by --overwrite) or one whose summaries
    failed."""
    wanted = _analysis_keys(config)
    found = []
    for folder in root.iterdir() if root.is_dir() else ():
        if folder.name.startswith(".") or not folder.is_dir() or not is_run_folder(folder):
            continue
        if (folder / FAILURE_FILE).exists() or compare.marker_kind(folder) not in (None, "fit"):
            continue
        other = read_config(folder)
        if other is None or other.get("survey") not in (False, None):
            continue
        if _analysis_keys(other) == wanted:
            found.append((_created(folder), folder.name, folder))
    return [folder for *_, folder in sorted(found, reverse=True)]


def unweighted_twin(root: Path, config: dict[str, Any]) -> compare.Run | None:
    """The newest finished fit run in `root` of `config`'s analysis without the survey design
    whose headline tables read, as compare reads it; None when there is none."""
    for folder in _candidates(root, config):
        try:
            return compare.read_run(folder, UNWEIGHTED)
        except (compare.NotARunFolderError, OSError):
            continue  # removed or incomplete since it was listed: the next one
    return None


def with_unweighted(results: Results, config: dict[str, Any], dest: Path) -> Results:
    """`results` of a survey run with its unweighted twin's headline quantities side by side
    (a table and figures leading the report) and a note naming the twin and the conclusions
    that change, or saying how to make one; unchanged for an unweighted run. The twin's
    folder is only read. `dest`: where this run is written; the twin is looked for beside
    it."""
    if config.get("survey") in (False, None):
        return results
    root = dest.parent
    try:
        return _beside(results, config, dest, unweighted_twin(root, config))
    except Exception as exc:  # noqa: BLE001 - another run's folder never fails this one
        note = f"not compared with an unweighted run ({type(exc).__name__}: {exc})"
        return replace(results, notes={**results.notes, UNWEIGHTED: note})


def _beside(
    results: Results, config: dict[str, Any], dest: Path, twin: compare.Run | None
) -> Results:
    """`with_unweighted` once the twin is read (or found missing)."""
    root = dest.parent
    if twin is None:
        note = (
            f"none beside this run in {root.name}/ to compare with: fit the same config with "
            f"--set survey=false into {root.name}/, then python scripts/fit.py --summarise {dest}"
        )
        return replace(results, notes={**results.notes, UNWEIGHTED: note})
    flagged = None
    if "ok" in results.diagnostics:
        flagged = int((~results.diagnostics["ok"].astype(bool)).sum())
    tables = {k: v for k, v in results.tables.items() if k in compare.HEADLINE_FILES}
    ours = compare.Run(root, WEIGHTED, config, tables, flagged)
    result = compare.compare_runs([twin, ours])
    changed = compare.change_texts(result.changes)
    note = f"{twin.path.name}/ beside this run; " + (
        f"conclusions that change: {'; '.join(changed)}" if changed else "no conclusion changes"
    )
    note += "".join(f"; note: {n}" for n in result.notes)  # e.g. a run that did not converge
    labels = [UNWEIGHTED, WEIGHTED]
    figures = dict(results.figures)
    if not result.table.empty:
        figures[NAME] = compare.comparison_figure(result.table, labels, result.interval)
    if not result.curves.empty:
        figures[f"{NAME}_curves"] = compare.curves_figure(result.curves, labels, result.interval)
    caption = (
        f"estimate [{result.interval} interval] of each headline quantity, unweighted "
        f"({twin.path.name}) and weighted with the design-adjusted posterior (this run)"
    )
    return replace(
        results,
        tables={**results.tables, NAME: compare.display_table(result)},
        figures=figures,
        headline=(NAME, *results.headline),
        captions={**results.captions, NAME: caption},
        notes={**results.notes, UNWEIGHTED: note},
    )
