"""Records -> answers: grouping, the report formats (md, csv, json, html), plots and compare."""
