"""The phone page in a real Chromium against the real app: photo, scan, Spanish, no-JS, axe."""

from __future__ import annotations

import base64
import io

import pytest
import requests
from PIL import Image

from tests import synth
from usbills_app.pages_i18n import STRINGS

from . import colour_bundle
from .conftest import api_answer, screenshot
from .y4m import write_y4m

pytestmark = pytest.mark.browser

START_EN = "Camera on. Hold a bill in front of the camera."
HINT_LIGHT = {"en": "Try more light.", "es": "Pruebe con más luz."}


# ---------- helpers ----------

def card_values(server: str) -> list:
    card = requests.get(f"{server}/api/v1/model", timeout=10).json()
    return sorted(c["value"] for c in card["classes"]
                  if not c.get("negative") and c.get("value") is not None)


def expected_vibration(answer: dict, values: list) -> list[int]:
    """EyeNote's code: n short pulses for the n-th denomination, two long buzzes otherwise."""
    if answer["identified"] and answer["value"] in values:
        n = values.index(answer["value"]) + 1
        pattern = []
        for i in range(n):
            pattern += ([170] if i else []) + [180]
        return pattern
    return [700, 250, 700]


def spoken(page) -> list[dict]:
    return page.evaluate("() => window.__spoken")


def answer_text(page) -> str:
    return page.text_content("#answer-text").strip()


def join(a: str, b: str) -> str:
    return f"{a} {b}" if a.endswith((".", "!", "?", "…")) else f"{a}. {b}"


def page_message(ans: dict, lang: str = "en") -> str:
    """What the page says for an API answer: the note when identified; otherwise it names only
    candidates of at least 30 % (at most two), else "No banknote found"."""
    t = STRINGS[lang]
    if ans["identified"]:
        return ans["message"]
    likely = [] if ans["no_object"] else [c for c in ans["candidates"] if c["confidence"] >= 0.3]
    if len(likely) >= 2:
        return t["may_be_two"].format(a=likely[0]["display_name"], b=likely[1]["display_name"])
    return t["may_be"].format(name=likely[0]["display_name"]) if likely else t["no_note"]


def wait_for_answer(page, response) -> dict:
    """The API's JSON for a request the page made, once the page has shown it."""
    ans = response.json()
    page.wait_for_function(
        "(m) => document.getElementById('answer-text').textContent.trim() === m",
        arg=page_message(ans), timeout=15000)
    return ans


def is_predict(r) -> bool:
    return "/api/v1/predict" in r.url and r.request.method == "POST"


def scan_until_spoken(page, timeout: int = 20000) -> list[dict]:
    """Open the page, start scanning and wait for the first answer or tip to be spoken (after
    the start cue); returns the API answers the page got, a list that keeps growing."""
    answers = []
    page.on("response", lambda r: answers.append(r.json()) if is_predict(r) and r.ok else None)
    page.goto("/")
    page.click("#scan-toggle")
    page.wait_for_function("() => window.__spoken.length >= 2", timeout=timeout)
    return answers


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    d = tmp_path_factory.mktemp("camera")
    bill = synth.bill(20, size=(640, 480))
    dark = colour_bundle.flat((12, 12, 12), (640, 480))
    small_bill, small_dark = bill.resize((320, 240)), dark.resize((320, 240))
    # The $20's mean colour in two halves that swap every second: each swap is a new view to
    # the page (like a hand that moves), the note and its answer stay the same.
    proto = colour_bundle.prototypes()["USD-20"]
    halves = Image.new("RGB", (320, 240), tuple(min(255, v + 45) for v in proto))
    halves.paste(tuple(max(0, v - 45) for v in proto), (160, 0, 320, 240))
    swapped = halves.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    return {
        "bill": write_y4m(d / "bill.y4m", [bill] * 4),
        "dark": write_y4m(d / "dark.y4m", [dark] * 4),
        # 2 s of bill, then 2 s of darkness, looped: the view changes under a paused scan.
        "alternate": write_y4m(d / "alternate.y4m", [small_bill] * 20 + [small_dark] * 20),
        "moving": write_y4m(d / "moving.y4m", [halves] * 10 + [swapped] * 10),
        "phone": write_y4m(d / "phone.y4m", [synth.bill(20, size=(1280, 720))] * 2),
    }


# ---------- pure functions, deterministic ----------

def test_vibration_code_for_every_denomination(new_page, server):
    page = new_page()
    page.goto("/")
    values = [1, 2, 5, 10, 20, 50, 100]
    for n, value in enumerate(values, start=1):
        ans = {"identified": True, "value": value, "label": f"USD-{value}"}
        got = page.evaluate("([a, v]) => USBills.vibrationFor(a, v)", [ans, values])
        assert got == expected_vibration(ans, values)
        assert len([p for p in got if p == 180]) == n
    for ans in ({"identified": False, "value": 20, "no_object": False},
                {"identified": False, "value": None, "no_object": True}):
        assert page.evaluate("([a, v]) => USBills.vibrationFor(a, v)", [ans, values]) == [
            700, 250, 700]


def test_scan_logic_agreement_pause_and_view_change(new_page, server):
    page = new_page()
    page.goto("/")
    out = page.evaluate("""() => {
      const U = USBills, same = new Array(768).fill(120), other = new Array(768).fill(20);
      const id20 = {identified: true, label: 'USD-20', value: 20, message: 'Twenty dollars'};
      const id5 = {identified: true, label: 'USD-5', value: 5, message: 'Five dollars'};
      const miss = {identified: false, no_object: false, label: 'USD-5', message: 'Cannot'};
      const small = {...miss, note_box: [0.5, 0.2, 0.8, 0.4]};  // a note 0.3 of the frame wide
      const big = {...miss, note_box: [0.1, 0.1, 0.7, 0.5]};
      const s = new U.ScanLogic({rule: {frames: 2, max_gap_s: 2}}), log = [];
      log.push(s.frame(same), s.answer(id20, same));          // one frame: not yet
      log.push(s.frame(same), s.answer(id5, same));           // disagrees: not yet
      log.push(s.frame(same), s.answer(id5, same));           // two agree: announce
      log.push(s.frame(same), s.frame(same));                 // paused, same view: skip
      log.push(s.frame(other), s.frame(same));                // one odd frame: still paused
      log.push(s.frame(other), s.frame(other));               // view changed: resume
      log.push(s.answer(id5, other));                         // same note: quiet, paused
      log.push(s.frame(same), s.frame(same));                 // moved again: resume
      log.push(s.answer(miss, same), s.answer(miss, same));   // gone for rule.frames frames
      log.push(s.answer(id5, same), s.answer(id5, same));     // back in view: announced again
      const h = new U.ScanLogic();
      const hints = [];
      for (let i = 0; i < 16; i++) { h.frame(other); hints.push(h.answer(miss, other)); }
      const c = new U.ScanLogic();  // a small note in a bright, steady view
      let smallTip = null;
      for (let i = 0; i < 6; i++) { c.frame(same); smallTip = c.answer(small, same) || smallTip; }
      return {log, hints: hints.map((x) => x && x.hint), smallTip: smallTip && smallTip.hint,
              light: U.pickHint({brightness: 20, motion: 0}),
              steady: U.pickHint({brightness: 120, motion: 40}),
              more: U.pickHint({brightness: 120, motion: 1}),
              closer: U.pickHint({brightness: 120, motion: 1, answer: small}),
              big: U.pickHint({brightness: 120, motion: 1, answer: big}),
              noNote: U.pickHint({brightness: 120, motion: 1,
                                  answer: {...small, no_object: true}}),
              darkSmall: U.pickHint({brightness: 20, motion: 1, answer: small}),
              closerBelow: U.CLOSER_BELOW, likely: U.LIKELY};
    }""")
    log = out["log"]
    assert log[1] is None and log[3] is None
    assert log[5]["kind"] == "identified" and log[5]["answer"]["label"] == "USD-5"
    assert log[6:10] == ["skip", "skip", "skip", "skip"]
    assert log[10:12] == ["skip", "resume"]
    # The same note after the view changed is not announced again until it has been away.
    assert log[12] is None and log[13:15] == ["skip", "resume"]
    assert log[15:17] == [None, None] and log[17] is None
    assert log[18]["kind"] == "identified" and log[18]["answer"]["label"] == "USD-5"
    # A tip after 6 frames without an answer, then every 10.
    assert [i for i, h in enumerate(out["hints"]) if h] == [5, 15]
    assert out["hints"][5] == "light"
    assert (out["light"], out["steady"], out["more"]) == ("light", "steady", "more")
    # A small note found: come closer; not when it is big, when the answer is "no banknote",
    # or when light is the first thing to fix.
    assert (out["closer"], out["big"], out["noNote"], out["darkSmall"]) == (
        "closer", "more", "more", "light")
    assert out["smallTip"] == "closer"
    from model.handheld_eval import CLOSER_BELOW  # the evaluation reports the same condition

    assert out["closerBelow"] == CLOSER_BELOW
    from usbills_app.predict_service import LIKELY  # the API's message names the same ones

    assert out["likely"] == LIKELY


def test_page_and_server_apply_the_same_scan_rule(new_page, server):
    """The page's scanStep and usbills_app.scan.step give the same decisions for the same
    votes: random scans over two notes and "not sure", with pauses past max_gap_s."""
    import random

    from usbills_app import scan

    page = new_page()
    page.goto("/")
    rng = random.Random(7)
    for frames, unsure in ((1, 0), (2, 0), (3, 0), (4, 0), (2, 1), (3, 1), (3, 2)):
        rule = scan.Rule(frames=frames, max_gap_s=2.0, unsure=unsure)
        for _ in range(20):
            votes, times, t = [], [], 0.0
            for _ in range(30):
                votes.append(rng.choice(["USD-1", "USD-100", None, "USD-1"]))
                t += rng.choice([0.5, 0.5, 0.6, 2.5])
                times.append(t)
            state = scan.State()
            want = [vars(scan.step(state, v, tt, rule)) for v, tt in zip(votes, times)]
            got = page.evaluate("""([votes, times, rule]) => {
              const s = USBills.newScanState();
              return votes.map((v, i) => USBills.scanStep(s, v, times[i], rule));
            }""", [votes, times, {"frames": frames, "max_gap_s": 2.0, "unsure": unsure}])
            assert got == want
    # A frame's vote: an identified frame at the rule's own threshold or more.
    answers = [{"identified": ok, "label": "USD-5", "confidence": c}
               for ok in (True, False) for c in (0.5, 0.9998, 0.99989, 0.9999, 1.0)]
    for thr in (0.0, 0.9999):
        rule = scan.Rule(frames=2, threshold=thr)
        got = page.evaluate("([answers, rule]) => answers.map(a => USBills.voteOf(a, rule))",
                            [answers, vars(rule)])
        assert got == [scan.vote_of(a, rule) for a in answers]
    # The page takes the rule from the bundle (default 3 frames in a row, 2 s, any identified
    # frame votes).
    assert page.evaluate("JSON.parse(document.getElementById('page-config').textContent).scan") \
        == {"frames": 3, "max_gap_s": 2.0, "unsure": 0, "threshold": 0.0}


# ---------- photo mode ----------

def test_photo_flow_12_megapixels(new_page, server, check, tmp_path):
    page = new_page()
    page.goto("/")
    assert page.get_attribute("html", "lang") == "en"
    assert page.is_visible("#scan-toggle")  # JS is on: the scan control is offered
    check(page, "01-start")

    # A 12-megapixel phone photo (4000 x 3000) of a bill, with sensor-like noise.
    big = synth.bill(20, size=(4000, 3000), seed=3)
    noise = Image.effect_noise((4000, 3000), 40).convert("RGB")
    big = Image.blend(big, noise, 0.15)
    path = tmp_path / "IMG_0001.jpg"
    big.save(path, quality=92)
    assert path.stat().st_size > 2_000_000  # like a real phone JPEG (3-5 MB)
    with page.expect_response(is_predict) as resp_info:
        page.set_input_files("#photo-input", str(path))
    response = resp_info.value
    sent = int(response.request.all_headers()["content-length"])
    assert 1000 < sent <= 150 * 1024, f"{sent} bytes sent for a 12 MP photo"
    print(f"12 MP photo: {path.stat().st_size} bytes on disk, {sent} bytes sent")
    ans = wait_for_answer(page, response)
    assert response.request.all_headers()["content-type"] == "image/jpeg"

    # What the page says is what the API answered, in the live region and out loud.
    live = page.locator("[aria-live]#answer")
    assert live.get_attribute("role") == "status"
    said = [s for s in spoken(page)]
    assert said, "nothing was spoken"
    if ans["identified"]:
        assert said[-1]["text"] == ans["message"]
        assert page.text_content("#answer-hint").strip() == ""
    else:
        assert said[-1]["text"].startswith(page_message(ans))
        assert page.text_content("#answer-hint").strip()
    assert said[-1]["lang"] == "en-US"
    assert page.is_visible("#photo-preview")
    # The preview shows the shrunk photo, at most 1024 px on its longest side (app.js).
    dims = page.evaluate("() => [document.getElementById('photo-preview').naturalWidth,"
                         " document.getElementById('photo-preview').naturalHeight]")
    assert max(dims) <= 1024 and dims[0] / dims[1] == pytest.approx(4 / 3, abs=0.02)
    page.locator("#answer").scroll_into_view_if_needed()
    check(page, "02-photo-answer")


def test_photo_unsure_shows_two_candidates(new_page, server, check):
    page = new_page()
    page.goto("/")
    data = synth.encode(colour_bundle.flat(colour_bundle.unsure_colour()), quality=95)
    expected = api_answer(server, data)
    with page.expect_response(is_predict) as resp_info:
        page.set_input_files("#photo-input", files=[
            {"name": "unsure.jpg", "mimeType": "image/jpeg", "buffer": data}])
    ans = wait_for_answer(page, resp_info.value)
    assert ans["identified"] == expected["identified"]
    if ans["identified"] or ans["no_object"]:
        assert page.is_hidden("#candidates")
    else:
        items = page.locator("#candidates-list li").all_text_contents()
        assert len(items) == 2
        for item, cand in zip(items, ans["candidates"], strict=True):
            assert item.startswith(cand["display_name"])
        assert page.text_content("#answer-hint").strip()
        assert spoken(page)[-1]["text"] == join(page_message(ans),
                                                page.text_content("#answer-hint").strip())
    if "colour-test" in ans["model"]["version"]:  # the test bundle is unsure by design here
        assert not ans["identified"] and not ans["no_object"]
        assert {c["label"] for c in ans["candidates"]} == {"USD-20", "USD-5"}
    check(page, "03-photo-unsure")


def test_photo_drag_and_drop(new_page, server):
    page = new_page()
    page.goto("/")
    data = synth.jpeg(synth.bill(20))
    with page.expect_response(is_predict) as resp_info:
        page.evaluate("""(b64) => {
          const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
          const dt = new DataTransfer();
          dt.items.add(new File([bytes], 'bill.jpg', {type: 'image/jpeg'}));
          const form = document.getElementById('photo-form');
          const init = {dataTransfer: dt, bubbles: true, cancelable: true};
          form.dispatchEvent(new DragEvent('dragover', init));
          form.dispatchEvent(new DragEvent('drop', init));
        }""", base64.b64encode(data).decode())
    # The dropped photo went through the same shrink-and-send path; the page says its answer.
    response = resp_info.value
    assert response.request.all_headers()["content-type"] == "image/jpeg"
    ans = wait_for_answer(page, response)
    assert spoken(page)[-1]["text"].startswith(page_message(ans))
    assert page.is_visible("#photo-preview")


# ---------- scan mode ----------

def _start_scan_with_keyboard(page) -> None:
    """Tab to the big control and press Enter: no mouse needed."""
    for _ in range(6):
        page.keyboard.press("Tab")
        if page.evaluate("() => document.activeElement.id") == "scan-toggle":
            break
    assert page.evaluate("() => document.activeElement.id") == "scan-toggle"
    page.keyboard.press("Enter")


@pytest.mark.parametrize("lang", ["en", "es"])
def test_scan_announces_once_then_pauses(new_page, server, check, videos, lang):
    page = new_page(videos["bill"], lang=lang)
    answers = []
    page.on("response", lambda r: answers.append(r.json()) if is_predict(r) and r.ok else None)
    page.goto("/")
    assert page.get_attribute("html", "lang") == lang
    if lang == "es":
        title = requests.get(f"{server}/api/v1/model", timeout=10).json().get("title", {})
        want = title.get("es", "Identificador de billetes de EE. UU.")
        assert page.text_content("h1").strip() == want
        assert page.text_content(".intro").strip().startswith("Apunte la cámara")
        assert page.text_content("#scan-toggle").strip() == "Empezar a escanear"
        check(page, "04-start-es")
    _start_scan_with_keyboard(page)
    # The first utterance is the spoken "camera on" (it also unlocks speech on iOS).
    page.wait_for_function("() => window.__spoken.length >= 2", timeout=20000)
    said = spoken(page)
    assert said[0]["lang"].startswith(lang)
    said = said[1:]
    assert all(s["lang"] == ("es-US" if lang == "es" else "en-US") for s in said)
    last = answers[-1]
    assert answers and answers[-1]["lang"] == lang
    if last["identified"]:
        # Announced once two consecutive frames agreed, then paused: no more uploads.
        assert len(answers) >= 2 and answers[-2]["label"] == last["label"]
        assert said[0]["text"] == last["message"] == answer_text(page)
        assert page.is_visible("#scan-again")
        sent = len(answers)
        page.wait_for_timeout(1500)
        assert len(answers) == sent and len(spoken(page)) == len(said) + 1
        if lang == "en":
            assert last["message"] == "Twenty dollars" or last["label"] != "USD-20"
        else:
            assert last["message"] == "Veinte dólares" or last["label"] != "USD-20"
        check(page, f"05-scan-identified-{lang}")
        # The page speaks, so the answer box is not also a live region (never read twice).
        assert page.get_attribute("#answer", "aria-live") == "off"
        # "Say it again" repeats the note at once, on request, with no new upload.
        page.click("#scan-again")
        page.wait_for_function("() => window.__spoken.length >= 3", timeout=5000)
        assert spoken(page)[-1]["text"] == last["message"] and len(answers) == sent
        page.wait_for_function(
            "(m) => document.getElementById('answer-text').textContent === m",
            arg=last["message"], timeout=5000)
        page.focus("#scan-toggle")
    else:
        # The served model does not know the synthetic bill: a tip after the API's answer.
        shown = answer_text(page)
        assert shown in [page_message(a, lang) for a in answers]
        assert said[0]["text"] == join(shown, page.text_content("#answer-hint").strip())
    page.keyboard.press("Enter")  # focus is on the control: stop
    page.wait_for_function("() => document.getElementById('scan-video').hidden", timeout=5000)
    assert page.evaluate("() => document.getElementById('scan-video').srcObject") is None


def test_scan_vibrates_in_privacy_mode(new_page, server, check, videos):
    page = new_page(videos["bill"])
    answers = []
    page.on("response", lambda r: answers.append(r.json()) if is_predict(r) and r.ok else None)
    page.goto("/")
    page.check("#mode-vibrate")
    check(page, "06-privacy-mode")
    page.click("#scan-toggle")
    # A start cue (one very short buzz), then the answer's pattern.
    page.wait_for_function("() => window.__vibrations.length >= 2", timeout=20000)
    vib = page.evaluate("() => window.__vibrations")
    assert vib[0] == [60]
    assert vib[-1] == expected_vibration(answers[-1], card_values(server))
    assert spoken(page) == [], "privacy mode must not speak"
    assert answer_text(page) == page_message(answers[-1])  # still shown for sighted/SR users
    # Not spoken by the page, so the box is the live region a screen reader reads.
    assert page.get_attribute("#answer", "aria-live") == "polite"
    # The choice is remembered.
    page.reload()
    assert page.is_checked("#mode-vibrate")


def test_scan_gives_a_tip_when_nothing_is_identified(new_page, server, check, videos):
    page = new_page(videos["dark"])
    answers = scan_until_spoken(page, timeout=30000)
    said = spoken(page)[1]["text"]
    assert not any(a["identified"] for a in answers)
    assert len(answers) >= 6  # a tip only after several frames without an answer
    shown = answer_text(page)
    assert shown in [page_message(a) for a in answers]
    assert said == join(shown, HINT_LIGHT["en"])
    assert page.text_content("#answer-hint").strip() == HINT_LIGHT["en"]
    check(page, "07-scan-tip")


def test_scan_resumes_by_itself_when_the_view_changes(new_page, server, videos):
    bill = api_answer(server, synth.jpeg(synth.bill(20, size=(320, 240))))
    if not bill["identified"]:
        pytest.skip("the served model does not identify the synthetic bill")
    page = new_page(videos["alternate"])
    page.goto("/")
    page.click("#scan-toggle")
    # bill -> announced, paused; darkness -> view changed, scanning; bill -> announced again.
    page.wait_for_function(
        "(m) => window.__spoken.filter((s) => s.text === m).length >= 2",
        arg=bill["message"], timeout=30000)


def test_scan_sends_frames_at_the_size_the_evaluation_measures(new_page, server, videos):
    """A 1280x720 phone camera's frames go out with the longest side that the hand-held
    evaluation measures (model.handheld_eval.PAGE_SIDES[0]; MAX_SIDE in app.js)."""
    from model.handheld_eval import PAGE_SIDES

    page = new_page(videos["phone"])
    # Playwright does not expose a Blob request body: the page's own fetch records the sizes.
    page.add_init_script("""(() => {
      window.__sentSizes = [];
      const fetch0 = window.fetch;
      window.fetch = (url, opts) => {
        if (String(url).includes('/api/v1/predict') && opts && opts.body instanceof Blob) {
          createImageBitmap(opts.body).then((b) => window.__sentSizes.push([b.width, b.height]));
        }
        return fetch0(url, opts);
      };
    })()""")
    page.goto("/")
    page.click("#scan-toggle")
    page.wait_for_function("() => window.__sentSizes.length >= 1", timeout=20000)
    sizes = page.evaluate("() => window.__sentSizes")
    assert sizes[0] == [PAGE_SIDES[0], PAGE_SIDES[0] * 720 // 1280]


def test_scan_announces_a_note_once_while_the_hand_moves(new_page, server, videos):
    """Small movements change the view (and resume uploads) but not the note: said once."""
    page = new_page(videos["moving"])
    answers = scan_until_spoken(page)
    assert spoken(page)[1]["text"] == "Twenty dollars"
    sent = len(answers)
    page.wait_for_timeout(6000)  # six swaps of the view
    assert len(answers) > sent, "the view changes should have resumed uploads"
    assert all(a["label"] == "USD-20" and a["identified"] for a in answers)
    assert [s["text"] for s in spoken(page)] == [START_EN, "Twenty dollars"]


@pytest.mark.parametrize("mode", ["speak", "vibrate", "silent"])
def test_scan_says_when_the_connection_is_lost_and_back(new_page, own_server, videos, check,
                                                        mode):
    """The server stopped mid-scan and started again: every mode tells both, once each, and
    the box no longer shows the note from before."""
    t = STRINGS["en"]
    page = new_page(videos["alternate"], base_url=own_server.url)  # bill, then darkness
    page.goto("/")
    page.check(f"#mode-{mode}")
    page.click("#scan-toggle")
    page.wait_for_function("() => document.getElementById('answer').classList"
                           ".contains('is-identified')", timeout=20000)
    if mode == "silent":  # the start cue went to the live region (the box) before the note
        assert page.get_attribute("#answer", "aria-live") == "polite"
    own_server.stop()  # the darkness resumes uploads, which now fail
    page.wait_for_function("(m) => document.getElementById('answer-text').textContent === m",
                           arg=t["offline"], timeout=15000)
    assert not page.evaluate("() => document.getElementById('answer').classList"
                             ".contains('is-identified')")
    check(page, f"16-offline-{mode}", shot=mode == "speak")
    page.wait_for_timeout(4500)  # two more failed tries: told once, not on every try
    own_server.start()
    page.wait_for_function("(m) => document.getElementById('answer-text').textContent === m",
                           arg=t["online"], timeout=15000)
    said = [s["text"] for s in spoken(page)]
    buzzed = page.evaluate("() => window.__vibrations")
    if mode == "speak":
        assert said.count(t["offline"]) == 1 and said.count(t["online"]) == 1
        assert said[0] == START_EN and buzzed == []
    elif mode == "vibrate":
        assert said == [] and buzzed.count([1500]) == 1 and buzzed[0] == [60]
        assert buzzed[buzzed.index([1500]) + 1] == [60]  # connected again: the scanning cue
    else:
        assert said == [] and buzzed == []
        assert page.get_attribute("#answer", "aria-live") == "polite"


# ---------- large text, small screens, themes ----------

SMALL_PHONE = {"viewport": {"width": 360, "height": 640}, "device_scale_factor": 3,
               "has_touch": True, "is_mobile": True}
BIG_TEXT = """() => { document.documentElement.style.fontSize = '200%'; }"""


def _in_view(page, selector: str) -> bool:
    return page.evaluate("""(sel) => {
      const r = document.querySelector(sel).getBoundingClientRect();
      return r.top >= 0 && r.bottom <= window.innerHeight && r.left >= 0
             && r.right <= window.innerWidth; }""", selector)


def _overflowing(page) -> list[str]:
    """Elements whose content is wider than their box, and the page wider than the screen."""
    return page.evaluate("""() => {
      const out = [...document.querySelectorAll('.button, .answer, .answer-text, .file-label')]
        .filter((e) => e.offsetParent !== null && e.scrollWidth > e.clientWidth + 1)
        .map((e) => (e.id || e.className) + ' ' + e.scrollWidth + '>' + e.clientWidth);
      if (document.documentElement.scrollWidth > window.innerWidth)
        out.push('page ' + document.documentElement.scrollWidth);
      return out; }""")


@pytest.mark.parametrize("lang", ["en", "es"])
def test_200_percent_text_on_a_360px_phone(new_page, server, check, videos, lang):
    page = new_page(videos["bill"], lang=lang, **SMALL_PHONE)
    page.goto("/")
    page.evaluate(BIG_TEXT)
    # The skip link is off screen until focused; the primary action is in view, nothing overflows.
    skip = page.evaluate("() => document.querySelector('.skip').getBoundingClientRect().bottom")
    assert skip <= 0
    assert _in_view(page, "#scan-toggle"), "Start scanning is below the first screen"
    assert _overflowing(page) == []
    page.click("#scan-toggle")
    page.wait_for_function("() => window.__spoken.length >= 2", timeout=20000)
    # After the tap, the answer is in view too, and "Stop scanning" fits its button.
    assert _in_view(page, "#answer"), "the answer is out of view after Start scanning"
    assert _overflowing(page) == []
    # Whole words: the answer fits without breaking inside a word ("Twent-y").
    assert page.evaluate("""() => { const e = document.getElementById('answer-text');
      e.style.overflowWrap = 'normal'; const fits = e.scrollWidth <= e.clientWidth;
      e.style.overflowWrap = ''; return fits; }""")
    check(page, f"13-scan-200pct-360-{lang}")


def test_200_percent_text_photo_answer_gets_focus(new_page, server, check):
    page = new_page(**SMALL_PHONE)
    page.goto("/")
    page.evaluate(BIG_TEXT)
    data = synth.encode(colour_bundle.flat(colour_bundle.unsure_colour()), quality=95)
    with page.expect_response(is_predict) as resp_info:
        page.set_input_files("#photo-input", files=[
            {"name": "unsure.jpg", "mimeType": "image/jpeg", "buffer": data}])
    wait_for_answer(page, resp_info.value)
    assert page.evaluate("() => document.activeElement.id") == "answer"
    page.wait_for_timeout(300)  # the scroll into view
    assert page.evaluate("() => document.getElementById('answer').getBoundingClientRect().top") >= 0
    assert _overflowing(page) == []
    check(page, "14-photo-200pct-360")


@pytest.mark.parametrize("camera_ms", [0, 1500])
def test_no_layout_shift_from_load_to_tips(new_page, server, videos, camera_ms):
    """CLS under 0.1: the scan section keeps its place from the first paint, and a tip under the
    answer does not move the Stop button; nor does a camera that takes its time to start, as
    phones' often do (a shift more than 0.5 s after the tap counts against the page)."""
    page = new_page(videos["dark"])
    page.add_init_script(
        "(() => { const md = navigator.mediaDevices, get = md.getUserMedia.bind(md);"
        f" md.getUserMedia = (c) => new Promise((ok) => setTimeout(ok, {camera_ms}))"
        ".then(() => get(c)); })();")
    page.goto("/")
    where = ("() => document.getElementById('scan-toggle').getBoundingClientRect().y"
             " + window.scrollY")  # on the page, whatever the scroll
    before = page.evaluate(where)
    page.click("#scan-toggle")
    page.wait_for_function("() => window.__spoken.length >= 2", timeout=30000)  # a tip was given
    after = page.evaluate(where)
    assert after == before
    assert page.evaluate("() => window.__cls") < 0.1


def test_light_theme(new_page, server, check):
    page = new_page(color_scheme="light")
    page.goto("/")
    bg = page.evaluate("() => getComputedStyle(document.body).backgroundColor")
    assert bg == "rgb(255, 255, 255)"
    check(page, "15-light-start")  # axe: contrast holds in the light theme too


def test_numeral_beside_the_words(new_page, server, videos):
    page = new_page(videos["bill"])
    page.goto("/")
    page.click("#scan-toggle")
    page.wait_for_function("() => document.getElementById('answer').classList"
                           ".contains('is-identified')", timeout=20000)
    assert page.text_content("#answer-value").strip() == "$20"
    assert page.get_attribute("#answer-value", "aria-hidden") == "true"  # the words are read


def test_autostart_is_remembered_and_torch_only_with_a_light(new_page, server, videos):
    page = new_page(videos["bill"])
    page.goto("/")
    page.check("#autostart")
    page.reload()
    # Straight into scanning, no tap: the start cue and the camera.
    page.wait_for_function("() => window.__spoken.length >= 1", timeout=20000)
    assert spoken(page)[0]["text"] == START_EN
    page.wait_for_function("() => !document.getElementById('scan-video').hidden", timeout=10000)
    assert page.is_checked("#autostart")
    # Chromium's fake camera has no torch: no Light button.
    page.wait_for_timeout(500)
    assert page.is_hidden("#scan-torch")
    page.uncheck("#autostart")
    page.reload()
    page.wait_for_timeout(1500)
    assert spoken(page) == [] and page.is_hidden("#scan-video")


# Chromium's fake camera has no torch; a phone's rear camera does. This gives the fake camera's
# track the capability and records what the page asks of it.
TORCH = """
(() => {
  window.__torch = [];
  const caps = MediaStreamTrack.prototype.getCapabilities;
  MediaStreamTrack.prototype.getCapabilities = function () {
    return Object.assign({}, caps ? caps.call(this) : {}, {torch: true});
  };
  MediaStreamTrack.prototype.applyConstraints = function (c) {
    window.__torch.push(c.advanced[0].torch);
    return Promise.resolve();
  };
})();
"""


def test_torch_button_where_the_camera_has_a_light(new_page, server, check, videos):
    page = new_page(videos["bill"])
    page.context.add_init_script(TORCH)
    page.goto("/")
    page.click("#scan-toggle")
    page.wait_for_selector("#scan-torch", state="visible", timeout=10000)
    assert page.get_attribute("#scan-torch", "aria-pressed") == "false"
    page.click("#scan-torch")
    page.wait_for_function("() => document.getElementById('scan-torch')"
                           ".getAttribute('aria-pressed') === 'true'", timeout=5000)
    page.click("#scan-torch")
    page.wait_for_function("() => window.__torch.length === 2", timeout=5000)
    assert page.evaluate("() => window.__torch") == [True, False]
    check(page, "17-torch", shot=False)
    page.click("#scan-toggle")  # stop: the light goes with the camera
    assert page.is_hidden("#scan-torch")


# ---------- language ----------

def test_language_switch_is_visible_and_remembered(new_page, server, check):
    page = new_page()
    page.goto("/")
    link = page.get_by_role("link", name="Español")
    assert link.get_attribute("lang") == "es"
    link.click()
    page.wait_for_load_state()
    assert page.get_attribute("html", "lang") == "es"
    page.goto("/")  # the cookie keeps Spanish without ?lang=
    assert page.get_attribute("html", "lang") == "es"
    assert page.text_content("#answer-text").strip() == "Todavía no hay respuesta."
    page.get_by_role("link", name="English").click()
    page.wait_for_load_state()
    assert page.get_attribute("html", "lang") == "en"


# ---------- without JavaScript ----------

def test_no_js_form_returns_a_result_page(new_page, server, check):
    page = new_page(js=False)
    page.goto("/")
    assert page.is_hidden("#scan")  # nothing that needs JS is offered
    assert "JavaScript is off" in page.text_content("main")
    screenshot(page, "08-nojs-start")
    data = synth.jpeg(synth.bill(20))
    page.set_input_files("#photo-input", files=[
        {"name": "bill.jpg", "mimeType": "image/jpeg", "buffer": data}])
    with page.expect_navigation():
        page.get_by_role("button", name="Identify").click()
    expected = api_answer(server, data)
    assert answer_text(page) == expected["message"]
    if not expected["identified"]:
        assert page.is_visible(".tips")
    screenshot(page, "09-nojs-result")

    # A file that is not a picture: a clear message on the page, never a stack trace.
    page.set_input_files("#photo-input", files=[
        {"name": "notes.txt", "mimeType": "text/plain", "buffer": b"hello"}])
    with page.expect_navigation() as nav:
        page.get_by_role("button", name="Identify").click()
    assert 400 <= nav.value.status < 500
    assert answer_text(page) and "Traceback" not in page.content()
    screenshot(page, "10-nojs-error")


def test_no_js_pages_pass_axe(new_page, server, check):
    """The no-JS states, checked by axe (which needs JS: DevTools cannot evaluate in a page with
    JavaScript off). The start page is loaded with the page's own scripts blocked."""
    page = new_page()
    page.route("**/static/js/**", lambda route: route.abort())
    page.goto("/")
    assert page.is_hidden("#scan") and page.is_hidden("#settings")
    check(page, "08-nojs-start", shot=False)
    page.unroute("**/static/js/**")
    for name, files in [
        ("09-nojs-result", [{"name": "bill.jpg", "mimeType": "image/jpeg",
                              "buffer": synth.jpeg(synth.bill(20))}]),
        ("10-nojs-error", [{"name": "notes.txt", "mimeType": "text/plain", "buffer": b"hi"}]),
    ]:
        page.goto("/")
        page.set_input_files("#photo-input", files=files)
        with page.expect_navigation():
            # form.submit() skips the page script's submit handler: a plain form post.
            page.evaluate("() => document.getElementById('photo-form').submit()")
        assert page.url.split("?")[0].endswith("/predict")
        page.errors.clear()
        check(page, name)


def test_manifest_and_icons(new_page, server):
    page = new_page()
    page.goto("/")
    href = page.get_attribute("link[rel=manifest]", "href")
    r = page.request.get(href)
    assert r.ok and r.headers["content-type"].startswith("application/manifest+json")
    m = r.json()
    assert m["display"] == "standalone" and m["start_url"].startswith("/")
    assert m["orientation"] == "any"  # held either way
    sizes = set()
    for icon in m["icons"]:
        ir = page.request.get(icon["src"])
        assert ir.ok and ir.headers["content-type"] == "image/png"
        img = Image.open(io.BytesIO(ir.body()))
        assert f"{img.width}x{img.height}" == icon["sizes"]
        sizes.add(icon["sizes"])
    assert {"192x192", "512x512"} <= sizes


def test_scan_without_a_camera_explains_what_to_do(new_page, server, check):
    page = new_page()  # a browser with no camera at all
    page.goto("/")
    page.click("#scan-toggle")
    page.wait_for_function(
        "() => document.getElementById('answer-text').textContent.includes('photo')",
        timeout=15000)
    text = answer_text(page)
    assert text in ("No camera was found. Take or choose a photo below.",
                    "Camera access was refused. Allow the camera for this site in the browser "
                    "settings, or take a photo below.",
                    "The camera could not start. Take or choose a photo below.")
    assert spoken(page)[-1]["text"] == text
    assert page.text_content("#scan-toggle").strip() == "Start scanning"
    check(page, "11-no-camera")
