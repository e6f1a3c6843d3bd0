"""`mlmake report`: one offline HTML file with the plots reviewers read (gather.py reads what the
build left, charts.py makes the Vega-Lite specs, page.py writes the page, base.py reads a base
revision's curves, bundle.py brings the JavaScript)."""
