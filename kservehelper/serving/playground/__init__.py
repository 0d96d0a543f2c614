"""The browser playground: a page generated, in the browser, from a served model's schema.

:mod:`.routes` serves it; beside it are the page: ``index.html``, ``playground.css`` and the
JavaScript modules ``playground.js`` (loading the model, running requests), ``form.js`` (the
form from the schema, field errors), ``output.js`` (results, media, streams) and ``dom.js``.
Plain HTML, CSS and JavaScript: no build step, no CDN.
"""
