"""The shared SVG charts escape what marketers typed and draw one mark per value."""

from core.charts import Bar, Point, Series, bar_chart, line_chart


def test_a_line_chart_escapes_names_and_titles_and_draws_a_line_per_series():
    svg = line_chart(
        series=[
            Series(points=[Point(0, "<b>day 1</b>"), Point(4, "day 2")], name='A"><script>'),
            Series(points=[Point(1, "x"), Point(2, "y")], name="B", css_class="ab-series"),
        ],
        x_labels=("2026-01-01", "<i>2026-01-02</i>"),
        y_max=4,
        css_class="chart",
        title="<title>",
    )
    assert "<script>" not in svg and "<b>" not in svg and "<i>" not in svg
    assert svg.count("<polyline") == 2
    assert svg.count("<circle") == 4
    assert 'class="ab-series"' in svg
    assert "&lt;b&gt;day 1&lt;/b&gt;" in svg


def test_a_bar_chart_draws_a_bar_per_value_and_its_scale():
    svg = bar_chart(
        bars=[Bar(3, "Mon: 3"), Bar(0, "Tue: 0")],
        x_labels=("Mon", "Tue"),
        top_label="max 3/day",
        aria_label="firings per day",
    )
    assert svg.count("<rect") == 2
    assert 'aria-label="firings per day"' in svg
    assert "max 3/day" in svg
