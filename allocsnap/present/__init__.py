"""Presenting results: command tables, the HTML and text report pages, charts and plots."""
