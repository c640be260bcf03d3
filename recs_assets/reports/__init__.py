"""Reports people read: the stakeholder report (Markdown and HTML with its charts), built from the run's results.

Pure: takes the run's tables and charts, returns text; the Dagster layer writes it under
`$RECS_HOME/reports/` and links it from the asset's metadata.
"""
