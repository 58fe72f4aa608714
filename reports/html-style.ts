/** The report's stylesheet, inlined so report.html is one file that opens anywhere, offline. */
export const STYLESHEET = `
:root { --pass: #1a7f37; --fail: #cf222e; --error: #a40e26; --invalid: #9a6700; --skip: #6e7781;
  --connect: #0969da; --health: #1f883d; --discovery: #8250df; --file: #bc4c00; --fault: #cf222e; --node: #8c959f;
  --green: #1a7f37; --yellow: #bf8700; --red: #cf222e; --unknown: #8c959f;
  --border: #d0d7de; --muted: #57606a; --bg-soft: #f6f8fa; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; color: #1f2328; background: #fff; }
main { max-width: 1200px; margin: 0 auto; padding: 16px 24px 48px; }
h1 { font-size: 22px; margin: 8px 0 4px; } h2 { font-size: 18px; margin: 28px 0 10px; border-bottom: 1px solid var(--border); padding-bottom: 4px; }
h3 { font-size: 15px; margin: 16px 0 6px; } h4 { font-size: 14px; margin: 14px 0 6px; }
code, pre, .mono { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: 12.5px; }
pre { white-space: pre-wrap; word-break: break-word; margin: 0; }
.facts { display: grid; grid-template-columns: repeat(auto-fill, minmax(230px, 1fr)); gap: 2px 16px; margin: 8px 0; }
.facts div { color: var(--muted); } .facts b { color: #1f2328; font-weight: 600; }
.summary-bar { display: flex; height: 22px; border-radius: 4px; overflow: hidden; border: 1px solid var(--border); margin: 10px 0 4px; }
.summary-bar span { display: block; height: 100%; }
.counts { display: flex; flex-wrap: wrap; gap: 14px; }
.o-passed { background: var(--pass); } .o-failed { background: var(--fail); } .o-error { background: var(--error); }
.o-invalid { background: var(--invalid); } .o-skipped { background: var(--skip); }
.badge { display: inline-block; padding: 0 7px; border-radius: 10px; color: #fff; font-size: 12px; font-weight: 600; vertical-align: 1px; }
.failure-card { border: 1px solid var(--fail); border-left: 5px solid var(--fail); border-radius: 6px; padding: 8px 12px; margin: 10px 0; background: #fff8f8; }
.failure-card.invalid { border-color: var(--invalid); background: #fffbea; }
.failure-card.error { border-color: var(--error); }
table { border-collapse: collapse; width: 100%; margin: 6px 0; }
th, td { border: 1px solid var(--border); padding: 3px 6px; text-align: left; vertical-align: top; }
th { background: var(--bg-soft); font-weight: 600; }
tr.fail td, tr.regression td { background: #ffebe9; }
td.expected, td.actual { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: 12.5px; white-space: pre-wrap; word-break: break-word; }
.kpis { display: grid; grid-template-columns: repeat(auto-fill, minmax(330px, 1fr)); gap: 12px; }
.kpi { border: 1px solid var(--border); border-radius: 6px; padding: 10px 12px; }
.kpi .value { font-size: 22px; font-weight: 600; } .kpi .verdict { margin-left: 8px; }
.kpi .meta, .kpi .detail, .muted { color: var(--muted); font-size: 12.5px; }
.verdict.met { color: var(--pass); } .verdict.unmet { color: var(--fail); } .verdict.unmeasured { color: var(--skip); }
svg { display: block; max-width: 100%; height: auto; }
svg text { font: 11px system-ui, sans-serif; fill: #1f2328; }
.gauge-track { fill: #eaeef2; } .gauge-fill.met { fill: var(--pass); } .gauge-fill.unmet { fill: var(--fail); }
.gauge-target { stroke: #1f2328; stroke-width: 2; } .gauge-baseline { stroke: var(--muted); stroke-width: 1.5; stroke-dasharray: 3 2; }
text.gauge-note { fill: var(--muted); font-size: 10.5px; } text.gauge-empty { fill: var(--skip); font-style: italic; }
details.scenario { border: 1px solid var(--border); border-radius: 6px; margin: 8px 0; }
details.scenario > summary { cursor: pointer; padding: 6px 10px; background: var(--bg-soft); font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: 13px; white-space: pre-wrap; }
details.scenario.problem > summary { background: #ffebe9; }
details.scenario > .body { padding: 4px 12px 12px; }
.timeline { border: 1px solid var(--border); border-radius: 4px; }
.lane.even { fill: #fff; } .lane.odd { fill: var(--bg-soft); }
text.lane-label { font-weight: 600; } .tick { stroke: #eaeef2; } text.tick-label { fill: var(--muted); font-size: 10px; }
.mark { opacity: .85; } .mark:hover { opacity: 1; stroke: #000; }
.fam-connect { fill: var(--connect); background: var(--connect); } .fam-health { fill: var(--health); background: var(--health); }
.fam-discovery { fill: var(--discovery); background: var(--discovery); } .fam-file { fill: var(--file); background: var(--file); }
.fam-fault { fill: var(--fault); background: var(--fault); fill-opacity: .35; } .fam-node { fill: var(--node); background: var(--node); }
.step line { stroke: #1f2328; stroke-width: 1; stroke-dasharray: 4 3; } .step.failed line { stroke: var(--fail); stroke-width: 2; }
.step text { font-size: 9.5px; fill: var(--muted); } .step.failed text { fill: var(--fail); }
text.step-number { font-size: 10px; font-weight: 700; fill: #1f2328; } text.step-number.failed { fill: var(--fail); }
.legend { display: flex; flex-wrap: wrap; gap: 12px; margin: 4px 0; font-size: 12px; color: var(--muted); }
.swatch { display: inline-block; width: 10px; height: 10px; margin-right: 4px; border-radius: 2px; vertical-align: -1px; }
.step-swatch { border-left: 2px dashed #1f2328; width: 2px; border-radius: 0; }
table.matrix { width: auto; } table.matrix td { width: 44px; height: 30px; text-align: center; font-size: 16px; }
table.matrix td.sees { color: var(--pass); } table.matrix td.self { color: var(--skip); background: var(--bg-soft); }
table.matrix td.blind { background: #ffe2b3; outline: 2px solid #bc4c00; outline-offset: -2px; }
.matrix-failed { border-left: 3px solid var(--fail); padding-left: 8px; }
table.matrix td.asym { background: #ffcecb; outline: 2px solid var(--fail); outline-offset: -2px; color: var(--fail); }
.asymmetries > li { margin: 6px 0; } .cause { display: inline-block; margin-left: 6px; padding: 0 6px; border-radius: 4px; background: var(--fail); color: #fff; font-size: 12px; }
.asymmetries p { margin: 2px 0; } .evidence { color: var(--muted); font-size: 12.5px; }
.ok-note { color: var(--pass); }
.series polyline { fill: none; stroke-width: 2; } .series circle { stroke: #fff; stroke-width: 1; }
.series-connection polyline, .series-connection .target-line { stroke: var(--connect); } .series-connection circle, .swatch.series-connection { fill: var(--connect); background: var(--connect); }
.series-discovery polyline, .series-discovery .target-line { stroke: var(--discovery); } .series-discovery circle, .swatch.series-discovery { fill: var(--discovery); background: var(--discovery); }
.target-line { stroke-dasharray: 6 4; stroke-width: 1.2; opacity: .7; }
.knee line { stroke: var(--fail); stroke-width: 2; } .knee text { fill: var(--fail); font-weight: 600; } .knee-swatch { background: var(--fail); }
text.axis-label { fill: var(--muted); }
.events td { font-size: 12px; } .events td.type { white-space: nowrap; }
svg.sweep { max-width: 720px; } .events td.detail { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; word-break: break-word; }
.note { color: var(--muted); font-style: italic; }
footer { margin-top: 32px; color: var(--muted); font-size: 12px; }
[hidden] { display: none !important; }
.filters { position: sticky; top: 0; z-index: 2; display: flex; flex-wrap: wrap; align-items: center; gap: 8px 14px; padding: 8px 10px; margin: 6px 0 10px;
  background: #fff; border: 1px solid var(--border); border-radius: 6px; box-shadow: 0 1px 3px rgba(31, 35, 40, .08); }
.filters input[type=search] { flex: 1 1 320px; padding: 4px 8px; font: inherit; border: 1px solid var(--border); border-radius: 4px; }
.filters label { white-space: nowrap; } .filters select, .filters button { font: inherit; font-size: 13px; }
.outcome-filters { display: flex; gap: 10px; flex-wrap: wrap; }
tr.ev.hit td { background: #fff8c5; }
.match-note:empty { display: none; } .match-note { margin: 4px 0; font-size: 12.5px; color: var(--muted); }
.s-green { fill: var(--green); background: var(--green); } .s-yellow { fill: var(--yellow); background: var(--yellow); }
.s-red { fill: var(--red); background: var(--red); } .s-unknown { fill: var(--unknown); background: var(--unknown); }
.mark.health { opacity: 1; }
text.mark-label { font-size: 9.5px; fill: #1f2328; background: none; } text.mark-label.s-red { fill: var(--red); font-weight: 600; }
text.lane-role { font-size: 9.5px; fill: var(--muted); } text.axis-title { font-size: 10px; fill: var(--muted); font-style: italic; }
.timeline a text.lane-label { fill: #0969da; text-decoration: underline; }
rect.down { fill: #afb8c1; opacity: .35; } .down-swatch { background: #afb8c1; }
.fault-span text { fill: var(--fault); font-weight: 600; }
.time-base { margin: 2px 0 8px; }
ul.where { margin: 6px 0; padding-left: 20px; } ul.where li { margin: 2px 0; }
table.nodes td.peer-id { font-size: 11.5px; word-break: break-all; }
details.node { border: 1px solid var(--border); border-radius: 4px; margin: 4px 0; }
details.node > summary { cursor: pointer; padding: 3px 8px; background: var(--bg-soft); }
details.node > :not(summary) { margin-left: 10px; margin-right: 10px; } details.node > table { width: calc(100% - 20px); }
/* Whatever a link jumps to lands below the sticky filter bar, not under it. */
[id] { scroll-margin-top: 100px; }
details.node:target { outline: 2px solid #0969da; }
h5 { font-size: 13px; margin: 8px 0 4px; }
pre.output { background: #0d1117; color: #e6edf3; padding: 8px 10px; border-radius: 4px; max-height: 360px; overflow: auto; font-size: 12px; }
tr:target td { background: #ddf4ff; }
`
