"""The fleet report (DESIGN §3): view model, timeline layout and HTML page. Pure like the
alerts core it reads: no Azure import, no I/O."""
