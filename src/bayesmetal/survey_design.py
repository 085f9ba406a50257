"""The complex survey design of an analysis: weights, strata, PSUs and the analysis domain.

NHANES is a stratified, clustered, unequal-probability sample. Design-based variances use the
whole design (every person of the cohort's cycles with a positive weight), with the analysis
sample as a domain: persons outside it add nothing to the estimates but their PSUs still count
(subpopulation analysis; subsetting the design first would understate the variance).

`SurveyFrame` is the design as the cohort built it (the data layer); `SurveyWeights` is what a
model and the posterior adjustment read: the analysis rows' normalised weights and PSU codes.
The variance of a total is the with-replacement (first-stage) Taylor estimator of R's survey
package: sum over strata of n_h / (n_h - 1) x the spread of the PSU totals about their mean.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from bayesmetal.errors import DataError


@dataclass(frozen=True)
class SurveyFrame:
    """The full design: one row per person with a positive weight (`SEQN`, `weight`,
    `stratum`, `psu` with PSU codes unique across strata, `in_domain`)."""

    frame: pd.DataFrame
    weight_variable: str
    strata_variable: str
    psu_variable: str

    @property
    def n_strata(self) -> int:
        return int(self.frame["stratum"].nunique())

    @property
    def n_psus(self) -> int:
        return int(self.frame["psu"].nunique())

    @property
    def df(self) -> int:
        """Design degrees of freedom: PSUs minus strata."""
        return self.n_psus - self.n_strata

    def describe(self) -> str:
        """One line for reports: which weight, how many strata and PSUs, the domain."""
        domain = int(self.frame["in_domain"].sum())
        return (
            f"weight {self.weight_variable}, strata {self.strata_variable} ({self.n_strata}), "
            f"PSUs {self.psu_variable} ({self.n_psus}), design df {self.df}; analysis sample = "
            f"domain of {domain:,} among {len(self.frame):,} persons with a positive weight"
        )

    def weights_for(self, ids: np.ndarray) -> SurveyWeights:
        """The design as seen by a model fitted on the persons `ids` (in that order), all of
        them inside the domain."""
        by_id = self.frame.set_index("SEQN")
        missing = pd.Index(ids).difference(by_id.index[by_id["in_domain"]])
        if len(missing):
            raise DataError(
                f"{len(missing)} persons of the analysis sample have no positive survey weight "
                f"{self.weight_variable} (e.g. SEQN {missing[0]}); choose the weight of the "
                "smallest subsample the analysis uses"
            )
        rows = by_id.loc[ids]
        psus = self.frame.drop_duplicates("psu").sort_values("psu")
        codes = {psu: i for i, psu in enumerate(psus["psu"])}
        strata = {s: i for i, s in enumerate(sorted(psus["stratum"].unique()))}
        weights = rows["weight"].to_numpy(float)
        return SurveyWeights(
            weights=weights * len(weights) / weights.sum(),
            stratum=rows["stratum"].map(strata).to_numpy(int),
            psu=rows["psu"].map(codes).to_numpy(int),
            psu_stratum=psus["stratum"].map(strata).to_numpy(int),
            label=self.describe(),
        )


@dataclass(frozen=True)
class SurveyWeights:
    """What a design-based model needs: each analysis row's weight (normalised to sum to the
    sample size, so the pseudo-likelihood carries as much information as the sample), its
    stratum and PSU code, and the stratum of every PSU of the full design; `intervals` says
    whether the adjusted posterior gets the tails of a t on the design df ('t') or not."""

    weights: np.ndarray
    stratum: np.ndarray
    psu: np.ndarray
    psu_stratum: np.ndarray
    label: str = ""
    intervals: str = "normal"

    @property
    def df(self) -> int:
        """Design degrees of freedom: PSUs minus strata."""
        return len(self.psu_stratum) - len(np.unique(self.psu_stratum))

    @property
    def t_df(self) -> int | None:
        """The degrees of freedom of the adjusted posterior's t tails, or None (normal)."""
        return self.df if self.intervals == "t" else None

    def rows(self, index: np.ndarray) -> SurveyWeights:
        """The same design for a subset of the analysis rows."""
        return replace(
            self,
            weights=self.weights[index],
            stratum=self.stratum[index],
            psu=self.psu[index],
        )

    def psu_totals(self, values: np.ndarray) -> np.ndarray:
        """Per PSU of the full design (rows), the totals of the columns of `values` (one row
        per analysis person); 0 for a PSU with no one of the domain."""
        values = np.asarray(values, float).reshape(len(self.psu), -1)
        totals = np.zeros((len(self.psu_stratum), values.shape[1]))
        np.add.at(totals, self.psu, values)
        return totals

    def total_covariance(self, values: np.ndarray) -> np.ndarray:
        """Design covariance of the totals of the columns of `values` (one row per analysis
        person, already multiplied by the weight): the with-replacement Taylor estimator."""
        return self.psu_covariance(self.psu_totals(values))

    def psu_covariance(self, totals: np.ndarray, other: np.ndarray | None = None) -> np.ndarray:
        """The with-replacement Taylor estimator from PSU totals (one row per PSU): sum over
        strata of n_h / (n_h - 1) x the cross-products of the totals about their stratum
        mean. With `other` (a second, independent estimate of the same totals), the cross
        products of the two, symmetrised: free of the bias that noise in the totals adds."""
        counts = np.bincount(self.psu_stratum)
        if (counts < 2).any():
            lonely = np.flatnonzero(counts < 2).tolist()
            raise DataError(
                f"stratum code(s) {lonely} of the survey design have a single PSU: its variance "
                "cannot be estimated (R's survey.lonely.psu = 'fail')"
            )
        scale = (counts / (counts - 1))[self.psu_stratum]

        def centred(values: np.ndarray) -> np.ndarray:
            means = np.zeros((len(counts), values.shape[1]))
            np.add.at(means, self.psu_stratum, values)
            return values - (means / counts[:, None])[self.psu_stratum]

        first = centred(totals)
        second = first if other is None else centred(other)
        cross = (first * scale[:, None]).T @ second
        return cross if other is None else (cross + cross.T) / 2


def survey_frame(
    raw: pd.DataFrame,
    in_domain: pd.Series,
    weight: pd.Series,
    weight_variable: str,
    strata_variable: str,
    psu_variable: str,
    nest: bool,
) -> SurveyFrame:
    """The full design from a raw table (every person of the cycles): persons with a
    positive `weight` (already pooled across cycles), their stratum and PSU; PSU codes are
    made unique within strata when `nest` (NHANES numbers its PSUs 1, 2 in every stratum)."""
    for column in (strata_variable, psu_variable):
        if column not in raw.columns:
            raise DataError(f"survey design: the data have no column {column!r}")
    positive = weight.fillna(0) > 0
    zero = in_domain & ~positive & weight.notna()
    if zero.any():  # in the sample, weight 0: outside the subsample the weight describes
        raise DataError(
            f"survey design: {int(zero.sum())} persons of the analysis sample have weight 0 "
            f"in {weight_variable}; they are outside the subsample it weights"
        )
    design = raw.loc[positive, ["SEQN", strata_variable, psu_variable]].copy()
    if design[[strata_variable, psu_variable]].isna().any().any():
        raise DataError(
            f"survey design: {strata_variable} or {psu_variable} is missing for persons "
            "with a positive weight"
        )
    if not nest:
        strata_per_psu = design.groupby(psu_variable)[strata_variable].nunique()
        if (strata_per_psu > 1).any():
            raise DataError(
                f"survey design: PSU codes of {psu_variable} repeat across strata; "
                "set survey.nest: true"
            )
    keys = list(zip(design[strata_variable], design[psu_variable], strict=True))
    psu = pd.factorize(pd.Series(keys) if nest else design[psu_variable])[0]
    frame = pd.DataFrame(
        {
            "SEQN": design["SEQN"].to_numpy(),
            "weight": weight[positive].to_numpy(float),
            "stratum": design[strata_variable].to_numpy(),
            "psu": psu,
            "in_domain": in_domain[positive].to_numpy(bool),
        }
    )
    lonely = frame.groupby("stratum")["psu"].nunique().loc[lambda n: n < 2]
    if len(lonely):
        raise DataError(
            f"survey design: stratum {lonely.index[0]!r} of {strata_variable} has a single PSU "
            "among persons with a positive weight; its variance cannot be estimated"
        )
    return SurveyFrame(frame, weight_variable, strata_variable, psu_variable)
