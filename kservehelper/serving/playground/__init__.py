"""The browser playground: a page generated, in the browser, from a served model's schema.

:mod:`.routes` serves it; ``index.html``, ``playground.js`` and ``playground.css`` beside it are
the page (plain HTML, JavaScript and CSS: no build step, no CDN).
"""
