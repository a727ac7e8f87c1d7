"""The daily site report (`sitewatch report`): a day's summary from records, rendered to PNG charts and a PDF."""
