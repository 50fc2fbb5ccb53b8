"""Longitudinal phantoms: one patient's hands at 2-4 visits, damage progressing at the patient's rate.

The baseline grades are `phantoms.sample_patient_grades`'s. From there each patient progresses at
their own rate: most are stable or nearly so, a few progress rapidly (a skewed, gamma-shaped rate,
as in RA cohorts where a minority carries most of the progression). Over each interval every
area's latent damage grows by the rate times the years elapsed times the area's susceptibility
(joints damaged already, and the joints RA prefers, progress faster): new erosions appear where
there were none, existing ones grow, joint spaces narrow. Grades never fall: damage does not heal.

Films of a series share the patient (hand size, osteopenia, OA) but each visit has its own pose,
exposure and noise, as films taken months apart do. numpy only (the renderer is `phantoms`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .phantoms import EROSION_WEIGHT, JSN_WEIGHT, MAX_GRADE, Grades, Phantom, PhantomConfig, generate_hand, sample_patient_grades

# Visits are this many months after baseline (the first 2-4 of them).
VISIT_MONTHS = (0, 12, 24, 36)
TIMEPOINT_NAMES = ("baseline", "month-12", "month-24", "month-36")
# Share of patients who progress rapidly; the others draw a rate near zero.
RAPID_SHARE = 0.15
RAPID_RATE = (1.2, 0.6)  # gamma(shape, scale) of grade steps per year of a susceptible joint
SLOW_RATE = (0.5, 0.08)


@dataclass(frozen=True)
class VisitTruth:
    timepoint: str
    months: int
    grades: tuple[Grades, Grades]  # (left, right)


@dataclass(frozen=True)
class LongitudinalPatient:
    """One simulated patient's series: the true grades of both hands at every visit."""

    pseudonym: str
    rate: float  # grade steps per year of an average susceptible area
    rapid: bool
    visits: tuple[VisitTruth, ...]

    def grades(self, laterality: str) -> list[Grades]:
        side = 0 if laterality == "L" else 1
        return [visit.grades[side] for visit in self.visits]


def _susceptibility(dimension: str) -> dict[str, float]:
    weights = EROSION_WEIGHT if dimension == "erosion" else JSN_WEIGHT
    mean = float(np.mean(list(weights.values())))
    return {name: w / mean for name, w in weights.items()}


def progress_grades(grades: Grades, rng: np.random.Generator, *, rate: float, years: float) -> Grades:
    """Grades one interval later: each area rises by a Poisson number of steps, never falls.

    The expected steps of an area are ``rate * years * susceptibility * (1 + 0.5 * grade)``:
    damaged joints keep progressing faster than intact ones, and an intact one can start (a new
    erosion, a first narrowing).
    """
    out: Grades = {}
    for dimension, values in grades.items():
        weights = _susceptibility(dimension)
        top = MAX_GRADE[dimension]
        out[dimension] = {}
        for name, grade in values.items():
            expected = rate * years * weights.get(name, 1.0) * (1.0 + 0.5 * grade) * 0.25
            out[dimension][name] = int(min(top, grade + rng.poisson(expected)))
    return out


def sample_longitudinal_patient(
    rng: np.random.Generator, *, pseudonym: str, n_visits: int | None = None
) -> LongitudinalPatient:
    """A patient with 2-4 visits (drawn when not given), a patient-specific rate, true grades per visit."""
    n = int(rng.integers(2, 5)) if n_visits is None else int(n_visits)
    if not 2 <= n <= len(VISIT_MONTHS):
        raise ValueError(f"n_visits must lie in 2..{len(VISIT_MONTHS)}")
    left, right = sample_patient_grades(rng)
    rapid = bool(rng.random() < RAPID_SHARE)
    shape, scale = RAPID_RATE if rapid else SLOW_RATE
    rate = float(rng.gamma(shape, scale))
    visits = [VisitTruth(TIMEPOINT_NAMES[0], VISIT_MONTHS[0], (left, right))]
    for i in range(1, n):
        years = (VISIT_MONTHS[i] - VISIT_MONTHS[i - 1]) / 12.0
        left = progress_grades(left, rng, rate=rate, years=years)
        right = progress_grades(right, rng, rate=rate, years=years)
        visits.append(VisitTruth(TIMEPOINT_NAMES[i], VISIT_MONTHS[i], (left, right)))
    return LongitudinalPatient(pseudonym=pseudonym, rate=rate, rapid=rapid, visits=tuple(visits))


def sample_cohort(seed: int, n_patients: int, prefix: str = "LONG") -> list[LongitudinalPatient]:
    rng = np.random.default_rng(seed)
    return [sample_longitudinal_patient(rng, pseudonym=f"{prefix}-{seed}-{p:04d}") for p in range(n_patients)]


def render_series(
    patient: LongitudinalPatient, laterality: str, seed: int, config: PhantomConfig | None = None
) -> list[Phantom]:
    """The films of one hand at every visit: one hand and patient, a new pose and exposure per visit."""
    rng = np.random.default_rng(seed)
    cfg = config or PhantomConfig()
    size = float(1.0 + cfg.pose_variation * rng.uniform(-0.09, 0.09))
    traits = None
    if cfg.mode == "realistic":
        from .realistic import draw_patient_traits

        traits = draw_patient_traits(rng, patient.visits[0].grades)
    films = []
    for grades in patient.grades(laterality):
        # A fresh seed per visit: generate_hand draws pose, exposure, noise and lesion shapes from it.
        films.append(generate_hand(int(rng.integers(0, 2**63 - 1)), laterality, grades, cfg, hand_size=size, patient_traits=traits))
    return films


def total_score(grades: Grades) -> int:
    return int(sum(sum(values.values()) for values in grades.values()))


def true_change(patient: LongitudinalPatient, start: int, end: int) -> dict[str, float]:
    """True change of both hands together between two visits: total, erosion, JSN."""
    out = {"total": 0.0, "erosion": 0.0, "jsn": 0.0}
    for side in range(2):
        a, b = patient.visits[start].grades[side], patient.visits[end].grades[side]
        for dimension in a:
            delta = sum(b[dimension].values()) - sum(a[dimension].values())
            out[dimension] += delta
            out["total"] += delta
    return out


def rate_summary(cohort: list[LongitudinalPatient]) -> dict[str, float]:
    rates = np.array([p.rate for p in cohort])
    return {"n": len(cohort), "rapid": int(sum(p.rapid for p in cohort)), "median_rate": float(np.median(rates)) if rates.size else math.nan}
