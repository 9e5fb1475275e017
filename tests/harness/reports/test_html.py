"""The HTML report: one self-contained page whose charts render, hover, and whose tables sort and filter, checked in
headless Chromium over the DevTools protocol (tests/support/chromium_cdp.py)."""

import os
import re

import pytest

from tests.support.chromium_cdp import Browser, find_chromium
from harness.reports.plots import RANDOM_TITLE, pareto_front
from harness.reports.report import render
from tests.support.factories import run

PROFILE = {"ops": [{"name": "DELEGATE_CALL xnn_fully_connected", "ms": 3.2, "backend": "XNNPACK"},
                   {"name": "aten::embedding", "ms": 0.4, "backend": "portable"},
                   {"name": "aten::gather", "ms": 0.2, "backend": "portable"}]}
TITLES = ["Latency distribution, hardware", "Accuracy vs latency on pixel8pro", "Program size vs latency, hardware",
          "Memory: peak RSS vs program size, hardware", "Latency vs seq_len, hardware",
          "Per-op time, mobilebert int8 on pixel8pro", "Latency distribution, emulated",
          "Program size vs latency, emulated", "Memory: peak RSS vs program size, emulated"]


def _sweep(recipe, ms_at_128, seed, seqs=(32, 64)):
    out = []
    for i, seq in enumerate(seqs):
        r = run(recipe, median_ms=ms_at_128 * seq / 128, seed=seed + i, accuracy={"metric": "accuracy",
                                                                                 "value": 0.88})
        r.seq_len = seq
        out.append(r)
    return out


@pytest.fixture
def records():
    return [
        run("fp32", median_ms=12.0, seed=1, accuracy={"metric": "accuracy", "value": 0.90}),
        run("fp32", median_ms=12.4, seed=11, accuracy={"metric": "accuracy", "value": 0.90}),
        run("int8", median_ms=4.0, seed=2, accuracy={"metric": "accuracy", "value": 0.89}, profile=PROFILE,
            flags=["profiled"]),
        run("int4", median_ms=5.0, seed=3, accuracy={"metric": "accuracy", "value": 0.80}),
        *_sweep("int8", 4.0, 20),
        run("int8", device="emu-arm64", median_ms=3000.0, seed=4, emulated=True),
        run("int4", status="failed", device="emu-arm64", error="runner crashed (signal 11)"),
    ]


def _charts(html):
    """(title, the chart's HTML with its data) of every chart, in page order."""
    parts = html.split('<figure class="chart')[1:]
    return [(re.search(r"<h4>(.*?)</h4>", p).group(1), p.split("</figure>")[0]) for p in parts]


def test_html_is_self_contained_with_every_chart(records, tmp_path):
    from plotly.offline import get_plotlyjs

    html = render(records, "html", tmp_path / "r.html")
    assert (tmp_path / "r.html").read_text() == html
    assert html.count(get_plotlyjs()[:300]) == 1  # Plotly's JavaScript, inlined once for every chart
    assert not re.search(r"<(script|link|img|iframe)\b[^>]*\b(src|href)=", html)  # nothing to fetch
    charts = _charts(html)
    titles = [t for t, _ in charts]
    for want in TITLES:
        assert sum(t.startswith(want) for t in titles) == 1, (want, titles)
    assert all(t.endswith(f"({RANDOM_TITLE})") for t in titles)  # every run here has random weights
    for title, chart in charts:  # emulated runs never share axes with hardware
        assert ("emu-arm64" in chart) == title.endswith(f"emulated ({RANDOM_TITLE})"), title
    assert "runner crashed (signal 11)" in html and "never ranked or compared with hardware" in html
    assert "8 runs in 7 groups" in html


def test_random_weights_are_named_on_exactly_their_charts_and_rows(records):
    for r in records:
        r.random_weights = False
    assert "untrained" not in render(records, "html")
    trained_fp32 = records[0]
    records[2].random_weights = True  # the profiled int8 run
    html = render(records, "html")
    titles = dict(_charts(html))
    assert "Per-op time, mobilebert int8 on pixel8pro (run " + records[2].run_id + f") ({RANDOM_TITLE})" in titles
    acc = next(t for t in titles if t.startswith("Accuracy vs latency"))
    assert acc.endswith(f"(points marked × have {RANDOM_TITLE})")
    assert not any("untrained" in t for t in titles if "emulated" in t)
    rows = re.findall(r'<tr class="([^"]*)">(.*?)</tr>', html.split("<h2 id='emulated'>")[0])
    random_rows = [cells for cls, cells in rows if "random" in cls.split()]
    assert len(random_rows) == 1 and records[2].run_id in random_rows[0]
    assert not any(trained_fp32.run_id in cells for cells in random_rows)


def test_pareto_front():
    pts = [(4.0, 0.89), (5.0, 0.80), (12.0, 0.90), (13.0, 0.85), (4.0, 0.70)]
    assert pareto_front(pts) == [(4.0, 0.89), (12.0, 0.90)]


def test_random_weight_runs_plot_agreement_instead_of_accuracy():
    """Random-weight programs have no task accuracy, only top-1 agreement with fp32 eager: plot that."""
    recs = [run("fp32", seed=1, accuracy={"metric": "accuracy", "agreement_fp32": 1.0}),
            run("int8", median_ms=5.0, seed=2, accuracy={"metric": "accuracy", "agreement_fp32": 0.97})]
    titles = [t for t, _ in _charts(render(recs, "html"))]
    assert f"Agreement vs latency on pixel8pro ({RANDOM_TITLE})" in titles


@pytest.fixture
def chromium():
    exe = find_chromium()
    if exe is None:
        msg = "no chromium: set HARNESS_CHROMIUM or install Debian's chromium (`make system-deps`)"
        if os.environ.get("HARNESS_REQUIRE_DEVICES") == "1":
            pytest.fail(msg)
        pytest.skip(msg)
    return exe


CHARTS_DRAWN = """Array.from(document.querySelectorAll('figure.chart')).map(f =>
    [f.querySelector('h4').textContent, f.querySelectorAll('.main-svg').length,
     f.querySelectorAll('g.trace .point, g.trace .box, g.trace .bars path, g.trace .js-line').length])"""
FITTED = """Array.from(document.querySelectorAll('.js-plotly-plot')).every(d =>
    Math.abs(d.querySelector('.main-svg').getBoundingClientRect().width - d.getBoundingClientRect().width) < 2)"""
OVERFLOW = """[document.documentElement.scrollWidth - window.innerWidth].concat(
    Array.from(document.querySelectorAll('.scroll')).map(s => s.scrollWidth - s.clientWidth))"""
POINT = """(() => {{ const f = Array.from(document.querySelectorAll('figure.chart'))
    .find(f => f.querySelector('h4').textContent.startsWith('Accuracy'));
  f.scrollIntoView(); const r = f.querySelectorAll('.scatterlayer .point')[{i}].getBoundingClientRect();
  return [r.x + r.width / 2, r.y + r.height / 2]; }})()"""
HOVER = "Array.from(document.querySelectorAll('.hoverlayer')).map(h => h.textContent).join(' ')"


def _p50_order(b):
    return b.eval("""Array.from(document.querySelector('[data-table=hardware] tbody').rows)
        .map(r => parseFloat(r.cells[Array.from(r.parentNode.parentNode.tHead.rows[0].cells)
        .findIndex(th => th.textContent.startsWith('p50'))].getAttribute('data-v')))""")


def test_html_renders_in_headless_chromium(records, tmp_path, chromium):
    page = tmp_path / "report.html"
    html = render(records, "html", page)
    n_charts = len(_charts(html))
    with Browser(chromium, tmp_path / "profile") as b:
        b.open(page.as_uri(), 1400)  # loaded once (4.8 MB of Plotly takes seconds here), then resized
        for width in (1400, 1920):
            b.resize(width)
            drawn = b.wait_for(f"(() => {{ const d = {CHARTS_DRAWN}; "
                               f"return d.every(c => c[1] > 0 && c[2] > 0) && {FITTED} && d; }})()")
            assert [t for t, _, _ in drawn] == [t for t, _ in _charts(html)] and len(drawn) == n_charts
            assert max(b.eval(OVERFLOW)) <= 0, f"a table or the page is wider than {width} px"
            w, h = b.screenshot(tmp_path / f"report-{width}.png", width)
            assert w == width and h > 2000
        # hovering a point of the accuracy chart shows its group: model identity, run ids, flags
        b.resize(1400)
        for i in range(8):
            x, y = b.eval(POINT.format(i=i))
            b.mouse_move(x, y)
            text = b.wait_for(HOVER, timeout=5)
            if "runs (" in text:
                break
        assert "mobilebert" in text and RANDOM_TITLE in text and "status ok" in text
        assert any(r.run_id in text for r in records)
        # the table sorts by p50 (numbers, not text) and filters by words
        b.eval("document.querySelector('[data-table=hardware] th:nth-child(1)').click()")
        b.eval("Array.from(document.querySelectorAll('[data-table=hardware] th'))"
               ".find(th => th.textContent.startsWith('p50')).click()")
        assert _p50_order(b) == sorted(_p50_order(b)) and len(_p50_order(b)) == 5
        b.eval("Array.from(document.querySelectorAll('[data-table=hardware] th'))"
               ".find(th => th.textContent.startsWith('p50')).click()")
        assert _p50_order(b) == sorted(_p50_order(b), reverse=True)
        b.eval("const i = document.querySelector('[data-table=hardware] input');"
               "i.value = 'int4'; i.dispatchEvent(new Event('input'))")
        visible = b.eval("Array.from(document.querySelectorAll('[data-table=hardware] tbody tr'))"
                         ".filter(r => !r.hidden).map(r => r.cells[0].textContent)")
        assert visible == ["int4"]
        assert "1 of 5 rows" in b.eval("document.querySelector('[data-table=hardware] .count').textContent")
        assert b.problems() == []  # no JavaScript error, no console error
        assert {u.split(":")[0] for u in b.requested()} <= {"file", "data", "about", "blob"}  # nothing from a network


def test_the_page_names_the_runs_a_row_left_out_as_the_markdown_does():
    """A row whose runs fell in two epochs (four at 10 ms, two slowed to 13 ms): the HTML page says which runs its
    latency left out, word for word as the markdown report does."""
    from harness.reports.markdown import render_md
    from harness.reports.table import build_rows
    from tests.support.factories import rec

    runs = [rec("int8", ms=m, seed=s, campaign="c") for s, m in enumerate([10.0, 13.0, 10.1, 13.1, 10.0, 10.05])]
    rows = build_rows(runs)
    note = f"2 of 6 runs slowed throughout (runs {runs[1].run_id}, {runs[3].run_id}:"
    assert note in render_md(rows, runs)
    page = render(runs, "html")
    assert note in page and "docs/statistics.md#pooling" in page
