"""`critique-synth view`: a local, read-only web page to review the critiques of run directories.

`index` streams the stores into compact columns, `review` keeps the keep/drop decisions,
`server` answers the page's JSON API; `static/` holds the page itself (no CDN, no build step).
"""
