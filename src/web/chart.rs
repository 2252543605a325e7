//! The dashboard chart: orders per JST day per store over the last 30 days, as stacked bars.
//! Pure: counts in, geometry and words out. `templates/dashboard/chart.html` draws it as inline
//! SVG (no script), in a 360 × 200 viewBox that scales to the page's width.

use chrono::{DateTime, Datelike, Duration, NaiveDate, Utc};

use crate::domain::{StoreId, jst};

/// How many days the chart shows, today (JST) included.
pub const DAYS: usize = 30;

pub const WIDTH: f64 = 360.0;
pub const HEIGHT: f64 = 200.0;
const LEFT: f64 = 34.0;
/// Room for the last day's label, centred under its bar.
const RIGHT: f64 = 18.0;
const TOP: f64 = 14.0;
const BOTTOM: f64 = 22.0;
/// Share of a day's slot its bar fills.
const BAR_SHARE: f64 = 0.72;

/// Okabe–Ito's colour-blind-safe colours (yellow left out: too faint on white), then a few more;
/// used in turn when there are more stores.
const PALETTE: [&str; 10] =
    ["#0072b2", "#e69f00", "#009e73", "#cc79a7", "#56b4e9", "#d55e00", "#555555", "#8c564b", "#17becf", "#9a9a00"];

/// The JST days the chart covers, oldest first, ending with today in Japan.
pub fn last_days(now: DateTime<Utc>) -> Vec<NaiveDate> {
    let today = jst::today(now);
    (0..DAYS).rev().map(|back| today - Duration::days(back as i64)).collect()
}

#[derive(Clone, Debug, PartialEq)]
pub struct Bar {
    pub x: f64,
    pub y: f64,
    pub width: f64,
    pub height: f64,
    pub color: &'static str,
    /// 「11/30 本店 3件」, shown when pointed at.
    pub label: String,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Tick {
    /// x for day ticks, y for count ticks.
    pub at: f64,
    pub label: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Legend {
    pub name: String,
    pub color: &'static str,
    pub total: i64,
}

/// One day of the table that says what the bars show.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Row {
    pub day: String,
    pub counts: Vec<i64>,
    pub total: i64,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Chart {
    pub title: String,
    /// Everything the picture says, in one sentence for screen readers.
    pub summary: String,
    pub bars: Vec<Bar>,
    pub y_ticks: Vec<Tick>,
    pub x_ticks: Vec<Tick>,
    pub legend: Vec<Legend>,
    pub rows: Vec<Row>,
    /// The count the top of the plot stands for.
    pub top: i64,
    pub empty: bool,
}

impl Chart {
    pub fn plot_left(&self) -> f64 {
        LEFT
    }
    pub fn plot_right(&self) -> f64 {
        WIDTH - RIGHT
    }
    pub fn plot_top(&self) -> f64 {
        TOP
    }
    pub fn plot_bottom(&self) -> f64 {
        HEIGHT - BOTTOM
    }
    pub fn view_box(&self) -> String {
        format!("0 0 {} {}", px(WIDTH), px(HEIGHT))
    }
    pub fn label_y(&self) -> f64 {
        HEIGHT - 6.0
    }
    pub fn middle_x(&self) -> f64 {
        (LEFT + WIDTH - RIGHT) / 2.0
    }
    pub fn middle_y(&self) -> f64 {
        (TOP + HEIGHT - BOTTOM) / 2.0
    }
}

/// A coordinate as the SVG writes it: one decimal, no trailing `.0`.
pub fn px(v: impl std::borrow::Borrow<f64>) -> String {
    let v = *v.borrow();
    let s = format!("{v:.1}");
    s.strip_suffix(".0").map(str::to_string).unwrap_or(s)
}

/// 「11/30」
fn short_day(d: NaiveDate) -> String {
    format!("{}/{}", d.month(), d.day())
}

/// A round step for about `ticks` gridlines up to `max`: 1, 2 or 5 times a power of ten.
pub fn nice_step(max: i64, ticks: i64) -> i64 {
    let raw = ((max.max(1) + ticks - 1) / ticks).max(1);
    let mut magnitude = 1i64;
    while magnitude * 10 <= raw {
        magnitude *= 10;
    }
    [1, 2, 5, 10].into_iter().map(|m| m * magnitude).find(|s| *s >= raw).unwrap_or(10 * magnitude)
}

/// Builds the chart of `days` (oldest first) for `stores` (in legend and stacking order, bottom
/// first) from `counts` (store, day, orders); counts of other stores or days are ignored.
pub fn build(days: &[NaiveDate], stores: &[(StoreId, String)], counts: &[(StoreId, NaiveDate, i64)]) -> Chart {
    let count = |store: StoreId, day: NaiveDate| -> i64 {
        counts.iter().filter(|(s, d, _)| *s == store && *d == day).map(|(_, _, n)| *n).sum()
    };
    let grid: Vec<Vec<i64>> = days.iter().map(|d| stores.iter().map(|(s, _)| count(*s, *d)).collect()).collect();
    let day_totals: Vec<i64> = grid.iter().map(|row| row.iter().sum()).collect();
    let max = day_totals.iter().copied().max().unwrap_or(0);
    let step = nice_step(max, 4);
    let top = (step * ((max + step - 1) / step)).max(step);

    let plot_height = HEIGHT - BOTTOM - TOP;
    let slot = (WIDTH - LEFT - RIGHT) / days.len().max(1) as f64;
    let y_of = |n: i64| HEIGHT - BOTTOM - plot_height * n as f64 / top as f64;

    let color = |i: usize| PALETTE[i % PALETTE.len()];
    let mut bars = Vec::new();
    for (i, (day, row)) in days.iter().zip(&grid).enumerate() {
        let x = LEFT + slot * i as f64 + slot * (1.0 - BAR_SHARE) / 2.0;
        let mut below = 0;
        for (j, n) in row.iter().enumerate() {
            if *n == 0 {
                continue;
            }
            let (y, bottom) = (y_of(below + n), y_of(below));
            bars.push(Bar {
                x,
                y,
                width: slot * BAR_SHARE,
                height: bottom - y,
                color: color(j),
                label: format!("{} {} {}件", short_day(*day), stores[j].1, n),
            });
            below += n;
        }
    }
    let y_ticks = (0..=top / step).map(|k| Tick { at: y_of(k * step), label: (k * step).to_string() }).collect();
    // A label every seven days, ending on today.
    let x_ticks = days
        .iter()
        .enumerate()
        .filter(|(i, _)| (days.len() - 1 - i).is_multiple_of(7))
        .map(|(i, d)| Tick { at: LEFT + slot * (i as f64 + 0.5), label: short_day(*d) })
        .collect();
    let legend: Vec<Legend> = stores
        .iter()
        .enumerate()
        .map(|(j, (_, name))| Legend { name: name.clone(), color: color(j), total: grid.iter().map(|r| r[j]).sum() })
        .collect();
    let rows = days
        .iter()
        .zip(&grid)
        .zip(&day_totals)
        .map(|((d, row), total)| Row { day: short_day(*d), counts: row.clone(), total: *total })
        .collect();
    let period = match (days.first(), days.last()) {
        (Some(first), Some(last)) => format!("{}〜{}", short_day(*first), short_day(*last)),
        _ => String::new(),
    };
    let title = format!("ストア別の日別受注数（過去{}日間）", days.len());
    let empty = max == 0;
    let summary = if empty {
        format!("{period}の受注はありません。")
    } else {
        let totals: Vec<String> = legend.iter().map(|l| format!("{} {}件", l.name, l.total)).collect();
        let busiest = days.iter().zip(&day_totals).max_by_key(|(d, n)| (**n, std::cmp::Reverse(**d)));
        let busiest = busiest.map(|(d, n)| format!("最も多い日は{}の{}件です。", short_day(*d), n)).unwrap_or_default();
        format!("{period}の受注数は、{}。{busiest}", totals.join("、"))
    };
    Chart { title, summary, bars, y_ticks, x_ticks, legend, rows, top, empty }
}

#[cfg(test)]
mod tests {
    use super::*;
    use askama::Template;
    use chrono::TimeZone;

    fn days() -> Vec<NaiveDate> {
        last_days(Utc.with_ymd_and_hms(2026, 11, 30, 3, 0, 0).unwrap())
    }

    fn day(m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, m, d).unwrap()
    }

    #[derive(Template)]
    #[template(path = "dashboard/chart.html")]
    struct Only<'a> {
        chart: &'a Chart,
    }

    #[test]
    fn days_are_japans() {
        // 14:59:59 UTC is 23:59:59 in Japan; a second later it is tomorrow there.
        let before = last_days(Utc.with_ymd_and_hms(2026, 11, 29, 14, 59, 59).unwrap());
        let after = last_days(Utc.with_ymd_and_hms(2026, 11, 29, 15, 0, 0).unwrap());
        assert_eq!((before.len(), before[29], before[0]), (30, day(11, 29), day(10, 31)));
        assert_eq!((after[29], after[0]), (day(11, 30), day(11, 1)));
        assert!(after.windows(2).all(|w| w[1] - w[0] == Duration::days(1)));
    }

    #[test]
    fn steps_are_round() {
        let steps = [0, 1, 3, 4, 5, 9, 10, 37, 100, 999, 12_345].map(|m| nice_step(m, 4));
        assert_eq!(steps, [1, 1, 1, 1, 2, 5, 5, 10, 50, 500, 5000]);
    }

    #[test]
    fn the_scale_reaches_the_busiest_day_exactly_at_a_gridline() {
        let store = (StoreId(1), "本店".to_string());
        let chart = build(&days(), &[store], &[(StoreId(1), day(11, 30), 37), (StoreId(1), day(11, 1), 3)]);
        assert_eq!(chart.top, 40);
        assert_eq!(chart.y_ticks.iter().map(|t| t.label.as_str()).collect::<Vec<_>>(), ["0", "10", "20", "30", "40"]);
        assert_eq!(chart.y_ticks[0].at, chart.plot_bottom());
        assert_eq!(chart.y_ticks[4].at, chart.plot_top());
        let today = chart.bars.last().unwrap();
        assert!((today.height - (chart.plot_bottom() - chart.plot_top()) * 37.0 / 40.0).abs() < 1e-9);
        assert!(today.x + today.width <= chart.plot_right(), "the last bar stays inside the plot");
        assert_eq!(chart.bars[0].label, "11/1 本店 3件");
        assert!(chart.bars[0].x >= chart.plot_left());
        assert_eq!(
            chart.x_ticks.iter().map(|t| t.label.as_str()).collect::<Vec<_>>(),
            ["11/2", "11/9", "11/16", "11/23", "11/30"]
        );
    }

    #[test]
    fn no_orders_draws_axes_and_says_so() {
        let chart = build(&days(), &[(StoreId(1), "本店".into())], &[]);
        assert!(chart.empty && chart.bars.is_empty());
        assert_eq!(chart.top, 1);
        assert_eq!(chart.summary, "11/1〜11/30の受注はありません。");
        let none = build(&days(), &[], &[]);
        assert!(none.empty && none.legend.is_empty() && none.rows.iter().all(|r| r.total == 0));
        let svg = Only { chart: &none }.render().unwrap();
        assert!(svg.contains("この期間の受注はありません"), "{svg}");
    }

    #[test]
    fn stores_stack_in_order_with_one_colour_each() {
        let stores: Vec<(StoreId, String)> = (1..=12).map(|i| (StoreId(i), format!("店{i}"))).collect();
        let counts: Vec<(StoreId, NaiveDate, i64)> = (1..=12).map(|i| (StoreId(i), day(11, 30), i)).collect();
        let chart = build(&days(), &stores, &counts);
        assert_eq!(chart.bars.len(), 12);
        assert_eq!(chart.legend.len(), 12);
        assert_eq!(chart.legend[11].total, 12);
        assert_eq!(chart.legend[0].color, chart.legend[10].color, "colours go round after ten");
        assert_ne!(chart.legend[0].color, chart.legend[1].color);
        // Each store's bar sits on the one below it, the first on the axis.
        assert_eq!(chart.bars[0].y + chart.bars[0].height, chart.plot_bottom());
        for w in chart.bars.windows(2) {
            assert!((w[1].y + w[1].height - w[0].y).abs() < 1e-9);
        }
        assert_eq!(chart.rows[29].total, 78);
        assert_eq!(chart.top, 80);
        assert!(chart.summary.contains("店12 12件") && chart.summary.contains("11/30の78件"), "{}", chart.summary);
    }

    #[test]
    fn counts_outside_the_days_or_stores_are_left_out() {
        let stores = [(StoreId(1), "本店".to_string())];
        let counts = [(StoreId(1), day(10, 31), 5), (StoreId(2), day(11, 30), 9), (StoreId(1), day(11, 15), 2)];
        let chart = build(&days(), &stores, &counts);
        assert_eq!(chart.legend[0].total, 2);
        assert_eq!(chart.bars.len(), 1);
    }

    #[test]
    fn the_svg_is_accessible_and_scales() {
        let stores = [(StoreId(1), "本店 <b>".to_string()), (StoreId(2), "支店".to_string())];
        let chart = build(&days(), &stores, &[(StoreId(1), day(11, 29), 4), (StoreId(2), day(11, 29), 1)]);
        let html = Only { chart: &chart }.render().unwrap();
        assert!(html.contains(r#"role="img""#) && html.contains("<title id=\"orders-chart-title\">"), "{html}");
        assert!(html.contains(r#"viewBox="0 0 360 200""#) && html.contains(r#"width="100%""#), "{html}");
        assert!(html.contains("aria-labelledby=\"orders-chart-title orders-chart-desc\""), "{html}");
        assert!(html.contains("本店 &#60;b&#62;") || html.contains("本店 &lt;b&gt;"), "names are escaped: {html}");
        assert!(!html.contains("<b>"));
        assert!(html.contains("<table"), "a table says the same in words");
        assert_eq!(px(12.0), "12");
        assert_eq!(px(12.345), "12.3");
    }
}
