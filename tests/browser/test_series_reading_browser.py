"""Paired reading in hidden order in real Chromium: a reader grades a patient's two right-hand films
side by side in the grid (Film A, Film B) by keyboard, flips between them, submits the series in
one request, and every grade is stored on the timepoint of the film it was typed for."""
from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image
from playwright.sync_api import expect

from annotation import services
from annotation.models import Assignment, Grade, Joint, Landmark, Project
from annotation.series import hidden_rank
from consensus.models import ConsensusSettings
from consensus.services import consensus_settings_get
from modeling.ml.longitudinal import render_series, sample_longitudinal_patient
from modeling.ml.phantoms import PhantomConfig

from .conftest import log_in, reader_in, screenshot, url

pytestmark = pytest.mark.browser

DATES = {"baseline": "2019-05-02", "month12": "2020-05-14"}


def _hidden_project_with_a_series(reading_mode=Project.ReadingMode.PAIRED_HIDDEN, suggestions=Project.Suggestions.OFF):
    project = services.project_create(
        name="Paired", slug=f"paired-{reading_mode}", readers_per_radiograph=1, reading_mode=reading_mode, suggestions=suggestions
    )
    ConsensusSettings.objects.filter(pk=consensus_settings_get(project=project).pk).update(auto_recompute=False)
    patient = sample_longitudinal_patient(np.random.default_rng(5), pseudonym="PHANTOM-SERIES", n_visits=2)
    films = render_series(patient, "R", seed=5, config=PhantomConfig(width=480, height=600))
    joints = {joint.name: joint for joint in Joint.objects.filter(scheme=project.scheme, body_part="hand")}
    radiographs = {}
    import datetime

    for timepoint, phantom in zip(DATES, films):
        buffer = io.BytesIO()
        Image.fromarray(phantom.image).save(buffer, format="PNG", compress_level=1)
        radiograph = services.radiograph_add(
            project=project, pseudonym="PHANTOM-SERIES", laterality="R", image_bytes=buffer.getvalue(), image_suffix="png",
            width=phantom.width, height=phantom.height, timepoint=timepoint, acquired_on=datetime.date.fromisoformat(DATES[timepoint]),
        ).radiograph
        Landmark.objects.bulk_create(
            Landmark(radiograph=radiograph, joint=joints[name], x=x, y=y, source=Landmark.Source.IMPORT)
            for name, (x, y) in phantom.landmarks.items() if name in joints
        )
        # The test suggestion provider answers from the film's drawn grades.
        radiograph.metadata = {**(radiograph.metadata or {}), "phantom_truth": phantom.grades}
        radiograph.save(update_fields=["metadata"])
        radiographs[timepoint] = radiograph
    return project, radiographs


def test_a_series_read_in_hidden_order_by_keyboard_stores_each_grade_on_its_own_timepoint(new_page, live_server, schemes):
    project, radiographs = _hidden_project_with_a_series()
    reader = reader_in(project, "series_reader")
    reads = {}
    for timepoint, radiograph in radiographs.items():
        (reads[timepoint],) = services.assignments_create(radiograph=radiograph, readers=[reader])
    # The letter each timepoint's film gets for this reader, computed apart from the page.
    ranked = sorted(radiographs, key=lambda timepoint: hidden_rank(reader_id=reader.pk, radiograph_id=radiographs[timepoint].pk))
    letter_of = {timepoint: "AB"[index] for index, timepoint in enumerate(ranked)}

    page = new_page()
    page.set_viewport_size({"width": 1366, "height": 768})
    log_in(page, live_server, "series_reader", "pw-series_reader")
    page.goto(url(live_server, "worklist", project.pk))
    page.get_by_role("link", name="Open series PHANTOM-SERIES RH").click()
    patient = radiographs["baseline"].visit.patient_id
    expect(page).to_have_url(url(live_server, "series-workspace", patient, "RH"))
    page.locator("#visit[data-state=ready][data-image=painted]").wait_for()
    expect(page.locator("td[data-code]")).to_have_count(62)
    expect(page.locator('[data-side-head="A"]')).to_have_text("Film A")
    expect(page.locator('[data-side-head="B"]')).to_have_text("Film B")
    html = page.content()
    assert not [word for word in [*DATES, *DATES.values()] if word in html], "a timepoint or date is on the page"

    # Column by column: Film A's erosions then JSNs, then Film B's; a value pattern per film.
    typed: dict[str, list[int]] = {"A": [], "B": []}
    films_seen = []
    for index in range(62):
        film = page.locator("#visit").get_attribute("data-side").split(":")[1]
        films_seen.append(film)
        value = (0, 1)[index % 2] if film == "A" else (2, 3)[index % 2]
        page.keyboard.press(str(value))
        typed[film].append(value)
    assert films_seen == ["A"] * 31 + ["B"] * 31
    # Zooming the selected film zooms the other to the same relative size; "S" flips to Film A.
    page.keyboard.press("+")
    page.keyboard.press("+")
    stages = page.locator(".viewer-stage")
    expect(stages.nth(1)).not_to_have_attribute("data-zoom", "1.000")
    zoom = stages.nth(1).get_attribute("data-zoom")
    assert float(zoom) > 1.2
    expect(stages.nth(0)).to_have_attribute("data-zoom", zoom)
    page.keyboard.press("s")
    expect(page.locator("#visit")).to_have_attribute("data-side", "hand:A")
    screenshot(page, "series-hidden-order-1366x768")

    page.keyboard.press("Control+Enter")
    expect(page).to_have_url(url(live_server, "worklist", project.pk))
    assert set(Assignment.objects.filter(reader=reader).values_list("status", flat=True)) == {"submitted"}
    for timepoint, read in reads.items():
        stored = sorted(Grade.objects.filter(assignment=read).values_list("value", flat=True))
        assert stored == sorted(typed[letter_of[timepoint]]), timepoint


def test_in_known_order_the_footer_shows_the_readers_change_and_the_models_estimate_of_it(new_page, live_server, schemes, settings):
    settings.SUGGESTION_PROVIDER = "tests.browser.phantom_suggestions.from_phantom_truth"
    project, radiographs = _hidden_project_with_a_series(
        reading_mode=Project.ReadingMode.PAIRED_KNOWN, suggestions=Project.Suggestions.ASSISTED
    )
    reader = reader_in(project, "series_known_reader")
    for radiograph in radiographs.values():
        services.assignments_create(radiograph=radiograph, readers=[reader])
    # The stand-in model suggests each film's drawn grades, so its change is the true change.
    totals = {
        timepoint: sum(sum(grades.values()) for grades in radiograph.metadata["phantom_truth"].values())
        for timepoint, radiograph in radiographs.items()
    }
    page = new_page()
    page.set_viewport_size({"width": 1366, "height": 768})
    log_in(page, live_server, "series_known_reader", "pw-series_known_reader")
    patient = radiographs["baseline"].visit.patient_id
    page.goto(url(live_server, "series-workspace", patient, "RH"))
    page.locator("#visit[data-state=ready][data-image=painted]").wait_for()
    expect(page.locator("td.suggested")).to_have_count(62)
    expect(page.locator('[data-total="model-change"]')).to_have_text(str(totals["month12"] - totals["baseline"]))
    # The reader's own change waits until every cell of both films is decided.
    expect(page.locator('[data-total="change"]')).to_have_text("·")
    for _ in range(62):
        page.keyboard.press("0")
    expect(page.locator('[data-total="change"]')).to_have_text("0")
    expect(page.locator('[data-total="model-change"]')).to_have_text(str(totals["month12"] - totals["baseline"]))
    expect(page.get_by_role("status", name="Save state")).to_have_text("Saved")
