"""The page's stylesheet, inline in every report: no file, font or library to fetch.

Colours follow what operators read from Ansible runs: amber for changed, red for failed;
green for a phase that found everything already done, blue for one that only waited or checked.
"""

CSS = """
:root { --changed:#e39b2d; --ok:#4a86c8; --skipped:#5aa878; --failed:#d2463f; --notrun:#c9ced6;
        --ink:#1c2430; --muted:#6a7483; --line:#e3e7ed; --bg:#f3f5f8; --card:#fff; }
* { box-sizing:border-box; }
body { margin:0; background:var(--bg); color:var(--ink);
       font:14px/1.45 system-ui,-apple-system,"Segoe UI","DejaVu Sans",Helvetica,Arial,sans-serif; }
header { background:#1f2a37; color:#fff; padding:18px 32px 16px; }
header h1 { margin:0; font-size:22px; font-weight:650; letter-spacing:.2px; }
header .sub { color:#b8c2cf; margin-top:2px; }
main { padding:20px 32px 28px; max-width:1400px; }
.tiles { display:grid; grid-template-columns:1fr 1fr; gap:16px; margin-bottom:16px; }
.card { background:var(--card); border:1px solid var(--line); border-radius:10px; padding:16px 20px;
        box-shadow:0 1px 2px rgba(20,30,50,.05); margin-bottom:16px; }
.tile { margin-bottom:0; display:flex; flex-direction:column; gap:6px; }
.tile .what { font-size:12px; font-weight:700; letter-spacing:.8px; color:var(--muted); text-transform:uppercase; }
.tile .line { font-size:16px; font-weight:600; }
.muted { color:var(--muted); }
.pill { display:inline-block; padding:1px 9px; border-radius:999px; font-size:12px; font-weight:700;
        letter-spacing:.4px; color:#fff; vertical-align:1px; }
.pill.good { background:var(--skipped); } .pill.bad { background:var(--failed); } .pill.none { background:var(--notrun); color:var(--ink); }
h2 { margin:0 0 10px; font-size:16px; }
.legend { display:flex; flex-wrap:wrap; gap:16px; margin:0 0 12px; color:var(--muted); font-size:12.5px; }
.swatch { display:inline-block; width:12px; height:12px; border-radius:3px; margin-right:5px; vertical-align:-1px; }
.row { display:grid; grid-template-columns:170px 1fr 190px; align-items:center; column-gap:12px; min-height:24px; }
.axis { color:var(--muted); font-size:11.5px; height:20px; }
.axis .track { background:none; border:none; }
.tick { position:absolute; top:2px; transform:translateX(-50%); white-space:nowrap; }
.tick.first { transform:none; }
.host { border-top:1px solid var(--line); padding:8px 0 6px; }
.host-head { display:flex; align-items:baseline; gap:10px; margin:0 0 4px; }
.host-name { font-weight:700; font-size:15px; }
.host-name .pill { margin-left:6px; }
.host-total { margin-left:auto; font-weight:600; font-variant-numeric:tabular-nums; }
.phase { font-size:13px; padding-left:10px; white-space:nowrap; overflow:hidden; text-overflow:ellipsis; }
.track { position:relative; height:18px; border-radius:4px; background-color:#f7f8fa;
         background-image:linear-gradient(to right, var(--line) 1px, transparent 1px); border:1px solid #edf0f3; }
.bar { position:absolute; top:2px; bottom:2px; min-width:3px; border-radius:3px; }
.bar.changed { background:var(--changed); } .bar.ok { background:var(--ok); }
.bar.skipped { background:var(--skipped); } .bar.failed { background:var(--failed); }
.notrun-note { position:absolute; left:8px; top:0; font-size:11.5px; font-style:italic; color:var(--muted); line-height:16px; }
.track.notrun { background-image:repeating-linear-gradient(45deg, #eef0f3 0 6px, #f7f8fa 6px 12px); }
.secs { font-variant-numeric:tabular-nums; font-size:13px; white-space:nowrap; }
.secs small { color:var(--muted); margin-left:6px; font-size:11.5px; }
.failure { background:#fdf0ef; border:1px solid #f1c4c0; border-left:4px solid var(--failed); border-radius:6px;
           padding:10px 14px; margin:0 0 14px; white-space:pre-wrap; word-break:break-word;
           font:12.5px/1.5 "DejaVu Sans Mono",ui-monospace,Menlo,Consolas,monospace; }
table { width:100%; border-collapse:collapse; font-size:13px; }
th { text-align:left; font-size:11.5px; text-transform:uppercase; letter-spacing:.6px; color:var(--muted);
     border-bottom:2px solid var(--line); padding:6px 10px; }
td { border-bottom:1px solid var(--line); padding:6px 10px; vertical-align:top; }
tr.fail td { background:#fdf3f2; }
td.detail { white-space:pre-wrap; word-break:break-word; color:#39424f;
            font:12px/1.45 "DejaVu Sans Mono",ui-monospace,Menlo,Consolas,monospace; }
td.host { font-weight:600; white-space:nowrap; }
.empty { color:var(--muted); font-style:italic; }
footer { color:var(--muted); font-size:12px; padding:0 32px 24px; }
code { font-family:"DejaVu Sans Mono",ui-monospace,Menlo,Consolas,monospace; font-size:.92em; }
"""
